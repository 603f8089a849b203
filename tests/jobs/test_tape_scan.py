"""Listing every file of a tape (`tapefs scan`) and scanning damaged tapes, on a real vtape
library: a tape written file by file with the format writers, with damage in the middle."""
import hashlib
import os
import time
import uuid as uuidlib

import pytest

from tapefs.datastore.blob import encode_blob
from tapefs.jobs.catalog_rebuild import rebuild_catalog
from tapefs.jobs.tape_scan import scan_tape
from tapefs.tapeformat import magic
from tapefs.tapeformat.block_device import BLOCK_SIZE
from tapefs.tapeformat.catalog_archive import write_catalog_archive
from tapefs.tapeformat.chunk_archive import ChunkArchiveWriter
from tapefs.tapeformat.labels import MediaSetLabel, write_media_set_label
from tapefs.tapeformat.media_catalog_log import encode_label
from tapefs.tapeformat.snapshot_archive import write_snapshot_archive
from tapefs.tapeformat.tape_file import move_to_end_of_data
from tests.helpers.tape_setup import add_cartridges

pytestmark = pytest.mark.vtape

SNAPSHOT = "vm/100/2024-01-01T00:00:00Z"


def chunk() -> tuple[bytes, bytes]:
    data = os.urandom(100_000)
    return hashlib.sha256(data).digest(), encode_blob(data, compress=False)


def damaged(blob: bytes) -> bytes:
    """The blob with one payload byte flipped: its CRC no longer matches."""
    return blob[:-1] + bytes([blob[-1] ^ 0xFF])


def no_next_volume(part):
    raise AssertionError("the test tape is large enough")


def write_damaged_tape(setup, label_text: str) -> str:
    """Labels, then: 2 chunk archive (2 chunks) · 3 foreign data · 4 chunk archive with a chunk whose
    CRC is wrong · 5 snapshot archive · 6 chunk archive (1 chunk). Returns the media-set UUID."""
    setup.label(label_text)
    set_uuid = uuidlib.uuid4()
    with setup.session() as session:
        device, _ = session.read_labels(label_text)
        write_media_set_label(device, MediaSetLabel("daily", set_uuid, 0, int(time.time())))
        first = ChunkArchiveWriter(device, "store")
        for digest, blob in (chunk(), chunk()):
            first.add_chunk(digest, blob)
        first.finish()
        device.write_block(b"\x42" * BLOCK_SIZE)
        device.write_filemark()
        bad = ChunkArchiveWriter(device, "store")
        digest, blob = chunk()
        bad.add_chunk(digest, damaged(blob))
        bad.add_chunk(*chunk())
        bad.finish()
        write_snapshot_archive(device, "store", SNAPSHOT, lambda: [b"not really pxar"], no_next_volume)
        last = ChunkArchiveWriter(device, "store")
        last.add_chunk(*chunk())
        last.finish()
        device.sync()
        session.eject()
    return str(set_uuid)


@pytest.fixture
def damaged_tape(tape_setup):
    add_cartridges(tape_setup.library, 1, "64MiB", "4MiB")
    tape_setup.media_set = write_damaged_tape(tape_setup, "SM0001L8")
    return tape_setup


def test_scan_lists_every_file_and_goes_on_after_damage(damaged_tape):
    with damaged_tape.session() as session:
        reports = scan_tape(session, "SM0001L8")
    listing = [(r.file_number, r.kind, r.chunks, r.error is None) for r in reports]
    assert listing == [
        (0, "media-label", None, True),
        (1, "media-set-label", None, True),
        (2, "chunk-archive", 2, True),
        (3, "unreadable", None, False),
        (4, "chunk-archive", 2, False),
        (5, "snapshot-archive", None, True),
        (6, "chunk-archive", 1, True),
    ]
    assert reports[0].header_json["label_text"] == "SM0001L8"
    assert reports[1].header_json["uuid"] == damaged_tape.media_set
    assert "unknown block magic" in reports[3].error
    assert "1 damaged chunks" in reports[4].error
    assert (reports[5].store, reports[5].snapshot, reports[5].part_number) == ("store", SNAPSHOT, 0)
    assert all(uuidlib.UUID(r.content_uuid) for r in reports if r.kind != "unreadable")
    assert reports[2].size > 200_000


def test_scan_of_an_unlabelled_tape_lists_nothing(tape_setup):
    add_cartridges(tape_setup.library, 1, "16MiB", "4MiB", prefix="UN")
    with tape_setup.session() as session:
        assert scan_tape(session, "UN0001L8") == []


def test_catalog_scan_reports_damaged_archives_and_registers_the_rest(damaged_tape):
    with damaged_tape.inventory() as inventory, damaged_tape.catalog() as catalog, \
            damaged_tape.session() as session:
        result = rebuild_catalog(session, inventory, catalog, "SM0001L8")
        archives = catalog.media_archives(result.media_uuid)
    assert result.method == "scan" and result.media_set == damaged_tape.media_set
    assert [(d["file"], d["type"]) for d in result.damaged] == [(3, "unreadable"), (4, "chunk-archive")]
    assert {n: (kind, len(value) if kind == "chunk" else value) for n, (kind, _, value) in archives.items()} == {
        2: ("chunk", 2), 5: ("snapshot", SNAPSHOT), 6: ("chunk", 1)}


def test_catalog_archive_that_disagrees_and_no_other_means_a_scan(damaged_tape):
    """The only catalog archive on the tape claims to describe it but holds another tape's
    catalog: reported, nothing of it imported, the tape is scanned instead."""
    with damaged_tape.session() as session:
        device, labels = session.read_labels("SM0001L8")
        foreign = uuidlib.uuid4()
        log = (magic.MEDIA_CATALOG_1_1 + encode_label(0, foreign, 0)
               + encode_label(1, labels.media_set.uuid, 0))
        move_to_end_of_data(device)
        write_catalog_archive(device, labels.media.uuid, labels.media_set.uuid, 0, log)
        device.sync()
    with damaged_tape.inventory() as inventory, damaged_tape.catalog() as catalog, \
            damaged_tape.session() as session:
        result = rebuild_catalog(session, inventory, catalog, "SM0001L8")
        assert not catalog.has_media(str(foreign))
    assert result.method == "scan"
    assert any(f"catalog archive at file 7 disagrees with its header: it describes media {foreign}" in note
               for note in result.notes)
    assert result.archives == 3
