"""Notifications delivered to real receivers on 127.0.0.1: SMTP (plain, STARTTLS with login,
implicit TLS; a self-signed certificate the client is told to trust), webhooks and Gotify on an
HTTP server, sendmail as a program on PATH. A receiver that is down is logged, never raised,
and no log line or error ever holds a secret."""
import json
import logging
import os
import stat
from email import message_from_bytes

import pytest

from tapefs.notify import events
from tapefs.notify.config import Matcher, NotificationConfig, Target, create_matcher, create_target, load_config
from tapefs.notify.dispatch import send, send_test
from tapefs.notify.errors import DeliveryFailed
from tests.helpers.notify_servers import free_port, self_signed_certificate


def only(config_targets: list[Target]) -> NotificationConfig:
    """A configuration sending everything to these targets."""
    targets = {target.name: target for target in config_targets}
    return NotificationConfig(targets, {"all": Matcher("all", targets=tuple(targets))})


def backup_ok():
    return events.tape_backup("main", "yearly", "drive0", ["TAPE01L8"], ["vm/100/2026-01-01T04:00:00Z"], 75.0, "y1")


def test_smtp_insecure_delivers_the_rendered_mail(smtp_servers):
    server = smtp_servers("insecure")
    target = Target("mail", "smtp", server="127.0.0.1", port=server.port, mode="insecure",
                    from_address="tape@example.com", mailto=("ops@example.com", "boss@example.com"))
    assert [d.error for d in send(backup_ok(), only([target]))] == [None]
    [mail] = server.mailbox.messages
    assert mail.sender == "tape@example.com" and mail.recipients == ["ops@example.com", "boss@example.com"]
    message = message_from_bytes(mail.content)
    assert message["Subject"] == "Tape backup of datastore 'main' successful"
    body = message.get_payload(decode=True).decode()
    assert "Tapes used: TAPE01L8" in body and "vm/100/2026-01-01T04:00:00Z" in body and "1m 15s" in body


# aiosmtpd cannot tell that an implicit-TLS connection is encrypted, so it warns about AUTH on it.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_smtp_over_tls_with_login(smtp_servers, tmp_path, monkeypatch, mode):
    tls_files = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))  # the client trusts our test CA
    server = smtp_servers(mode, tls_files, logins={"backup": "pa55word"})
    target = Target("mail", "smtp", server="127.0.0.1", port=server.port, mode=mode, username="backup",
                    password="pa55word", from_address="tape@example.com", mailto=("ops@example.com",))
    send_test("mail", only([target]))
    [mail] = server.mailbox.messages
    assert mail.login == "backup"
    assert message_from_bytes(mail.content)["Subject"] == "Test notification"


def test_smtp_wrong_password_fails_without_showing_it(smtp_servers, tmp_path, monkeypatch, caplog):
    tls_files = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
    server = smtp_servers("starttls", tls_files, logins={"backup": "right"})
    target = Target("mail", "smtp", server="127.0.0.1", port=server.port, mode="starttls", username="backup",
                    password="wrong-Secret-9", from_address="t@example.com", mailto=("o@example.com",))
    with caplog.at_level(logging.DEBUG):
        [delivery] = send(backup_ok(), only([target]))
    assert "535" in delivery.error and not server.mailbox.messages
    assert "wrong-Secret-9" not in caplog.text and "wrong-Secret-9" not in delivery.error


def test_untrusted_certificate_is_refused(smtp_servers, tmp_path):
    server = smtp_servers("tls", self_signed_certificate(tmp_path))
    target = Target("mail", "smtp", server="127.0.0.1", port=server.port, mode="tls",
                    from_address="t@example.com", mailto=("o@example.com",))
    with pytest.raises(DeliveryFailed, match="CERTIFICATE_VERIFY_FAILED"):
        send_test("mail", only([target]))


def test_smtp_down_is_logged_and_the_next_target_still_gets_it(http_receiver, caplog):
    down = Target("mail", "smtp", server="127.0.0.1", port=free_port(), mode="insecure",
                  from_address="t@example.com", mailto=("o@example.com",))
    hook = Target("hook", "webhook", url=http_receiver.url + "/hook")
    with caplog.at_level(logging.WARNING, logger="tapefs.notify"):
        deliveries = send(backup_ok(), only([down, hook]))
    assert deliveries[0].target == "mail" and "Connection refused" in deliveries[0].error
    assert deliveries[1].error is None and len(http_receiver.requests) == 1
    assert "notification tape-backup-ok not sent: notification target 'mail': SMTP insecure" in caplog.text


def test_webhook_body_headers_and_url_are_templates_with_secrets(http_receiver, caplog):
    body = ('{"title": {{ json title }}, "severity": "{{ severity }}", "job": "{{ fields.job-id }}", '
            '"key": "{{ secrets.api-key }}", "tapes": {{ json fields.type }}}')
    hook = Target("hook", "webhook", method="put", url=http_receiver.url + "/notify?token={{ url-encode secrets.token }}",
                  headers=(("Authorization", "Bearer {{ secrets.api-key }}"), ("Content-Type", "application/json")),
                  body=body, secrets=(("api-key", "K3y-xyz"), ("token", "a b&c")))
    with caplog.at_level(logging.DEBUG):
        assert [d.error for d in send(backup_ok(), only([hook]))] == [None]
    [request] = http_receiver.requests
    assert request.method == "PUT" and request.path == "/notify?token=a%20b%26c"
    assert request.headers["Authorization"] == "Bearer K3y-xyz"
    assert json.loads(request.body) == {"title": "Tape backup of datastore 'main' successful", "severity": "info",
                                        "job": "y1", "key": "K3y-xyz", "tapes": "tape-backup"}
    assert "K3y-xyz" not in caplog.text and "a b&c" not in caplog.text


def test_webhook_error_status_is_logged_without_secrets(http_receiver, caplog):
    http_receiver.status = 500
    hook = Target("hook", "webhook", url=http_receiver.url + "/{{ secrets.path }}", secrets=(("path", "S3CRET-path"),))
    with caplog.at_level(logging.DEBUG):
        [delivery] = send(backup_ok(), only([hook]))
    assert delivery.error == "notification target 'hook': HTTP 500 Internal Server Error"
    assert "S3CRET-path" not in caplog.text


def test_gotify_posts_title_message_and_priority(http_receiver):
    gotify = Target("push", "gotify", server=http_receiver.url, token="app-token-1")
    send(events.tape_load("TAPE07L8", "changer0", "restore of media set x needs it"), only([gotify]))
    [request] = http_receiver.requests
    assert request.path == "/message" and request.headers["Authorization"] == "Bearer app-token-1"
    posted = json.loads(request.body)
    assert posted["title"] == "Load tape TAPE07L8" and posted["priority"] == 3
    assert "insert or load tape TAPE07L8 into changer 'changer0'" in posted["message"]


def test_sendmail_program_gets_the_mail(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "sendmail"
    program.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/argv\ncat > {tmp_path}/mail\n')
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = NotificationConfig.default()  # a fresh install: mail to root through sendmail
    assert [d.error for d in send(events.garbage_collection("main", error="disk full"), config)] == [None]
    assert (tmp_path / "argv").read_text().split()[-2:] == ["--", "root"]
    message = message_from_bytes((tmp_path / "mail").read_bytes())
    assert message["Subject"] == "Garbage collection of datastore 'main' failed"
    assert "disk full" in message.get_payload(decode=True).decode()


def test_default_target_without_sendmail_is_skipped_quietly(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("tapefs.notify.targets.SENDMAIL_FALLBACKS", ())
    with caplog.at_level(logging.WARNING):
        [delivery] = send(backup_ok(), NotificationConfig.default())
    assert "no sendmail program" in delivery.error and caplog.text == ""


def test_broken_configuration_never_raises(notify_config, caplog):
    notify_config.mkdir()
    (notify_config / "notifications.cfg").write_text("matcher: m\n\ttarget ghost\n")
    with caplog.at_level(logging.WARNING):
        assert send(backup_ok()) == []
    assert "no notification target named 'ghost'" in caplog.text


def test_secrets_stay_out_of_notifications_cfg(notify_config, http_receiver):
    create_target(Target("hook", "webhook", url=http_receiver.url, secrets=(("k", "v4lue"),)))
    create_target(Target("mail", "smtp", server="h", from_address="a@b", mailto=("c@d",), password="pw0rd"))
    create_matcher(Matcher("m", targets=("hook",)))
    public = (notify_config / "notifications.cfg").read_text()
    private = notify_config / "notifications-priv.cfg"
    assert "pw0rd" not in public and "djRsdWU" not in public and "secret" not in public
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and "password pw0rd" in private.read_text()
    loaded = load_config()
    assert loaded.targets["hook"].secrets == (("k", "v4lue"),) and loaded.targets["mail"].password == "pw0rd"
