"""The format layer over a real vtape daemon: labels, chunk archives past early warning onto a
second tape, a snapshot and a catalog archive, everything read back through the drive API."""
import hashlib
import os
import time
import uuid

import pytest

from tapefs.device.changer import Changer
from tapefs.device.drive import Drive
from tapefs.tapeformat.block_device import DriveBlockDevice, Mark
from tapefs.tapeformat.catalog_archive import CatalogArchiveReader, write_catalog_archive
from tapefs.tapeformat.chunk_archive import ChunkArchiveReader, ChunkArchiveWriter, read_chunk_at
from tapefs.tapeformat.errors import ArchiveAborted, BlockSizeError, MissingEndMarker
from tapefs.tapeformat.labels import MediaLabel, MediaSetLabel, read_labels, write_media_label, write_media_set_label
from tapefs.tapeformat.media_catalog_log import MediaCatalogLog, parse_catalog
from tapefs.tapeformat.snapshot_archive import SnapshotArchiveReader, write_snapshot_archive
from tapefs.tapeformat.tape_file import move_to_end_of_data, open_tape_file, scan_files

pytestmark = pytest.mark.vtape

MiB = 1024 * 1024
SNAPSHOT = "vm/100/2024-06-05T10:00:00Z"


@pytest.fixture
def small_library(make_vtape_library):
    library = make_vtape_library(cartridges=0, cleaning_cartridges=0)
    for n in (1, 2):
        library.control("add-cartridge", barcode=f"SM000{n}L8", capacity="64MiB", early_warning="8MiB")
    library.control("add-cartridge", barcode="NW0001L8", capacity="3MiB", early_warning="0")
    return library


def open_drive(library, slot: int, drive: int) -> DriveBlockDevice:
    with Changer.open(library.changer) as changer:
        changer.load(slot, drive)
    opened = Drive.open(library.drives[drive])
    opened.request_sense()  # the unit attention of the load
    return DriveBlockDevice(opened)


def label(device, text, set_uuid, seq_nr):
    media = MediaLabel(uuid.uuid4(), text, int(time.time()), "pool")
    write_media_label(device, media)
    write_media_set_label(device, MediaSetLabel("pool", set_uuid, seq_nr, int(time.time())))
    return media


def test_labels_round_trip_on_a_real_drive(small_library):
    device = open_drive(small_library, 1, 0)
    try:
        assert read_labels(device).media is None
        media = label(device, "SM0001L8", uuid.UUID(int=7), 0)
        labels = read_labels(device)
        assert labels.media == media and labels.media_set.uuid == uuid.UUID(int=7)
        assert device.position().file_number == 2 and open_tape_file(device) is Mark.END_OF_DATA
    finally:
        device.drive.close()


@pytest.mark.slow
def test_chunk_archives_past_early_warning_then_snapshot_and_catalog(small_library, tmp_path):
    set_uuid = uuid.uuid4()
    first, second = open_drive(small_library, 1, 0), open_drive(small_library, 2, 1)
    try:
        media = [label(first, "SM0001L8", set_uuid, 0)]
        catalogs = [MediaCatalogLog.create(tmp_path, media[0].uuid, (set_uuid, 0))]

        def next_volume(part):
            catalogs[0].register_chunk_archive(part.file_number, part.content_uuid, "store",
                                               [c.digest for c in part.chunks])
            catalogs[0].commit()
            media.append(label(second, "SM0002L8", set_uuid, 1))
            catalogs.append(MediaCatalogLog.create(tmp_path, media[1].uuid, (set_uuid, 1)))
            return second

        chunks = {}
        writer = ChunkArchiveWriter(first, "store", next_volume=next_volume)
        locations = []
        n = 0
        while len(writer.parts) == 1:
            blob = os.urandom(MiB + n * 4099)
            digest = hashlib.sha256(blob).digest()
            chunks[digest] = blob
            locations.append(writer.add_chunk(digest, blob))
            n += 1
        for n in range(3):
            blob = os.urandom(300000)
            chunks[hashlib.sha256(blob).digest()] = blob
            locations.append(writer.add_chunk(hashlib.sha256(blob).digest(), blob))
        parts = writer.finish()
        assert [p.continued for p in parts] == [True, False]
        assert parts[0].file_number == 2 and parts[1].file_number == 2
        # Tape 1 was cut right after the chunk that reached the early-warning point (56 MiB).
        assert 55 * MiB < first.drive.read_position().block_number * 262144 < 58 * MiB

        catalogs[1].register_chunk_archive(parts[1].file_number, parts[1].content_uuid, "store",
                                           [c.digest for c in parts[1].chunks])
        pxar = os.urandom(3 * MiB + 5)
        [snapshot_part] = write_snapshot_archive(second, "store", SNAPSHOT, lambda: [pxar], next_volume)
        catalogs[1].register_snapshot(snapshot_part.file_number, snapshot_part.content_uuid, "store", SNAPSHOT)
        catalogs[1].commit()
        catalog_part = write_catalog_archive(second, media[1].uuid, set_uuid, 1, catalogs[1].contents())
        assert (snapshot_part.file_number, catalog_part.file_number) == (3, 4)

        # Read everything back, tape by tape, as a full restore would.
        seen = {}
        for device, expected_media, seq_nr in ((first, media[0], 0), (second, media[1], 1)):
            labels = read_labels(device)
            assert labels.media == expected_media and labels.media_set.seq_nr == seq_nr
            reader = ChunkArchiveReader(open_tape_file(device))
            seen.update(reader)
            assert reader.incomplete == (seq_nr == 0) and reader.truncated_entry is None
            assert reader.locations == parts[seq_nr].chunks and reader.first_block == parts[seq_nr].first_block
        assert seen == chunks
        snapshot = SnapshotArchiveReader(open_tape_file(second))
        assert snapshot.snapshot == SNAPSHOT and snapshot.read() == pxar
        catalog = CatalogArchiveReader(open_tape_file(second))
        body = catalog.read()
        assert body == catalogs[1].contents() and catalog.media_uuid == media[1].uuid
        content, _ = parse_catalog(body)
        assert content.snapshots == {"store": {SNAPSHOT: 3}}
        assert open_tape_file(second) is Mark.END_OF_DATA
        assert parse_catalog(catalogs[0].contents())[0].chunks["store"].keys() == {c.digest for c in parts[0].chunks}

        # Any chunk after one LOCATE, from the part (and so the tape) that holds it.
        for location in locations[::7] + locations[-4:]:
            part = next(p for p in parts if location in p.chunks)
            device = first if part is parts[0] else second
            assert read_chunk_at(device, part.file_number, part.first_block, location) == chunks[location.digest]
    finally:
        first.drive.close()
        second.drive.close()


def test_append_after_interrupted_write_on_a_real_drive(small_library):
    device = open_drive(small_library, 1, 0)
    try:
        label(device, "SM0001L8", uuid.uuid4(), 0)
        writer = ChunkArchiveWriter(device, "store")
        writer.add_chunk(bytes(32), os.urandom(600000))  # two blocks out, then the "crash"
        device.rewind()
        assert move_to_end_of_data(device) == 3
        device.rewind()
        assert move_to_end_of_data(device) == 3  # already closed: nothing more written
        read_labels(device)
        files = list(scan_files(device))
        assert [(f.file_number, f.missing_end_marker) for f in files] == [(2, True)]
    finally:
        device.drive.close()


@pytest.mark.parametrize("size, message", [
    (1000, "tape file 1, block 0: got a block of 1000 bytes, expected 262144"),
    (300000, "tape file 1, block 0: got a block longer than 262144 bytes"),
])
def test_foreign_block_sizes_are_refused_on_a_real_drive(small_library, size, message):
    device = open_drive(small_library, 1, 0)
    try:
        label(device, "SM0001L8", uuid.uuid4(), 0)
        device.locate_file(1)
        device.drive.write_block(os.urandom(size))
        device.write_filemark()
        device.locate_file(1)
        with pytest.raises(BlockSizeError, match=message):
            open_tape_file(device)
    finally:
        device.drive.close()


def test_physical_end_on_a_real_drive_keeps_finished_snapshots(small_library):
    # NW0001L8 has no early-warning zone: the drive only reports the physical end. Its 12 blocks
    # hold the two labels and three snapshots of 3 blocks; the fourth gets one block on tape.
    device = open_drive(small_library, 3, 0)
    try:
        label(device, "NW0001L8", uuid.uuid4(), 0)
        finished = []
        with pytest.raises(ArchiveAborted) as aborted:
            for n in range(20):
                pxar = os.urandom(600000)
                [part] = write_snapshot_archive(device, "store", f"vm/{n}/2024-06-05T10:00:00Z", lambda: [pxar],
                                                lambda part: pytest.fail("no early warning expected"))
                finished.append((part.file_number, pxar))
        assert len(finished) == 3
        for file_number, pxar in finished:
            device.locate_file(file_number)
            assert SnapshotArchiveReader(open_tape_file(device)).read() == pxar
        device.locate_file(aborted.value.part.file_number)
        with pytest.raises(MissingEndMarker, match="tape file 5"):
            SnapshotArchiveReader(open_tape_file(device)).read()
    finally:
        device.drive.close()
