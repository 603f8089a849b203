"""Notifications from real jobs: a tape backup job on a real vtape library reports to a webhook
while an SMTP target is down (the job still succeeds; the failure is a warning without the
password), a failed backup sends tape-backup-err, an operator wait sends tape-load, and
garbage collection run by the command line sends gc-ok."""
import json

import pytest

from tapefs.jobs.errors import MediaOffline
from tapefs.jobs.operator_wait import OperatorWait
from tapefs.media.media_admin import export_media, find_media, move_media
from tapefs.media.media_id import MediaLocation
from tapefs.media.tape_config import load_tape_config
from tapefs.notify.config import Matcher, Target, create_matcher, create_target
from tests.helpers.commands import tapefs
from tests.helpers.notify_servers import free_port
from tests.helpers.tape_setup import add_cartridges

BODY = ('{"template-title": {{ json title }}, "severity": "{{ severity }}", "type": "{{ fields.type }}", '
        '"job": "{{ fields.job-id }}", "pool": "{{ fields.media-pool }}", "message": {{ json message }} }')


def hook_everything(url: str, *, smtp_down: bool = False) -> None:
    create_target(Target("hook", "webhook", url=url + "/events", body=BODY,
                         headers=(("Content-Type", "application/json"),)))
    targets = ("hook",)
    if smtp_down:
        create_target(Target("mail", "smtp", server="127.0.0.1", port=free_port(), mode="insecure",
                             username="u", password="Smtp-Pa55", from_address="t@example.com",
                             mailto=("ops@example.com",)))
        targets = ("mail", "hook")
    create_matcher(Matcher("jobs", targets=targets, match_field=("regex:type=^(tape-|gc)",)))


def posted(receiver) -> list[dict]:
    return [json.loads(request.body) for request in receiver.requests]


@pytest.mark.vtape
@pytest.mark.slow
def test_tape_backup_job_notifies_and_smtp_down_only_warns(tape_setup, http_receiver):
    hook_everything(http_receiver.url, smtp_down=True)
    add_cartridges(tape_setup.library, 1, "32MiB", "4MiB")
    tape_setup.label("SM0001L8")
    snapshot = tape_setup.add_snapshot("vm/100", 1)
    tapefs("backup-job", "create", "yearly", "--store", "store", "--pool", "daily", "--drive", "drive0")
    done = tapefs("backup-job", "run", "yearly")
    assert done.returncode == 0
    assert "notification tape-backup-ok not sent: notification target 'mail': SMTP insecure" in done.stderr
    assert "Smtp-Pa55" not in done.stderr
    [event] = posted(http_receiver)
    assert (event["type"], event["severity"], event["job"], event["pool"]) == ("tape-backup", "info", "yearly", "daily")
    assert event["template-title"] == "Tape backup of datastore 'store' successful"
    assert "Tapes used: SM0001L8" in event["message"] and snapshot in event["message"]


@pytest.mark.vtape
def test_failed_tape_backup_sends_tape_backup_err(tape_setup, http_receiver):
    hook_everything(http_receiver.url)
    tape_setup.add_snapshot("vm/100", 0)
    failed = tapefs("backup", "store", "daily", "--drive", "drive0", check=False)
    assert failed.returncode == 5
    [event] = posted(http_receiver)
    assert (event["type"], event["severity"], event["job"]) == ("tape-backup", "error", "")
    assert "failed after" in event["message"] and "no usable media found" in event["message"]


@pytest.mark.vtape
def test_operator_wait_sends_tape_load(tape_setup, http_receiver):
    hook_everything(http_receiver.url)
    add_cartridges(tape_setup.library, 1, "16MiB", "2MiB")
    tape_setup.label("SM0001L8")
    with tape_setup.inventory() as inventory:
        export_media(load_tape_config().changers["lib"], "SM0001L8", inventory)
        move_media(inventory, find_media(inventory, "SM0001L8"), MediaLocation.vault("offsite"))
    tape_setup.library.control("remove", barcode="SM0001L8")
    with tape_setup.inventory() as inventory:
        session = tape_setup.session()
        session.wait = OperatorWait(0.3, inventory, poll_interval=0.1, notify=lambda message: None)
        with session, pytest.raises(MediaOffline):
            session.load("SM0001L8")
    [event] = posted(http_receiver)
    assert (event["type"], event["severity"], event["template-title"]) == ("tape-load", "notice", "Load tape SM0001L8")
    assert "insert tape SM0001L8 (vault offsite) into changer lib" in event["message"]
    assert "Please insert or load tape SM0001L8 into changer 'lib'." in event["message"]


def test_garbage_collection_command_sends_gc_ok(store, env, notify_config, http_receiver):
    hook_everything(http_receiver.url)
    tapefs("datastore", "gc", "main", env=env)
    [event] = posted(http_receiver)
    assert (event["type"], event["template-title"]) == ("gc", "Garbage collection of datastore 'main' successful")


@pytest.mark.vtape
@pytest.mark.slow
def test_restore_plan_asks_for_vaulted_tapes(tape_setup, http_receiver):
    hook_everything(http_receiver.url)
    add_cartridges(tape_setup.library, 1, "32MiB", "4MiB")
    tape_setup.label("SM0001L8")
    tape_setup.add_snapshot("vm/100", 0, data=b"for the vault")
    result = json.loads(tapefs("backup", "store", "daily", "--drive", "drive0", "--export-media-set",
                               "--output-format", "json").stdout)
    tape_setup.library.control("remove", barcode="SM0001L8")
    tapefs("media", "vault", "record", "SM0001L8", "--vault", "offsite", "--note", "crate 12")
    http_receiver.requests.clear()  # the backup's own notification

    refused = tapefs("restore", result["media-set"], "store", "--notify", check=False)
    assert refused.returncode == 2 and "--notify goes with --plan" in refused.stderr
    tapefs("restore", result["media-set"], "store", "--plan", "--notify", "--drive", "drive1")
    [event] = posted(http_receiver)
    assert (event["type"], event["template-title"]) == ("tape-load", "Load tape SM0001L8")
    assert (f"A restore of media set {result['media-set']} needs tape SM0001L8 from vault offsite (crate 12): "
            "the whole media set.") in event["message"]
    assert "Please insert or load tape SM0001L8 into changer 'lib'." in event["message"]
