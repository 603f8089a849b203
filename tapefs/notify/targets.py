"""Delivering one rendered notification to one target: sendmail, SMTP, Gotify or a webhook.

Each delivery raises DeliveryFailed with a message that names the target and never holds a
secret (every secret of the target is cut out of it); ``tapefs.notify.dispatch`` turns that
into a log line, ``notification test`` into an error.
"""

from __future__ import annotations

import json
import shutil
import smtplib
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path

from tapefs.notify.config import Target
from tapefs.notify.errors import DeliveryFailed
from tapefs.notify.notification import Notification, Severity
from tapefs.notify.template_engine import render_template

#: proxmox-notify's SMTP timeout; the HTTP targets get the same
TIMEOUT = 5.0
SENDMAIL_TIMEOUT = 30.0
SENDMAIL_FALLBACKS = ("/usr/sbin/sendmail", "/usr/lib/sendmail")
DEFAULT_AUTHOR = "tapefs"
GOTIFY_PRIORITY = {Severity.INFO: 1, Severity.NOTICE: 3, Severity.WARNING: 5, Severity.ERROR: 9, Severity.UNKNOWN: 3}


@dataclass(frozen=True)
class Rendered:
    notification: Notification
    title: str
    message: str


class SendmailMissing(DeliveryFailed):
    """No sendmail program is installed."""


def find_sendmail() -> str | None:
    found = shutil.which("sendmail")
    if found:
        return found
    return next((path for path in SENDMAIL_FALLBACKS if Path(path).is_file()), None)


def redact(text: str, target: Target) -> str:
    for secret in sorted(target.secret_values(), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _mail(target: Target, rendered: Rendered) -> EmailMessage:
    message = EmailMessage()
    sender = target.from_address or f"tapefs@{socket.getfqdn()}"
    message["From"] = formataddr((target.author or DEFAULT_AUTHOR, sender))
    message["To"] = ", ".join(target.mailto)
    message["Subject"] = rendered.title
    message["Date"] = formatdate(rendered.notification.timestamp, localtime=True)
    message["Message-ID"] = make_msgid(domain=socket.getfqdn())
    message.set_content(rendered.message)
    return message


def _send_sendmail(target: Target, rendered: Rendered) -> None:
    program = find_sendmail()
    if program is None:
        raise SendmailMissing(f"notification target {target.name!r}: no sendmail program installed")
    message = _mail(target, rendered)
    sender = target.from_address or f"tapefs@{socket.getfqdn()}"
    try:
        proc = subprocess.run(
            [program, "-i", "-f", sender, "--", *target.mailto],
            input=message.as_bytes(),
            capture_output=True,
            timeout=SENDMAIL_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DeliveryFailed(f"notification target {target.name!r}: {program}: {error}") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise DeliveryFailed(
            f"notification target {target.name!r}: {program} exited {proc.returncode}"
            + (f": {detail[-1]}" if detail else "")
        )


def _send_smtp(target: Target, rendered: Rendered) -> None:
    message = _mail(target, rendered)
    context = ssl.create_default_context()
    server, port = target.server or "", target.smtp_port
    try:
        if target.smtp_mode == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(server, port, timeout=TIMEOUT, context=context)
        else:
            client = smtplib.SMTP(server, port, timeout=TIMEOUT)
        with client:
            if target.smtp_mode == "starttls":
                client.starttls(context=context)
            if target.username:
                client.login(target.username, target.password or "")
            client.send_message(message, from_addr=target.from_address, to_addrs=list(target.mailto))
    except (OSError, smtplib.SMTPException, ssl.SSLError) as error:
        reason = str(error) or type(error).__name__
        raise DeliveryFailed(
            f"notification target {target.name!r}: SMTP {target.smtp_mode} to {server}:{port}: {reason}"
        ) from None


def _http(target: Target, method: str, url: str, headers: dict[str, str], body: bytes | None) -> None:
    request = urllib.request.Request(url, data=body, method=method.upper(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            response.read()
    except urllib.error.HTTPError as error:
        raise DeliveryFailed(f"notification target {target.name!r}: HTTP {error.code} {error.reason}") from None
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise DeliveryFailed(f"notification target {target.name!r}: {reason}") from None


def _send_gotify(target: Target, rendered: Rendered) -> None:
    body = {
        "title": rendered.title,
        "message": rendered.message,
        "priority": GOTIFY_PRIORITY[rendered.notification.severity],
        "extras": {"client::display": {"contentType": "text/markdown"}},
    }
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {target.token}"}
    _http(target, "post", f"{(target.server or '').rstrip('/')}/message", headers, json.dumps(body).encode())


def webhook_context(target: Target, rendered: Rendered) -> dict:
    """What a webhook's url, headers and body templates can use."""
    notification = rendered.notification
    return {
        "title": rendered.title,
        "message": rendered.message,
        "severity": notification.severity.value,
        "timestamp": notification.timestamp,
        "fields": dict(notification.fields),
        "secrets": dict(target.secrets),
    }


def _send_webhook(target: Target, rendered: Rendered) -> None:
    context = webhook_context(target, rendered)
    url = render_template(target.url or "", context)
    headers = {name: render_template(value, context) for name, value in target.headers}
    method = target.method or "post"
    body = None
    if target.body is not None and method != "get":
        body = render_template(target.body, context).encode()
    _http(target, method, url, headers, body)


_SENDERS = {"sendmail": _send_sendmail, "smtp": _send_smtp, "gotify": _send_gotify, "webhook": _send_webhook}


def deliver(target: Target, rendered: Rendered) -> None:
    """Send, or raise DeliveryFailed without any secret of the target in its message."""
    try:
        _SENDERS[target.kind](target, rendered)
    except DeliveryFailed as error:
        raise type(error)(redact(str(error), target)) from None
    except Exception as error:  # a target never takes its caller down, whatever went wrong
        message = f"notification target {target.name!r}: {type(error).__name__}: {error}"
        raise DeliveryFailed(redact(message, target)) from None
