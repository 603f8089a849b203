"""`tapefs notification target|matcher create|list|show|update|remove` and `notification test`
as a user runs them: every bad value refused at create time in one line, secrets never shown."""
import json
import stat

import pytest

from tapefs.notify.config import Matcher, Target, create_matcher, create_target
from tapefs.notify.errors import NotificationConfigError
from tests.helpers.commands import one_error_line, tapefs, tapefs_json


def test_fresh_install_has_the_default_target_and_matcher(env):
    targets = tapefs_json("notification", "target", "list", env=env)
    assert [(t["name"], t["type"], t["mailto"]) for t in targets] == [("mail-to-root", "sendmail", ["root"])]
    matchers = tapefs_json("notification", "matcher", "list", env=env)
    assert [(m["name"], m["target"], m["match-severity"]) for m in matchers] == [
        ("default-matcher", ["mail-to-root"], [])]


@pytest.mark.slow
def test_webhook_lifecycle_and_test_message(env, tmp_path, http_receiver):
    tapefs("notification", "target", "create", "webhook", "hook", "--url", http_receiver.url + "/t",
           "--header", "X-Token={{ secrets.token }}", "--body", '{"text": {{ json message }}}',
           "--secret", "token=Sup3r-Secret", env=env)
    shown = tapefs_json("notification", "target", "show", "hook", env=env)
    assert shown["secret"] == ["token"] and shown["header"] == ["X-Token={{ secrets.token }}"]
    listing = tapefs("notification", "target", "show", "hook", env=env).stdout
    assert "Sup3r-Secret" not in listing + json.dumps(shown)
    config = tmp_path / "config"
    assert "Sup3r-Secret" not in (config / "notifications.cfg").read_text()
    assert stat.S_IMODE((config / "notifications-priv.cfg").stat().st_mode) == 0o600

    assert tapefs("notification", "test", "hook", env=env).stdout == "test notification sent to hook\n"
    [request] = http_receiver.requests
    assert request.headers["X-Token"] == "Sup3r-Secret"
    assert json.loads(request.body)["text"].startswith("This is a test of the notification target 'hook'.")

    tapefs("notification", "target", "update", "hook", "--method", "put", "--delete", "body", env=env)
    shown = tapefs_json("notification", "target", "show", "hook", env=env)
    assert shown["method"] == "put" and shown["body"] is None and shown["secret"] == ["token"]
    tapefs("notification", "target", "remove", "hook", env=env)
    assert "hook" not in [t["name"] for t in tapefs_json("notification", "target", "list", env=env)]


@pytest.mark.slow
def test_matcher_lifecycle(env):
    tapefs("notification", "target", "create", "gotify", "push", "--server", "http://127.0.0.1:1",
           "--token", "t0ken", env=env)
    tapefs("notification", "matcher", "create", "tape-errors", "--target", "push", "--match-severity", "error",
           "--match-field", "exact:type=tape-backup,tape-load", "--match-calendar", "mon..fri 8..17:*",
           "--mode", "any", "--invert-match", env=env)
    shown = tapefs_json("notification", "matcher", "show", "tape-errors", env=env)
    assert shown == {"name": "tape-errors", "target": ["push"], "match-severity": ["error"],
                     "match-field": ["exact:type=tape-backup,tape-load"], "match-calendar": ["mon..fri 8..17:*"],
                     "mode": "any", "invert-match": True, "comment": None, "disable": False}
    tapefs("notification", "matcher", "update", "tape-errors", "--no-invert-match", "--delete", "match-calendar",
           env=env)
    shown = tapefs_json("notification", "matcher", "show", "tape-errors", env=env)
    assert shown["invert-match"] is False and shown["match-calendar"] == []
    line = one_error_line(tapefs("notification", "target", "remove", "push", env=env, check=False), 2, "tapefs")
    assert line == "tapefs: error: target 'push' is still used by matcher tape-errors"
    tapefs("notification", "matcher", "remove", "tape-errors", env=env)
    tapefs("notification", "target", "remove", "push", env=env)


@pytest.mark.parametrize("create, message", [
    (lambda: create_matcher(Matcher("m1", targets=("ghost",))), "matcher 'm1': no notification target named 'ghost'"),
    (lambda: create_matcher(Matcher("m1", match_field=("type=gc",))),
     "matcher 'm1': match-field 'type=gc' is not exact:FIELD=VALUE[,VALUE...] or regex:FIELD=REGEX"),
    (lambda: create_matcher(Matcher("m1", match_calendar=("mon..fri 25:00",))),
     "matcher 'm1': match-calendar: invalid calendar event 'mon..fri 25:00': hour value 25 out of range 0..23"),
    (lambda: create_matcher(Matcher("m1", match_severity=("fatal",))),
     "matcher 'm1': unknown severity 'fatal' (one of info, notice, warning, error, unknown)"),
    (lambda: create_matcher(Matcher("m1", mode="some")), "matcher 'm1': mode must be all or any, not 'some'"),
    (lambda: create_target(Target("mail", "smtp", server="h")), "notification target 'mail': a smtp target needs"),
    (lambda: create_target(Target("mail", "smtp", server="h", from_address="a@b", mailto=("c@d",), mode="ssl")),
     "notification target 'mail': mode must be one of insecure, starttls, tls, not 'ssl'"),
    (lambda: create_target(Target("hook", "webhook", url="ftp://x")),
     "notification target 'hook': url must start with http:// or https://"),
    (lambda: create_target(Target("hook", "webhook", url="http://x", body="{{#each x}}")),
     "template '{{#each x}}': {{#each}} is not closed"),
    (lambda: create_target(Target("hook", "webhook", url="http://x", headers=(("Bad Name", "v"),))),
     "notification target 'hook': invalid header name 'Bad Name'"),
    (lambda: create_target(Target("push", "gotify", server="http://x", token="t", mailto=("a@b",))),
     "notification target 'push': a gotify target has no 'mailto'"),
    (lambda: create_target(Target("push", "gotify", server="x", token="t")),
     "notification target 'push': server must be an http:// or https:// URL"),
    (lambda: create_target(Target("bad name", "sendmail", mailto=("root",))), "invalid notification target name"),
    (lambda: create_target(Target("mail-to-root", "sendmail", mailto=("root",))), "'mail-to-root' already exists"),
])
def test_bad_values_are_refused_at_create_time(notify_config, create, message):
    with pytest.raises(NotificationConfigError) as error:
        create()
    assert message in str(error.value)
    assert not (notify_config / "notifications.cfg").exists()


@pytest.mark.parametrize("args, status, message", [
    (["matcher", "create", "m1", "--target", "ghost"], 2, "matcher 'm1': no notification target named 'ghost'"),
    (["matcher", "create", "m1", "--match-field", "regex:type=(gc"], 2,
     "matcher 'm1': match-field 'regex:type=(gc': bad regular expression: missing ), unterminated subpattern"),
    (["target", "show", "ghost"], 3, "no notification target named 'ghost' (targets: mail-to-root)"),
])
def test_bad_input_is_one_line_and_changes_nothing(env, tmp_path, args, status, message):
    proc = tapefs("notification", *args, env=env, check=False)
    assert message in one_error_line(proc, status, "tapefs")
    assert not (tmp_path / "config" / "notifications.cfg").exists()


def test_failed_test_message_exits_1_without_the_secret(env):
    tapefs("notification", "target", "create", "webhook", "hook", "--url", "http://127.0.0.1:1/{{ secrets.p }}",
           "--secret", "p=hidden-Path", env=env)
    line = one_error_line(tapefs("notification", "test", "hook", env=env, check=False), 1, "tapefs")
    assert "Connection refused" in line and "hidden-Path" not in line
