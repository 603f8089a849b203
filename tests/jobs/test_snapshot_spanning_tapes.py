"""A snapshot archive bigger than a whole tape: written in parts on consecutive tapes, registered
in the catalog at its first part, and restored by a full pass, selectively, and with a rebuilt
catalog."""
import os

import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupSnapshot
from tapefs.jobs.snapshot_files import CLIENT_LOG_NAME
from tapefs.media.media_content import media_content
from tapefs.tapeformat.block_device import Mark
from tapefs.tapeformat.snapshot_archive import SNAPSHOT_MAGICS
from tapefs.tapeformat.tape_file import open_tape_file
from tests.helpers.tape_jobs import run_backup, run_restore, snapshot_tree
from tests.helpers.tape_setup import MiB, add_cartridges

pytestmark = [pytest.mark.vtape, pytest.mark.slow]


def snapshot_parts(setup, label_text):
    """(file number, part number, incomplete, content uuid) of every snapshot archive part on a tape."""
    parts = []
    with setup.session("drive1") as session:
        device, _ = session.read_labels(label_text)
        while (tape_file := open_tape_file(device)) is not Mark.END_OF_DATA:
            if tape_file is Mark.FILEMARK:
                continue
            tape_file.reader.skip_data()
            if tape_file.header.content_magic in SNAPSHOT_MAGICS:
                parts.append((tape_file.file_number, tape_file.header.part_number, tape_file.reader.incomplete,
                              tape_file.header.uuid))
        session.eject()
    return parts


def test_snapshot_bigger_than_a_tape_is_registered_and_restored(tape_setup, tmp_path):
    add_cartridges(tape_setup.library, 4, "16MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8", "SM0003L8", "SM0004L8")
    small = tape_setup.add_snapshot("ct/200", 1)
    big = tape_setup.add_snapshot("vm/100", 1)
    # A 20 MiB client log makes the snapshot archive bigger than what one 16 MiB tape holds.
    big_dir = tape_setup.datastore.snapshot_path(BackupSnapshot.parse(big))
    (big_dir / CLIENT_LOG_NAME).write_bytes(os.urandom(20 * MiB))
    result = run_backup(tape_setup)
    assert result.snapshots_written == [small, big]
    assert result.tapes == ["SM0001L8", "SM0002L8", "SM0003L8"]
    [warning] = result.warnings  # said at backup time, for the big one only
    assert warning.startswith(f"snapshot {big}: its snapshot archive (") and "bigger than a whole tape" in warning
    assert "PBS cannot" in warning

    # First try on SM0001L8 abandoned at early warning; written again from the front of
    # SM0002L8, where it meets early warning again and goes on in part 1 on SM0003L8.
    second, third = snapshot_parts(tape_setup, "SM0002L8"), snapshot_parts(tape_setup, "SM0003L8")
    assert [(part, incomplete) for _, part, incomplete, _ in second] == [(0, True)]
    assert [(part, incomplete) for _, part, incomplete, _ in third] == [(1, False)]
    assert second[0][3] == third[0][3]
    with tape_setup.catalog() as catalog, tape_setup.inventory() as inventory:
        places = {place.snapshot: (place.seq_nr, place.file_number)
                  for place in catalog.snapshots_in_set(result.media_set)}
        members = inventory.compute_media_set_members(result.media_set)
    assert places[big] == (1, second[0][0])
    # The .log beside the inventory of the full tape was written again with the snapshot in it.
    with tape_setup.inventory() as inventory:
        listed = {(row.label_text, row.snapshot) for row in media_content(inventory, media_set=result.media_set)}
    assert ("SM0002L8", big) in listed

    full = Datastore.create(tmp_path / "full", "full", prefix_dirs=False)
    restored = run_restore(tape_setup, result.media_set, {"store": full})
    assert sorted(restored.snapshots_restored) == sorted([f"store:{small}", f"store:{big}"])
    assert snapshot_tree(full) == snapshot_tree(tape_setup.datastore)

    selective = Datastore.create(tmp_path / "selective", "selective", prefix_dirs=False)
    restored = run_restore(tape_setup, result.media_set, {"store": selective}, [f"store:{big}"])
    assert restored.snapshots_restored == [f"store:{big}"]
    assert {k: v for k, v in snapshot_tree(selective).items() if not k.startswith(".chunks")} == \
        {k: v for k, v in snapshot_tree(tape_setup.datastore).items() if k.startswith("vm/")}

    # A full restore without catalogs rebuilds them, the big snapshot at its first part again.
    with tape_setup.catalog() as catalog:
        before = {uuid: catalog.media_archives(uuid) for uuid in members}
        for uuid in members:
            catalog.forget_media(uuid)
    rebuilt = Datastore.create(tmp_path / "rebuilt", "rebuilt", prefix_dirs=False)
    run_restore(tape_setup, result.media_set, {"store": rebuilt})
    assert snapshot_tree(rebuilt) == snapshot_tree(tape_setup.datastore)
    with tape_setup.catalog() as catalog:
        assert {uuid: catalog.media_archives(uuid) for uuid in members} == before

    # It is on the set: the next run does not write it again.
    assert run_backup(tape_setup).snapshots_skipped == [small, big]
