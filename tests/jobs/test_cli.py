"""`tapefs backup` and `tapefs restore` as a user runs them, including a backup killed with -9."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.naming import BackupGroup
from tapefs.datastore.registry import DatastoreRegistry
from tests.jobs.conftest import add_cartridges
from tests.jobs.test_backup import assert_catalog_matches_tapes, snapshot_tree

pytestmark = pytest.mark.vtape

TAPEFS = [sys.executable, "-m", "tapefs"]


def tapefs(*args, check=True):
    done = subprocess.run([*TAPEFS, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow
def test_backup_and_restore_commands_round_trip_a_directory(tape_setup, tmp_path):
    add_cartridges(tape_setup.library, 2, "32MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8")
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "random.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (source / "text.txt").write_text("hello tape\n" * 1000)
    os.symlink("text.txt", source / "link")
    snapshot = str(backup(tape_setup.datastore, BackupGroup.parse("host/files"), parse_sources([str(source)]),
                          sync=False).snapshot)
    result = json.loads(tapefs("backup", "store", "daily", "--drive", "drive0", "--eject-media",
                               "--output-format", "json").stdout)
    assert result["snapshots"] == [snapshot] and result["tapes"] == ["SM0001L8"]

    DatastoreRegistry().create("restored", tmp_path / "restored")
    restored = json.loads(tapefs("restore", result["media-set"], "store=restored", "--drive", "drive1",
                                 "--output-format", "json-pretty").stdout)
    assert restored["snapshots"] == [f"store:{snapshot}"]
    tapefs("datastore", "restore", "restored", snapshot, "root.pxar", str(tmp_path / "out"))
    diff = subprocess.run(["diff", "-r", "--no-dereference", str(source), str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert diff.returncode == 0, diff.stdout + diff.stderr


def test_unknown_pool_and_empty_pool_exit_non_zero_with_one_line(tape_setup):
    tape_setup.add_snapshot("vm/100", 1)
    unknown = tapefs("backup", "store", "nosuchpool", "--drive", "drive0", check=False)
    assert unknown.returncode != 0 and "no media pool named 'nosuchpool'" in unknown.stderr
    empty = tapefs("backup", "store", "daily", "--drive", "drive0", check=False)
    assert empty.returncode == 1
    assert empty.stderr.strip().splitlines() == [
        "tapefs: error: alloc writable media in pool 'daily' failed: no usable media found"]


@pytest.mark.slow
def test_backup_killed_with_sigkill_then_run_again_restores_everything(tape_setup, tmp_path):
    add_cartridges(tape_setup.library, 4, "24MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8", "SM0003L8", "SM0004L8")
    for n in range(6):
        tape_setup.add_snapshot(f"vm/{100 + n}", 2)
    process = subprocess.Popen([*TAPEFS, "backup", "store", "daily", "--drive", "drive0"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.monotonic() + 120
    with tape_setup.catalog() as catalog, tape_setup.inventory() as inventory:
        # Kill once some snapshots are on tape and the job is in the middle of the next one.
        while len(catalog.snapshots_in_set(inventory.latest_media_set("daily") or "")) < 2:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    time.sleep(0.15)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with tape_setup.inventory() as inventory:
        media_set = inventory.latest_media_set("daily")
    assert_catalog_matches_tapes(tape_setup, media_set, exact=False)
    # Right after the crash, the snapshots the catalog names restore fine.
    with tape_setup.catalog() as catalog:
        registered = {f"store:{place.snapshot}" for place in catalog.snapshots_in_set(media_set)}
    DatastoreRegistry().create("early", tmp_path / "early")
    early = json.loads(tapefs("restore", media_set, "early", "--drive", "drive1", "--output-format", "json").stdout)
    assert registered <= set(early["snapshots"])

    second = json.loads(tapefs("backup", "store", "daily", "--drive", "drive0", "--output-format", "json").stdout)
    assert second["media-set"] == media_set and len(second["skipped"]) >= 2
    assert len(second["skipped"]) + len(second["snapshots"]) == 6
    assert_catalog_matches_tapes(tape_setup, media_set, exact=False)

    DatastoreRegistry().create("restored", tmp_path / "restored")
    tapefs("restore", media_set, "restored", "--drive", "drive1")
    assert snapshot_tree(DatastoreRegistry().lookup("restored")) == snapshot_tree(tape_setup.datastore)
