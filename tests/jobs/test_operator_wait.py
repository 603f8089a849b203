"""A job that needs a tape that is not in the library: without a wait it fails at once with
MediaOffline (the FUSE mount relies on that); with one it names the tape, its vault and the
changer, and resumes once an operator puts the tape into a mail slot of a real vtape library."""
import json
import os
import subprocess
import threading
import time

import pytest

from tapefs.datastore.registry import DatastoreRegistry
from tapefs.device.changer import Changer
from tapefs.jobs.errors import MediaOffline
from tapefs.jobs.operator_wait import OperatorWait
from tapefs.media.media_admin import export_media, find_media, move_media
from tapefs.media.media_id import MediaLocation
from tapefs.media.tape_config import load_tape_config
from tests.helpers.commands import command_path, tapefs
from tests.helpers.tape_setup import add_cartridges

pytestmark = pytest.mark.vtape


def send_to_vault(setup, label_text: str, vault: str = "offsite") -> None:
    """Export the tape, record it in a vault and take it out of the mail slot, as an operator would."""
    with setup.inventory() as inventory:
        export_media(load_tape_config().changers["lib"], label_text, inventory)
        move_media(inventory, find_media(inventory, label_text), MediaLocation.vault(vault))
    setup.library.control("remove", barcode=label_text)


def where(setup, label_text: str) -> tuple[str, int | None]:
    with Changer.open(str(setup.library.changer)) as changer:
        status = changer.status()
    for drive in status.drives:
        if drive.barcode == label_text:
            return "drive", drive.number
    for slot in status.slots:
        if slot.barcode == label_text:
            return ("mail slot" if slot.import_export else "slot"), slot.number
    return "shelf", None


@pytest.fixture
def vaulted(tape_setup):
    """SM0001L8 labelled, exported and kept in vault 'offsite'."""
    add_cartridges(tape_setup.library, 1, "16MiB", "2MiB")
    tape_setup.label("SM0001L8")
    send_to_vault(tape_setup, "SM0001L8")
    return tape_setup


def test_without_a_wait_a_missing_tape_fails_at_once(vaulted):
    started = time.monotonic()
    with vaulted.session() as session, pytest.raises(MediaOffline) as raised:
        session.load("SM0001L8")
    assert time.monotonic() - started < 2
    assert raised.value.label_text == "SM0001L8"
    assert str(raised.value) == "tape SM0001L8 is not in changer lib"


def test_a_tape_in_a_mail_slot_is_not_taken_in_without_a_wait(vaulted):
    vaulted.library.control("insert", barcode="SM0001L8")
    with vaulted.session() as session, pytest.raises(MediaOffline):
        session.load("SM0001L8")
    assert where(vaulted, "SM0001L8")[0] == "mail slot"


def test_the_wait_names_tape_vault_and_changer_and_ends_with_media_offline(vaulted):
    requests = []
    with vaulted.inventory() as inventory:
        session = vaulted.session()
        session.wait = OperatorWait(0.6, inventory, poll_interval=0.1, notify=requests.append)
        started = time.monotonic()
        with session, pytest.raises(MediaOffline) as raised:
            session.load("SM0001L8")
    assert 0.6 <= time.monotonic() - started < 5
    assert requests == ["insert tape SM0001L8 (vault offsite) into changer lib (waiting up to 0.6 s)"]
    assert str(raised.value) == "insert tape SM0001L8 (vault offsite) into changer lib: not there after waiting 0.6 s"


def test_a_waiting_job_resumes_when_the_tape_arrives_in_the_mail_slot(vaulted):
    requests, outcome = [], {}

    def job() -> None:
        # The inventory is SQLite: each thread opens its own connection.
        with vaulted.inventory() as inventory, vaulted.session() as session:
            session.wait = OperatorWait(30, inventory, poll_interval=0.1, notify=requests.append)
            try:
                _, labels = session.read_labels("SM0001L8")
                outcome["label"] = labels.media.label_text
                session.eject()
            except Exception as error:  # reported by the assertion below
                outcome["error"] = error

    worker = threading.Thread(target=job)
    worker.start()
    deadline = time.monotonic() + 20  # a loaded machine may take a while to get there
    while not requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.is_alive() and requests == [
        "insert tape SM0001L8 (vault offsite) into changer lib (waiting up to 30 s)"]
    vaulted.library.control("insert", barcode="SM0001L8")
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert outcome == {"label": "SM0001L8"}
    with vaulted.inventory() as inventory:
        assert str(find_media(inventory, "SM0001L8").effective_location) == "online-lib"
    # It went to a storage slot, not back to the mail slot it came in by.
    assert where(vaulted, "SM0001L8") == ("slot", 1)


def location(label_text: str) -> str:
    rows = json.loads(tapefs("media", "list", "--output-format", "json").stdout)
    return next(row["location"] for row in rows if row["label-text"] == label_text)


def test_a_negative_wait_is_refused(tape_setup):
    with pytest.raises(ValueError, match="wait timeout -1 is negative"):
        OperatorWait(-1)
    refused = tapefs("restore", "00000000-0000-0000-0000-000000000001", "store", "--wait", "-1", check=False)
    assert refused.returncode == 2 and "Invalid value for '--wait'" in refused.stderr


@pytest.mark.slow
def test_export_the_set_vault_it_and_restore_with_a_waiting_job(tape_setup, tmp_path):
    add_cartridges(tape_setup.library, 1, "32MiB", "4MiB")
    tape_setup.label("SM0001L8")
    snapshot = tape_setup.add_snapshot("vm/100", 1, data=b"operator's tape")
    result = json.loads(tapefs("backup", "store", "daily", "--drive", "drive0", "--export-media-set",
                               "--output-format", "json").stdout)
    assert result["tapes"] == ["SM0001L8"]
    assert where(tape_setup, "SM0001L8")[0] == "mail slot"
    assert location("SM0001L8") == "offline"
    tapefs("media", "move", "SM0001L8", "--vault", "offsite")
    assert location("SM0001L8") == "vault-offsite"
    tape_setup.library.control("remove", barcode="SM0001L8")

    DatastoreRegistry().create("restored", tmp_path / "restored")
    restore = subprocess.Popen([command_path("tapefs"), "restore", result["media-set"], "store=restored", "--drive", "drive1",
                                "--wait", "60", "--output-format", "json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    # The operator acts on the request (the restore gives up by itself after 60 s: readline ends).
    asked = []
    for line in restore.stderr:
        asked.append(line)
        if "insert tape" in line:
            break
    assert "insert tape SM0001L8 (vault offsite) into changer lib (waiting up to 60 s)" in asked[-1], asked
    assert restore.poll() is None
    tape_setup.library.control("insert", barcode="SM0001L8")
    stdout, stderr = restore.communicate(timeout=120)
    assert restore.returncode == 0, "".join(asked) + stderr
    assert json.loads(stdout)["snapshots"] == [f"store:{snapshot}"]
    assert location("SM0001L8") == "online-lib"
