"""Real receivers for notifications on 127.0.0.1: an SMTP server (aiosmtpd) in plain, STARTTLS
or TLS mode with a self-signed certificate made for the test, and an HTTP server (webhooks,
Gotify) that records every request."""
from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class ReceivedMail:
    sender: str
    recipients: list[str]
    content: bytes
    login: str | None


class MailBox:
    """The aiosmtpd handler: keeps every message it is given."""

    def __init__(self):
        self.messages: list[ReceivedMail] = []
        self.received = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        auth = session.auth_data if session.authenticated else None
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        self.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, login))
        self.received.set()
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    mailbox: MailBox
    controller: Controller


def start_smtp_server(mode: str, tls_files: tuple[Path, Path] | None = None,
                      logins: dict[str, str] | None = None) -> SmtpServer:
    """mode: insecure, starttls or tls; `logins` (user -> password) requires AUTH."""
    mailbox = MailBox()
    port = free_port()
    options: dict = {}
    context = None
    if mode != "insecure":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls_files)
    if mode == "starttls":
        options.update(tls_context=context, require_starttls=True)
    elif mode == "tls":
        options.update(ssl_context=context)
    if logins is not None:
        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and logins.get(auth_data.login.decode()) == \
                auth_data.password.decode()
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        options.update(authenticator=authenticate, auth_required=True, auth_require_tls=mode == "starttls")
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    return SmtpServer(port, mailbox, controller)


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    server: ThreadingHTTPServer
    requests: list[HttpRequest] = field(default_factory=list)
    #: the status every request is answered with
    status: int = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def start_http_receiver() -> HttpReceiver:
    receiver: HttpReceiver

    class Handler(BaseHTTPRequestHandler):
        def _record(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            receiver.requests.append(HttpRequest(self.command, self.path, dict(self.headers.items()), body))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = do_PUT = _record

        def log_message(self, format, *args):  # quiet: the test reads `requests`
            pass

    receiver = HttpReceiver(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    threading.Thread(target=receiver.server.serve_forever, args=(0.05,), daemon=True).start()
    return receiver
