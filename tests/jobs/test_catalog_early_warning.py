"""A backup whose catalog archive crosses early warning, on a real vtape library: the catalog is
written whole into the early-warning zone as PBS writes it (never cut and left INCOMPLETE), and
both tapefs's catalog restore and a reader following PBS's fast catalog restore get all of it. A
catalog archive flagged INCOMPLETE, which PBS would adopt, is refused by tapefs for a scan."""
import os
import shutil
import uuid as uuidlib

import pytest

from tapefs.config.paths import tape_status_dir
from tapefs.datastore.naming import BackupSnapshot
from tapefs.jobs.catalog_rebuild import rebuild_catalog
from tapefs.tapeformat import magic
from tapefs.tapeformat.block import BlockedWriter
from tapefs.tapeformat.block_device import BLOCK_SIZE, Mark
from tapefs.tapeformat.catalog_archive import CATALOG_MAGICS
from tapefs.tapeformat.content_header import pretty_json, write_content_start
from tapefs.tapeformat.media_catalog_log import parse_catalog
from tapefs.tapeformat.tape_file import open_tape_file
from tests.helpers.synthetic_snapshots import make_snapshot
from tests.helpers.tape_jobs import run_backup

pytestmark = pytest.mark.vtape

#: Enough chunks for a catalog (33 bytes each) of two tape blocks: the first one full.
CHUNKS = 8500


def pbs_fast_catalog_restore(device, media_uuid: str) -> bytes:
    """PBS's rule: jump to the tape's last file; if it is a catalog archive, copy its body and
    check only its first two label entries. The INCOMPLETE flag is not looked at."""
    device.space_to_end_of_data()
    device.locate_file(device.position().file_number - 1)
    tape_file = open_tape_file(device)
    assert tape_file.header.content_magic in CATALOG_MAGICS, "the last file is not a catalog archive"
    body = tape_file.reader.read(1 << 30)
    content, _ = parse_catalog(body, tolerate_torn_tail=True)
    assert str(content.media_uuid) == media_uuid and content.media_set_uuid is not None
    return bytes(body)


def tape_bytes(device) -> tuple[int, int]:
    """Data bytes on the tape before the last file, and up to end of data (vtape counts blocks)."""
    device.space_to_end_of_data()
    end = device.position()
    device.locate_file(end.file_number - 1)
    last = device.position()
    return (last.block_number - last.file_number) * BLOCK_SIZE, (end.block_number - end.file_number) * BLOCK_SIZE


@pytest.fixture
def many_chunks(tape_setup):
    make_snapshot(tape_setup.datastore, BackupSnapshot.parse("host/a/2024-01-01T00:00:00Z"),
                  pieces=[n.to_bytes(4, "little") + os.urandom(12) for n in range(CHUNKS)])
    return tape_setup


def lose_state():
    shutil.rmtree(tape_status_dir())


def tape_log(setup, label_text):
    with setup.inventory() as inventory, setup.catalog() as catalog:
        media_uuid = inventory.find_media_by_label_text(label_text).uuid
        return media_uuid, catalog.log_bytes(media_uuid), catalog.media_archives(media_uuid)


@pytest.mark.slow
def test_catalog_crossing_early_warning_is_written_whole_and_restores(many_chunks):
    setup = many_chunks
    # A first backup on a roomy tape says where the catalog archive starts; the same snapshot
    # to the other pool lays out a tape the same way, so early warning can be put inside it.
    setup.library.control("add-cartridge", barcode="BIG001L8", capacity="256MiB", early_warning="8MiB")
    setup.label("BIG001L8")
    run_backup(setup)
    with setup.session() as session:
        device, _ = session.read_labels("BIG001L8")
        catalog_start, used = tape_bytes(device)
    assert used - catalog_start == 2 * BLOCK_SIZE
    early_warning_at = catalog_start + BLOCK_SIZE
    capacity = used + 4 * BLOCK_SIZE
    setup.library.control("add-cartridge", barcode="EW0001L8", capacity=str(capacity),
                          early_warning=str(capacity - early_warning_at))
    setup.label("EW0001L8", pool="other")
    result = run_backup(setup, pool="other")
    assert result.tapes == ["EW0001L8"]
    media_uuid, log, archives = tape_log(setup, "EW0001L8")

    with setup.session() as session:
        device, _ = session.read_labels("EW0001L8")
        start, end = tape_bytes(device)
        assert start < early_warning_at < end  # the catalog archive crosses early warning
        tape_file = open_tape_file(device)
        assert tape_file.reader.read(1 << 30) == log and not tape_file.reader.incomplete
        assert open_tape_file(device) is Mark.END_OF_DATA
        assert pbs_fast_catalog_restore(device, media_uuid) == log

    lose_state()
    with setup.inventory() as inventory, setup.catalog() as catalog, setup.session() as session:
        rebuilt = rebuild_catalog(session, inventory, catalog, "EW0001L8")
        assert rebuilt.method == "catalog-archive"
        assert catalog.media_archives(media_uuid) == archives


def test_incomplete_catalog_archive_is_refused_and_the_tape_scanned(tape_setup):
    """What PBS leaves at ENOSPC (and tapefs before wrote at early warning): the last file a
    catalog archive flagged INCOMPLETE with half a catalog. PBS's rule adopts it; tapefs scans."""
    setup = tape_setup
    make_snapshot(setup.datastore, BackupSnapshot.parse("host/a/2024-01-01T00:00:00Z"),
                  pieces=[os.urandom(100) for _ in range(50)])
    setup.library.control("add-cartridge", barcode="BIG001L8", capacity="256MiB", early_warning="8MiB")
    setup.label("BIG001L8")
    run_backup(setup)
    media_uuid, log, archives = tape_log(setup, "BIG001L8")
    with setup.session() as session:
        device, labels = session.read_labels("BIG001L8")
        device.space_to_end_of_data()
        device.locate_file(device.position().file_number - 1)  # write over the good catalog
        writer = BlockedWriter(device)
        header = {"uuid": media_uuid, "media_set_uuid": str(labels.media_set.uuid), "seq_nr": 0}
        write_content_start(writer, magic.CATALOG_ARCHIVE_1_1, pretty_json(header), uuidlib.uuid4())
        writer.write(log[: len(log) // 2])
        writer.finish(incomplete=True)
        device.sync()
        assert pbs_fast_catalog_restore(device, media_uuid) == log[: len(log) // 2]

    lose_state()
    with setup.inventory() as inventory, setup.catalog() as catalog, setup.session() as session:
        rebuilt = rebuild_catalog(session, inventory, catalog, "BIG001L8")
        assert rebuilt.method == "scan"
        assert any("incomplete (continued on another tape); not used" in note for note in rebuilt.notes)
        assert catalog.media_archives(media_uuid) == archives
