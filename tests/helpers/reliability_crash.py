"""R1 crash scenarios: a process killed with -9 at a seeded random moment of its work, then what a
user relies on afterwards: no snapshot half visible, the datastore verifies, the media catalog
matches the tape, and the next job succeeds (on tape: appending after the last complete file)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.manifest import Manifest
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.device.changer import Changer
from tests.helpers.commands import tapefs, tapefs_json
from tests.helpers.fuse_mounts import MountedTree
from tests.helpers.reliability_campaign import Trial, scenario, tapefs_argv
from tests.helpers.tape_jobs import assert_catalog_matches_tapes, read_tape, run_backup, snapshot_tree
from tests.helpers.tape_setup import CHUNK, TapeSetup, add_cartridges

MiB = 1024 * 1024


def write_source(trial: Trial, path: Path, files: int, size: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for n in range(files):
        (path / f"file{n}.bin").write_bytes(trial.random_bytes(size))
    (path / "notes.txt").write_text(f"seeded tree {trial.rng.random()}\n")
    return path


def stored_data(store: Datastore) -> dict[str, bytes]:
    """Every snapshot file and chunk, without the status and history files of verify and gc runs."""
    return {path: data for path, data in snapshot_tree(store).items() if path not in (".verify-status", ".gc-status", ".gc-history")}


def create_datastore(name: str, path: Path) -> None:
    """A registered datastore without the 65536 chunk prefix directories, which take half a minute
    to create on a loaded machine and test nothing here."""
    DatastoreRegistry().add(name, Datastore.create(path, name, prefix_dirs=False).root)


def assert_datastore_sound(name: str) -> list[str]:
    """Every snapshot `tapefs datastore snapshots` lists as finished is complete (its manifest loads and names
    files that are there) and `tapefs datastore verify` finds nothing bad; the listed snapshots."""
    store = DatastoreRegistry().lookup(name)
    listed = tapefs_json("datastore", "snapshots", name)
    # A killed backup's directory is listed as abandoned (and the next backup removes it), never as a snapshot.
    assert all(entry.get("unfinished") in (None, "abandoned") for entry in listed), listed
    paths = [entry["snapshot"] for entry in listed if "unfinished" not in entry]
    for snapshot in paths:
        directory = store.root / snapshot
        manifest = Manifest.load(directory)
        for entry in manifest.files:
            assert (directory / entry.filename).is_file(), f"{snapshot} is listed without its {entry.filename}"
    report = json.loads(tapefs("datastore", "verify", name, "--output-format", "json", check=False).stdout)
    assert report["ok"], f"datastore {name} does not verify after the crash: {report}"
    return paths


def assert_restores(name: str, snapshot: str, source: Path, target: Path) -> None:
    tapefs("datastore", "restore", name, snapshot, "root.pxar", target)
    diff = subprocess.run(["diff", "-r", str(source), str(target)], capture_output=True, text=True)
    assert diff.returncode == 0, f"{snapshot} does not restore byte-identical: {diff.stdout[:300]}"


@scenario(
    "datastore-backup-kill",
    "crash",
    "kill -9 during `tapefs datastore backup`; listed snapshots complete, verify clean, next backup restores identical",
)
def datastore_backup_kill(trial: Trial) -> None:
    create_datastore("store", trial.root / "store")
    source = write_source(trial, trial.root / "source", 4, 3 * MiB)
    backup = tapefs_argv("datastore", "backup", "store", "host/a", source)
    seconds = trial.timed(backup)  # the first backup reads as much: the time scale of the kill
    write_source(trial, source, 2, 3 * MiB)  # the killed backup has new data to write
    trial.kill_within(backup, seconds)
    before = assert_datastore_sound("store")
    assert 1 <= len(before) <= 2
    tapefs("datastore", "backup", "store", "host/a", source)
    after = assert_datastore_sound("store")
    assert len(after) == len(before) + 1
    assert not any("unfinished" in entry for entry in tapefs_json("datastore", "snapshots", "store"))
    assert_restores("store", after[-1], source, trial.root / "restored")


@scenario(
    "datastore-gc-kill",
    "crash",
    "kill -9 during `tapefs datastore gc`; kept snapshots verify and restore identical, gc runs again",
)
def datastore_gc_kill(trial: Trial) -> None:
    create_datastore("store", trial.root / "store")
    sources = []
    for n in range(3):
        sources.append(write_source(trial, trial.root / f"source{n}", 3, 2 * MiB))
        tapefs("datastore", "backup", "store", f"host/h{n}", sources[-1])
    snapshots = assert_datastore_sound("store")
    tapefs("datastore", "forget", "store", snapshots[0])
    # a GC that removes nothing marks as much: the time scale of the kill
    seconds = trial.timed(tapefs_argv("datastore", "gc", "store", "--atime-cutoff", "100000"))
    trial.kill_within(tapefs_argv("datastore", "gc", "store", "--atime-cutoff", "0"), seconds)
    assert assert_datastore_sound("store") == snapshots[1:]
    tapefs("datastore", "gc", "store", "--atime-cutoff", "0")
    assert assert_datastore_sound("store") == snapshots[1:]
    for n, snapshot in enumerate(snapshots[1:], start=1):
        assert_restores("store", snapshot, sources[n], trial.root / f"restored{n}")


@scenario(
    "datastore-sync-kill",
    "crash",
    "kill -9 during `tapefs datastore sync`; target lists only complete snapshots and verifies, sync again copies the rest identical",
)
def datastore_sync_kill(trial: Trial) -> None:
    create_datastore("store", trial.root / "store")
    create_datastore("copy", trial.root / "copy")
    for n in range(3):
        tapefs("datastore", "backup", "store", f"host/h{n}", write_source(trial, trial.root / f"source{n}", 2, 2 * MiB))
    create_datastore("probe", trial.root / "probe")  # a whole sync into it: the time scale of the kill
    seconds = trial.timed(tapefs_argv("datastore", "sync", "store", "probe"))
    trial.kill_within(tapefs_argv("datastore", "sync", "store", "copy"), seconds)
    assert_datastore_sound("copy")
    tapefs("datastore", "sync", "store", "copy")
    assert assert_datastore_sound("copy") == assert_datastore_sound("store")
    registry = DatastoreRegistry()
    assert stored_data(registry.lookup("copy")) == stored_data(registry.lookup("store"))


def tape_with_snapshots(trial: Trial, snapshots: int, chunks: int, tapes: int = 4, probe_tapes: int = 0) -> TapeSetup:
    """A library with `tapes` cartridges labelled for pool `daily` (and `probe_tapes` more, with
    other barcodes, for pool `other`) and a datastore of `snapshots` images of `chunks` chunks."""
    setup = trial.tape_setup()
    barcodes = add_cartridges(setup.library, tapes, "24MiB", "4MiB")
    setup.label(*barcodes)
    if probe_tapes:
        setup.label(*add_cartridges(setup.library, probe_tapes, "24MiB", "4MiB", prefix="PR"), pool="other")
    for n in range(snapshots):
        setup.add_snapshot(f"vm/{100 + n}", 0, data=trial.random_bytes(chunks * CHUNK))
    return setup


def tape_moved(setup: TapeSetup) -> Callable[[], bool]:
    """A test that turns true once the library moves a tape (it replaces its state.json on each
    move): where a tape job's work starts, after its start-up."""
    state = setup.library.path / "state.json"

    def stamp() -> tuple[int, int]:
        info = state.stat()
        return info.st_ino, info.st_mtime_ns

    before = stamp()
    return lambda: stamp() != before


def cartridge_sizes(setup: TapeSetup) -> Callable[[], tuple[int, ...]]:
    """A stamp of what the library's cartridges hold: the size of each one's block index."""
    indexes = sorted((setup.library.path / "cartridges").glob("*/index"))
    return lambda: tuple(index.stat().st_size for index in indexes)


def tree_stamp(path: Path) -> Callable[[], tuple[int, int]]:
    """A stamp of what a directory tree holds: its number of entries and their total size."""

    def stamp() -> tuple[int, int]:
        count = size = 0
        for directory, dirs, files in os.walk(path):
            count += len(dirs) + len(files)
            for name in files:
                try:
                    size += os.lstat(os.path.join(directory, name)).st_size
                except FileNotFoundError:  # a temporary file renamed meanwhile
                    pass
        return count, size

    return stamp


def timed_backup(trial: Trial, setup: TapeSetup, to_last_write: bool = False) -> float:
    """Seconds a whole `tapefs backup` of the datastore takes, written to pool `other` (its own
    tapes and media set, so the `daily` set the scenario kills stays untouched): the time scale
    of a kill during the same backup to `daily`, whose work begins with the first tape move
    (and, `to_last_write`, ends with the last block or filemark written)."""
    os.sync()  # the setup's writes are not the probe's
    return trial.timed(
        tapefs_argv("backup", "store", "other", "--drive", "drive0"),
        begins=tape_moved(setup),
        output=cartridge_sizes(setup) if to_last_write else None,
    )


def complete_files(setup: TapeSetup, media_set: str) -> dict[str, int]:
    """Label text → the highest file number of a complete archive on that tape of the set."""
    with setup.inventory() as inventory:
        labels = [inventory.get(uuid).id.label_text for uuid in inventory.compute_media_set_members(media_set)]
    return {label: max(read_tape(setup, label), default=0) for label in labels}


def assert_next_backup_appends(setup: TapeSetup, media_set: str, total: int, restored: Path) -> None:
    """The next backup continues the set after every complete file, and the set restores whole."""
    last = complete_files(setup, media_set)
    result = tapefs_json("backup", "store", "daily", "--drive", "drive0")
    assert result["media-set"] == media_set
    assert len(result["skipped"]) + len(result["snapshots"]) == total
    with setup.inventory() as inventory, setup.catalog() as catalog:
        for uuid in inventory.compute_media_set_members(media_set):
            label = inventory.get(uuid).id.label_text
            for place in catalog.snapshots_in_set(media_set):
                if place.media_uuid == uuid and place.snapshot in result["snapshots"]:
                    assert place.file_number > last.get(label, 0), (
                        f"{place.snapshot} written at file {place.file_number} of {label}, not after file {last.get(label, 0)}"
                    )
    assert_catalog_matches_tapes(setup, media_set, exact=False)
    create_datastore("restored", restored)
    tapefs("restore", media_set, "restored", "--drive", "drive1")
    assert stored_data(DatastoreRegistry().lookup("restored")) == stored_data(setup.datastore)


def latest_set(setup: TapeSetup) -> str | None:
    with setup.inventory() as inventory:
        return inventory.latest_media_set("daily")


def assert_killed_backup_recovers(setup: TapeSetup, restored: Path) -> None:
    """After a killed `tapefs backup` of the five snapshots: the catalog matches the tapes and
    the next backup continues the set (or starts it, when the kill came before it was made)."""
    media_set = latest_set(setup)
    if media_set is None:
        tapefs("backup", "store", "daily", "--drive", "drive0")
        media_set = latest_set(setup)
    assert_catalog_matches_tapes(setup, media_set, exact=False)
    assert_next_backup_appends(setup, media_set, 5, restored)


@scenario(
    "tape-backup-kill",
    "crash",
    "kill -9 during `tapefs backup`; catalog matches the tapes, next backup appends after the last complete file, set restores identical",
)
def tape_backup_kill(trial: Trial) -> None:
    setup = tape_with_snapshots(trial, 5, 2, probe_tapes=3)
    seconds = timed_backup(trial, setup)
    trial.kill_within(tapefs_argv("backup", "store", "daily", "--drive", "drive0"), seconds)
    assert_killed_backup_recovers(setup, trial.root / "restored")


@scenario(
    "vtape-daemon-kill",
    "crash",
    "kill -9 of the vtape daemon during `tapefs backup`; a one-line error, catalog matches the tapes, next backup appends, set restores identical",
)
def vtape_daemon_kill(trial: Trial) -> None:
    setup = tape_with_snapshots(trial, 5, 2, probe_tapes=3)
    # The daemon killed after the last tape command changes nothing the job sees: the window
    # ends at the last write.
    seconds = timed_backup(trial, setup, to_last_write=True)
    backup = subprocess.Popen(
        tapefs_argv("backup", "store", "daily", "--drive", "drive0"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        backup.wait(timeout=trial.kill_moment(seconds))
        trial.effective = False
    except subprocess.TimeoutExpired:
        setup.library.kill()
    _, stderr = backup.communicate(timeout=120)
    if trial.effective:
        setup.library.start()
    if backup.returncode == 0:
        trial.effective = False  # the job had done its last tape command before the daemon died
    else:
        # A warning that the changer could not be queried may come first; the failure is one line.
        lines = stderr.strip().splitlines()
        assert "Traceback" not in stderr and lines[-1].startswith("tapefs: error: "), stderr
        assert all("WARNING" in line for line in lines[:-1]), stderr
    assert_killed_backup_recovers(setup, trial.root / "restored")


@scenario(
    "tape-restore-kill",
    "crash",
    "kill -9 during `tapefs restore`; target lists only complete snapshots and verifies, restore again completes identical",
)
def tape_restore_kill(trial: Trial) -> None:
    setup = tape_with_snapshots(trial, 4, 2)
    result = run_backup(setup, eject_media=True)
    restore = tapefs_argv("restore", result.media_set, "restored", "--drive", "drive1")
    create_datastore("probe", trial.root / "probe")  # a whole restore into it: the time scale of the kill
    probe = tapefs_argv("restore", result.media_set, "probe", "--drive", "drive1")
    # The restore ends with a syncfs(): what the setup left unwritten must not make the probe
    # the slower one.
    os.sync()
    seconds = trial.timed(probe, begins=tape_moved(setup), output=tree_stamp(trial.root / "probe"))
    # The kill comes between the first tape move and the probe's last write into its datastore
    # (after it the restore only syncs and exits). The killed restore starts as the probe did,
    # every tape in its slot, so that both make the same moves.
    with Changer.open(setup.library.changer) as changer:
        changer.unload(drive=1)
    create_datastore("restored", trial.root / "restored")
    os.sync()
    trial.kill_within(restore, seconds)
    assert_datastore_sound("restored")
    tapefs("restore", result.media_set, "restored", "--drive", "drive1")
    assert_datastore_sound("restored")
    restored = DatastoreRegistry().lookup("restored")
    # A chunk write the kill cut short leaves its temp file (`.chunks/XXXX/<digest>.tmp_…`), as in
    # PBS; garbage collection removes it (listed, not read: a read would make it look recent).
    if any(".tmp_" in path.name for path in (restored.root / ".chunks").rglob("*")):
        tapefs("datastore", "gc", "restored", "--atime-cutoff", "0")
    assert stored_data(restored) == stored_data(setup.datastore)


@scenario(
    "catalog-rebuild-kill",
    "crash",
    "kill -9 during `tapefs catalog --scan --force`; run again (without --force) it goes on and the catalog matches the tape exactly",
)
def catalog_rebuild_kill(trial: Trial) -> None:
    setup = tape_with_snapshots(trial, 3, 2)
    result = run_backup(setup)
    label = result.tapes[0]
    rebuild = tapefs_argv("catalog", "--label-text", label, "--scan", "--force", "--drive", "drive0")
    trial.kill_within(rebuild, trial.timed(rebuild))  # a whole rebuild first: the time scale
    if trial.effective:  # run again without --force: the interrupted scan goes on where it stopped
        again = tapefs("catalog", "--label-text", label, "--scan", "--drive", "drive0", check=False)
        # Killed before the scan dropped the old catalog: that one is still whole.
        assert again.returncode == 0 or "already has a catalog" in again.stderr, again.stderr
    assert_catalog_matches_tapes(setup, result.media_set, exact=True)


@scenario(
    "mount-kill",
    "crash",
    "kill -9 of `tapefs mount` while `cp` reads an image from tape; cp fails, `tapefs umount` clears the dead mount, the drives serve a restore, a new mount with the same cache copies the image identical",
)
def mount_kill(trial: Trial) -> None:
    setup = tape_with_snapshots(trial, 0, 0)
    data = trial.random_bytes(10 * CHUNK)
    snapshot = setup.add_snapshot("vm/100", 0, data=data)
    result = run_backup(setup, eject_media=True)
    mountpoint, cache = trial.root / "mnt", trial.root / "mount-cache"
    mounted = MountedTree(os.environ.copy(), mountpoint, "--cache-dir", cache)
    image = mountpoint / "snapshots" / "store" / snapshot / "disk.img"
    copy = trial.root / "copy.img"
    try:
        # The kill comes when the copy has a seeded share of the image: a time would mostly fall
        # before the first chunk arrives or after the last.
        kill_at_size = int(trial.rng.uniform(0.05, 0.9) * len(data))
        cp = subprocess.Popen(["cp", str(image), str(copy)], stderr=subprocess.PIPE, text=True)
        while cp.poll() is None and (not copy.exists() or copy.stat().st_size < kill_at_size):
            time.sleep(0.002)
        trial.effective = cp.poll() is None  # else the copy ended before the kill
        mounted.process.kill()
        mounted.process.wait(timeout=30)
        _, error = cp.communicate(timeout=60)
        if trial.effective:
            assert cp.returncode != 0 and "Transport endpoint is not connected" in error, error
    finally:
        mounted.cleanup()
    # The dead server left its mount point behind: `tapefs umount` clears it.
    tapefs("umount", mountpoint)
    assert not os.path.ismount(mountpoint)
    # No drive stays reserved for the dead mount: a restore reads the set.
    DatastoreRegistry().create("restored", trial.root / "restored")
    tapefs("restore", result.media_set, "restored", "--drive", "drive1")
    assert stored_data(DatastoreRegistry().lookup("restored")) == stored_data(setup.datastore)
    # Whatever the killed server left in the cache, a new one copies the image identical.
    again = MountedTree(os.environ.copy(), mountpoint, "--cache-dir", cache)
    try:
        subprocess.run(["cp", str(image), str(copy)], check=True, timeout=300)
        assert copy.read_bytes() == data
        assert again.unmount() == 0, again.log()
    finally:
        again.cleanup()
