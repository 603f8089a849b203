"""R2: device faults injected through vtape give one error line that says what could not be read."""

import pytest

from tapefs.datastore.registry import DatastoreRegistry
from tapefs.jobs.errors import TapeWriteFailed
from tapefs.media.media_id import MediaStatus
from tests.helpers.commands import one_error_line, tapefs, vtape
from tests.helpers.reliability_corruption import tape_blocks
from tests.helpers.tape_jobs import run_backup
from tests.helpers.tape_setup import add_cartridges

pytestmark = [pytest.mark.vtape, pytest.mark.slow]


def test_medium_error_in_a_chunk_archive_names_the_tape_and_file_it_could_not_read(tape_setup, tmp_path):
    add_cartridges(tape_setup.library, 1, "64MiB", "4MiB")
    tape_setup.label("SM0001L8")
    tape_setup.add_snapshot("vm/100", 1)
    result = run_backup(tape_setup, eject_media=True)
    with tape_setup.inventory() as inventory, tape_setup.catalog() as catalog:
        archives = catalog.media_archives(inventory.find_media_by_label_text("SM0001L8").id.uuid)
    [file_number] = [number for number, archive in archives.items() if archive[0] == "chunk"]
    block, _, _ = tape_blocks(tape_setup.library.path / "cartridges" / "SM0001L8", file_number)[-1]
    tapefs("load-media", "SM0001L8", "--drive", "drive1")
    vtape("fault", tape_setup.library.path, "drive1", "--media-error-at", block)
    tapefs("unload", "--drive", "drive1")
    DatastoreRegistry().create("restored", tmp_path / "restored")
    failed = tapefs("restore", result.media_set, "restored", "--drive", "drive1", check=False)
    line = one_error_line(failed, 5, "tapefs")
    assert line.startswith(f"tapefs: error: tape SM0001L8 file {file_number}: cannot read it: "), line
    assert "3/11/00" in line


def test_write_medium_error_marks_the_tape_damaged_and_the_next_backup_uses_another_tape(tape_setup):
    add_cartridges(tape_setup.library, 2, "64MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8")
    for n in range(3):
        tape_setup.add_snapshot(f"vm/{100 + n}", 2)
    injected = []

    def fail_the_next_write(event):
        if not injected and event.message == "data" and event.current > 0:
            injected.append(vtape("fault", tape_setup.library.path, "drive0", "--fail-next", "1", "--sense", "3/0C/00"))

    with pytest.raises(TapeWriteFailed) as failure:
        run_backup(tape_setup, progress=fail_the_next_write)
    message = str(failure.value)
    assert "3/0C/00" in message and "tape SM0001L8 is marked damaged; " in message, message
    with tape_setup.inventory() as inventory:
        assert inventory.find_media_by_label_text("SM0001L8").status is MediaStatus.DAMAGED
        media_set = inventory.latest_media_set("daily")
    assert message.endswith(f"of media set {media_set}; the next backup starts a new media set on another tape"), (
        message
    )
    # As in PBS, a media set with a damaged tape is not written again: the next job starts a new one.
    second = run_backup(tape_setup)
    assert second.media_set != media_set and second.tapes == ["SM0002L8"]
    assert len(second.snapshots_written) == 3
