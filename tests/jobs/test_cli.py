"""`tapefs backup` and `tapefs restore` as a user runs them, including a backup killed with -9."""
import json
import os
import signal
import subprocess
import time

import pytest

from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.naming import BackupGroup, BackupSnapshot
from tapefs.datastore.registry import DatastoreRegistry
from tests.helpers.commands import command_path, tapefs
from tests.helpers.tape_jobs import assert_catalog_matches_tapes, snapshot_tree
from tests.helpers.tape_setup import add_cartridges

pytestmark = pytest.mark.vtape


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
    assert empty.returncode == 5
    assert empty.stderr.strip().splitlines() == [
        "tapefs: error: alloc writable media in pool 'daily' failed: no usable media found"]


@pytest.mark.slow
def test_backup_killed_with_sigkill_then_run_again_restores_everything(tape_setup, tmp_path):
    add_cartridges(tape_setup.library, 4, "24MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8", "SM0003L8", "SM0004L8")
    for n in range(6):
        tape_setup.add_snapshot(f"vm/{100 + n}", 2)
    process = subprocess.Popen([command_path("tapefs"), "backup", "store", "daily", "--drive", "drive0"],
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


@pytest.mark.slow
def test_vtape_daemon_killed_mid_backup_reports_lost_connection_and_a_later_backup_works(tape_setup, tmp_path):
    # One tape holds it all: the daemon dies while the job writes in the middle of it.
    add_cartridges(tape_setup.library, 2, "400MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8")
    for n in range(6):
        tape_setup.add_snapshot(f"vm/{100 + n}", 6)
    process = subprocess.Popen([command_path("tapefs"), "backup", "store", "daily", "--drive", "drive0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.monotonic() + 120
    with tape_setup.catalog() as catalog, tape_setup.inventory() as inventory:
        while len(catalog.snapshots_in_set(inventory.latest_media_set("daily") or "")) < 2:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    # Frozen at once, so the job (with ~100 MiB still to write) cannot finish before the kill,
    # however loaded the machine is.
    tape_setup.library.process.send_signal(signal.SIGSTOP)
    assert process.poll() is None, "the backup finished before the daemon was stopped"
    tape_setup.library.kill()
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 5 and "Traceback" not in stderr
    [line] = stderr.strip().splitlines()
    with tape_setup.inventory() as inventory, tape_setup.catalog() as catalog:
        media_set = inventory.latest_media_set("daily")
        written = sorted(place.snapshot for place in catalog.snapshots_in_set(media_set))
    assert line.startswith("tapefs: error: drive drive0: connection lost during ")
    assert f"; {len(written)} snapshots of this job are on tape and in the catalog; media set {media_set}: tape SM000" in line
    tape = line.split(": tape ", 1)[1].split()[0]
    assert line.endswith(f"the next backup to this media set continues on {tape} after its end of data")

    tape_setup.library.start()
    assert_catalog_matches_tapes(tape_setup, media_set, exact=False)
    DatastoreRegistry().create("early", tmp_path / "early")
    early = json.loads(tapefs("restore", media_set, "early", "--drive", "drive1", "--output-format", "json").stdout)
    assert sorted(early["snapshots"]) == [f"store:{name}" for name in written]
    second = json.loads(tapefs("backup", "store", "daily", "--drive", "drive0", "--output-format", "json").stdout)
    assert second["media-set"] == media_set and sorted(second["skipped"]) == written
    assert second["tapes"][0] == tape and len(second["snapshots"]) + len(written) == 6
    assert_catalog_matches_tapes(tape_setup, media_set, exact=False)
    DatastoreRegistry().create("restored", tmp_path / "restored")
    tapefs("restore", media_set, "restored", "--drive", "drive1")
    assert snapshot_tree(DatastoreRegistry().lookup("restored")) == snapshot_tree(tape_setup.datastore)


def test_restore_keeps_existing_snapshots_and_says_so(tape_setup, tmp_path):
    add_cartridges(tape_setup.library, 1, "32MiB", "4MiB")
    tape_setup.label("SM0001L8")
    existing = tape_setup.add_snapshot("vm/100", 1)
    fresh = tape_setup.add_snapshot("vm/101", 1)
    media_set = json.loads(tapefs("backup", "store", "daily", "--drive", "drive0", "--output-format", "json").stdout)[
        "media-set"]
    target = DatastoreRegistry().create("restored", tmp_path / "restored")
    # a snapshot already in the target, here an unfinished one holding something of its own
    directory = target.create_snapshot_dir(BackupSnapshot.parse(existing))
    (directory / "index.json.blob").write_bytes(b"IMPORTANT-DATA")

    def kept_as_it_was():
        assert os.listdir(directory) == ["index.json.blob"]
        assert (directory / "index.json.blob").read_bytes() == b"IMPORTANT-DATA"

    def warning(snapshot):
        return f"tapefs: warning: snapshot restored:{snapshot} already exists; kept as it was, not restored from tape"

    done = tapefs("restore", media_set, "store=restored", "--drive", "drive1")  # a full pass
    assert done.stderr.splitlines() == [warning(existing)]
    lines = done.stdout.splitlines()
    assert lines[:2] == [f"restored store:{fresh}", f"kept as it was: restored:{existing}"]
    assert lines[-1].endswith(", 1 existing snapshots kept as they were")
    kept_as_it_was()
    assert (target.snapshot_path(BackupSnapshot.parse(fresh)) / "index.json.blob").read_bytes() == \
        (tape_setup.datastore.snapshot_path(BackupSnapshot.parse(fresh)) / "index.json.blob").read_bytes()

    done = tapefs("restore", media_set, "store=restored", f"store:{existing}", f"store:{fresh}", "--drive", "drive1",
                  "--output-format", "json")  # selective
    assert done.stderr.splitlines() == [warning(existing), warning(fresh)]
    result = json.loads(done.stdout)
    assert result["snapshots"] == [] and result["kept"] == [f"restored:{existing}", f"restored:{fresh}"]
    assert result["skipped"] == [f"store:{existing}", f"store:{fresh}"]
    kept_as_it_was()
