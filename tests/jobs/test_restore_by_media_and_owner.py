"""`tapefs restore --media LABEL` (what one tape holds; the set's other tapes it shares chunks with
are named, and asked for through the operator wait) and `--owner` (the owner of restored groups,
checked against existing ones as PBS does), as a user runs them against a real vtape library."""
import json
import os
import subprocess
import time

import pytest

from tapefs.datastore.naming import BackupSnapshot
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.datastore.snapshot_admin import group_owner
from tapefs.media.media_admin import export_media
from tapefs.media.tape_config import load_tape_config
from tests.helpers.commands import command_path, one_error_line, tapefs
from tests.helpers.tape_jobs import run_backup
from tests.helpers.tape_setup import CHUNK, add_cartridges

pytestmark = pytest.mark.vtape


@pytest.fixture
def two_tapes(tape_setup, tmp_path):
    """vm/100 wholly on SM0001L8; vm/101 (vm/100's data plus two new chunks) with its archive on
    SM0002L8 and the chunks it shares with vm/100 on SM0001L8. A datastore `restored` to restore into."""
    add_cartridges(tape_setup.library, 2, "16MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8")
    shared = os.urandom(2 * CHUNK)
    first = tape_setup.add_snapshot("vm/100", 0, data=shared)
    second = tape_setup.add_snapshot("vm/101", 2, data=shared)
    result = run_backup(tape_setup, eject_media=True)
    assert result.tapes == ["SM0001L8", "SM0002L8"]
    with tape_setup.catalog() as catalog:
        places = {p.snapshot: p.seq_nr for p in catalog.snapshots_in_set(result.media_set)}
    assert places == {first: 0, second: 1}
    DatastoreRegistry().create("restored", tmp_path / "restored")
    return tape_setup, result.media_set, first, second


@pytest.mark.slow
def test_restore_by_tape_restores_its_snapshots_and_reads_the_tapes_it_shares_chunks_with(two_tapes):
    setup, media_set, first, second = two_tapes
    plan = json.loads(tapefs("restore", "--media", "SM0002L8", "restored", "--plan", "--output-format", "json").stdout)
    assert [row["label-text"] for row in plan] == ["SM0001L8", "SM0002L8"]

    # Without the other tape in the library: one line naming it, nothing restored.
    with setup.inventory() as inventory:  # the operator takes it out through the mail slot
        export_media(load_tape_config().changers["lib"], "SM0001L8", inventory)
    assert setup.library.control("remove", barcode="SM0001L8")["ok"]
    failed = tapefs("restore", "--media", "SM0002L8", "restored", "--drive", "drive1", check=False)
    assert one_error_line(failed, status=5) == (
        "tapefs: error: tape SM0001L8 is not in changer lib: the snapshots restored need chunks on tape "
        "SM0001L8 too (bring them into the library, or give --wait SECONDS to be asked for each)")
    restored = DatastoreRegistry().lookup("restored")
    assert not restored.snapshot_path(BackupSnapshot.parse(second)).exists()

    # With a wait, the operator is asked for it and the restore goes on once it is in a mail slot.
    process = subprocess.Popen(
        [command_path("tapefs"), "restore", "--media", "SM0002L8", "restored", "--drive", "drive1",
         "--wait", "60", "--output-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        asked = ""
        deadline = time.monotonic() + 60
        while "insert tape SM0001L8" not in asked:
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            asked += process.stderr.readline()
        assert "share chunks with tape SM0001L8 of media set" in asked
        setup.library.control("insert", barcode="SM0001L8")
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    done = json.loads(stdout)
    assert done["snapshots"] == [f"store:{second}"] and done["tapes"] == ["SM0001L8", "SM0002L8"]
    assert restored.snapshot_path(BackupSnapshot.parse(second)).is_dir()
    assert not restored.snapshot_path(BackupSnapshot.parse(first)).exists()  # on the other tape only
    tapefs("datastore", "verify", "restored")


@pytest.mark.slow
def test_owner_of_restored_groups_and_refusal_of_another_owners_group(two_tapes):
    _, media_set, first, second = two_tapes
    bad = tapefs("restore", media_set, "restored", first, "--owner", "alice", check=False)
    assert one_error_line(bad, status=2) == (
        "tapefs: error: invalid owner 'alice' (expected user@realm or user@realm!token)")

    tapefs("restore", "--media", "SM0001L8", "restored", "--owner", "alice@pbs", "--drive", "drive1")
    restored = DatastoreRegistry().lookup("restored")
    group = BackupSnapshot.parse(first).group
    assert group_owner(restored, group) == "alice@pbs"
    # Without --owner a new group gets the default owner, as before.
    tapefs("restore", media_set, "restored", second, "--drive", "drive1")
    assert group_owner(restored, BackupSnapshot.parse(second).group) == "root@pam"

    # Into alice's group as bob: refused, and the group keeps what it had.
    denied = tapefs("restore", "--media", "SM0001L8", "restored", "--owner", "bob@pbs", "--drive", "drive1",
                    check=False)
    assert one_error_line(denied, status=1) == (
        f"tapefs: error: snapshot {first}: group vm/100 of datastore restored belongs to alice@pbs, "
        "not bob@pbs; nothing of it was restored")
    assert group_owner(restored, group) == "alice@pbs"


def test_restore_by_tape_errors(tape_setup):
    add_cartridges(tape_setup.library, 1, "16MiB", "4MiB")
    tape_setup.label("SM0001L8")
    unknown = tapefs("restore", "--media", "NOPE01L8", "store", check=False)
    assert one_error_line(unknown, status=3) == "tapefs: error: no tape labelled 'NOPE01L8' in the inventory"
    empty = tapefs("restore", "--media", "SM0001L8", "store", check=False)
    assert one_error_line(empty, status=1) == (
        "tapefs: error: tape SM0001L8 is not a member of a media set: it holds no backup")
    missing = tapefs("restore", "store", check=False)
    assert missing.returncode == 2 and "give MEDIA-SET and STORE-MAP" in missing.stderr
