"""R2 device-fault scenarios through vtape's fault injection: a medium error on read or write,
early end of medium, a drive that is not ready, a changer that jams, a tape missing from its
slot. Each gives one clear error line; a backup goes on (or can go on) with the next tape; a
restore names exactly what it could not read and the rest restores identical."""

from __future__ import annotations

import subprocess

from tapefs.datastore.registry import DatastoreRegistry
from tapefs.media.media_id import MediaStatus
from tests.helpers.commands import one_error_line, tapefs, tapefs_json, vtape
from tests.helpers.reliability_campaign import Trial, scenario, tapefs_argv
from tests.helpers.reliability_corruption import snapshot_chunk_digests, tape_blocks
from tests.helpers.reliability_crash import (
    assert_datastore_sound,
    assert_next_backup_appends,
    latest_set,
    stored_data,
    tape_with_snapshots,
)
from tests.helpers.tape_jobs import assert_catalog_matches_tapes, run_backup
from tests.helpers.tape_setup import TapeSetup

DEVICE_FAILURE = 5


def fault(setup: TapeSetup, device: str, *options: object) -> None:
    vtape("fault", setup.library.path, device, *options)


def media_uuid(setup: TapeSetup, label: str) -> str:
    with setup.inventory() as inventory:
        return inventory.find_media_by_label_text(label).id.uuid


def stored_statuses(setup: TapeSetup) -> dict[str, MediaStatus | None]:
    with setup.inventory() as inventory:
        return {entry.id.label_text: entry.status for entry in inventory.list_media()}


def restore_all(setup: TapeSetup, media_set: str, store: str, *snapshots: str, check: bool = True):
    DatastoreRegistry().create(store, setup.root / store)
    return tapefs("restore", media_set, store, *snapshots, "--drive", "drive1", check=check)


def assert_restores_identical(setup: TapeSetup, store: str) -> None:
    original = stored_data(setup.datastore)
    copy = stored_data(DatastoreRegistry().lookup(store))
    for path, data in copy.items():
        assert original.get(path) == data, f"{path} restored differs"


@scenario(
    "drive-not-ready",
    "fault",
    "drive reports NOT READY; `tapefs backup` fails with one line (exit 5), writes nothing; once ready the backup succeeds",
)
def drive_not_ready(trial: Trial) -> None:
    setup = tape_with_snapshots(trial, 2, 1, tapes=2)
    fault(setup, "drive0", "--not-ready")
    failed = tapefs("backup", "store", "daily", "--drive", "drive0", check=False)
    line = one_error_line(failed, DEVICE_FAILURE, "tapefs")
    assert "drive0" in line or "not ready" in line.lower(), line
    fault(setup, "drive0", "--ready")
    result = tapefs_json("backup", "store", "daily", "--drive", "drive0")
    assert len(result["snapshots"]) == 2
    assert_catalog_matches_tapes(setup, result["media-set"], exact=True)


@scenario(
    "changer-jam",
    "fault",
    "the changer fails its next 1-6 commands (4/15/01); `tapefs backup` fails with one line (exit 5) or, when only the location queries failed, warns; the next backup succeeds",
)
def changer_jam(trial: Trial) -> None:
    setup = tape_with_snapshots(trial, 2, 1, tapes=2)
    # The first changer commands only refresh where tapes are (a failure there is a warning);
    # a seeded count of failures reaches the MOVE MEDIUM that loads the tape in some runs.
    fault(setup, "changer", "--fail-next", trial.rng.randint(1, 6), "--sense", "4/15/01")
    first = tapefs("backup", "store", "daily", "--drive", "drive0", check=False)
    if first.returncode == 0:
        trial.effective = False  # the failed command was one tapefs asks again
    else:
        # Warnings about the failed location queries may come first; the failure is one line.
        lines = first.stderr.strip().splitlines()
        assert first.returncode == DEVICE_FAILURE and "Traceback" not in first.stderr, first.stderr
        assert lines[-1].startswith("tapefs: error: ") and all("WARNING" in line for line in lines[:-1]), lines
    fault(setup, "changer", "--clear")
    result = tapefs_json("backup", "store", "daily", "--drive", "drive0")
    assert len(result["snapshots"]) + len(result["skipped"]) == 2
    assert_catalog_matches_tapes(setup, result["media-set"], exact=True)


@scenario(
    "tape-missing",
    "fault",
    "a tape of the set exported and taken out of the library; `tapefs restore` fails with one line (exit 5) naming it "
    "and leaves only complete snapshots",
)
def tape_missing(trial: Trial) -> None:
    setup = tape_with_snapshots(trial, 3, 2, tapes=3)
    result = run_backup(setup, eject_media=True)
    label = trial.rng.choice(result.tapes)
    tapefs("export-media", label, "--drive", "drive0")
    answer = setup.library.control("remove", barcode=label)
    assert "error" not in answer, answer
    line = one_error_line(restore_all(setup, result.media_set, "first", check=False), DEVICE_FAILURE, "tapefs")
    assert label in line, line
    assert_datastore_sound("first")  # what came off the tapes before the missing one is complete


@scenario(
    "early-end-of-medium",
    "fault",
    "cartridges with a 24 MiB capacity and 4 MiB early warning take 5 snapshots of 8 MiB: the backup goes on "
    "over several tapes, each but the last marked full; the set restores identical",
)
def early_end_of_medium(trial: Trial) -> None:
    setup = tape_with_snapshots(trial, 5, 2, tapes=4)
    result = run_backup(setup)
    assert len(result.tapes) > 1 and len(result.snapshots_written) == 5
    statuses = stored_statuses(setup)
    for label in result.tapes[:-1]:
        assert statuses[label] == MediaStatus.FULL, statuses
    assert_catalog_matches_tapes(setup, result.media_set, exact=True)
    restore_all(setup, result.media_set, "restored")
    assert stored_data(DatastoreRegistry().lookup("restored")) == stored_data(setup.datastore)


@scenario(
    "read-medium-error",
    "fault",
    "a medium error (3/11/00) on a random block of a chunk archive; the restore fails with one line naming "
    "the tape and file; every snapshot outside that archive restores identical",
)
def read_medium_error(trial: Trial) -> None:
    setup = tape_with_snapshots(trial, 3, 2, tapes=2)
    result = run_backup(setup)
    label = result.tapes[0]
    with setup.catalog() as catalog:
        archives = catalog.media_archives(media_uuid(setup, label))
    file_number = trial.rng.choice(sorted(n for n, archive in archives.items() if archive[0] == "chunk"))
    block, _, _ = trial.rng.choice(tape_blocks(setup.library.path / "cartridges" / label, file_number))
    tapefs("load-media", label, "--drive", "drive1")
    fault(setup, "drive1", "--media-error-at", block)
    tapefs("unload", "--drive", "drive1")
    line = one_error_line(restore_all(setup, result.media_set, "first", check=False))
    assert label in line and f"file {file_number}" in line, line
    damaged = {digest.hex() for digest in archives[file_number][2]}
    with setup.catalog() as catalog:
        places = catalog.snapshots_in_set(result.media_set)
    intact = [p.snapshot for p in places if not snapshot_chunk_digests(setup.datastore, p.snapshot) & damaged]
    if intact:
        restore_all(setup, result.media_set, "intact", *(f"store:{name}" for name in intact))
        assert_restores_identical(setup, "intact")


@scenario(
    "write-medium-error",
    "fault",
    "a write error (3/0C/00) at a seeded moment of `tapefs backup`; one error line (exit 5); the tape is "
    "stored as damaged; the next backup starts a new media set on other tapes, which restores identical",
)
def write_medium_error(trial: Trial) -> None:
    setup = tape_with_snapshots(trial, 4, 2, tapes=4)
    backup = subprocess.Popen(
        tapefs_argv("backup", "store", "daily", "--drive", "drive0"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        backup.wait(timeout=trial.rng.uniform(0.5, 5.0))
        trial.effective = False
    except subprocess.TimeoutExpired:
        fault(setup, "drive0", "--fail-next", "1", "--sense", "3/0C/00")
    _, stderr = backup.communicate(timeout=300)
    media_set = latest_set(setup)
    if trial.effective and backup.returncode != 0:
        assert backup.returncode == DEVICE_FAILURE and len(stderr.strip().splitlines()) == 1, stderr
        assert "is marked damaged" in stderr, stderr
        assert MediaStatus.DAMAGED in stored_statuses(setup).values()
        assert_catalog_matches_tapes(setup, media_set, exact=False)
        # As in PBS, a set with a damaged tape is not written again: the next backup starts a new
        # set on other tapes, and that set restores whole.
        result = tapefs_json("backup", "store", "daily", "--drive", "drive0")
        assert result["media-set"] != media_set and len(result["snapshots"]) == 4
        restore_all(setup, result["media-set"], "restored")
        assert stored_data(DatastoreRegistry().lookup("restored")) == stored_data(setup.datastore)
        return
    trial.effective = False  # the job was done, or the failure hit a command that is retried
    fault(setup, "drive0", "--clear")
    assert_next_backup_appends(setup, media_set, 4, setup.root / "restored")
