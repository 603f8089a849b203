"""Inputs the fuzzing campaign found that made a parser fail with something else than its own
error; each now gets the parser's error with a message that says what is wrong."""
from __future__ import annotations

import tracemalloc
import uuid

import pytest

from tapefs.scsi import cdb
from tapefs.scsi.sense import decode_sense
from tapefs.tapeformat import magic
from tapefs.tapeformat.errors import MediaCatalogError
from tapefs.tapeformat.media_catalog_log import (
    encode_chunk_archive_start,
    encode_label,
    encode_snapshot,
    parse_catalog,
)
from vtape.elements import DRIVE, STORAGE
from vtape.library import CreateOptions, Library, create_library

MEDIA = uuid.UUID(int=1)
LABELS = magic.MEDIA_CATALOG_1_1 + encode_label(0, MEDIA, 0)


@pytest.mark.parametrize("entry, what", [
    (encode_chunk_archive_start(2, uuid.UUID(int=3), "store").replace(b"store", b"st\xffre"), "store name"),
    (encode_snapshot(2, uuid.UUID(int=3), "store", "vm/100/2024-01-01T00:00:00Z").replace(b"store", b"st\xffre"),
     "store name"),
    (encode_snapshot(2, uuid.UUID(int=3), "store", "vm/100/2024-01-01T00:00:00Z").replace(b"vm/", b"\xc3(/"),
     "snapshot path"),
], ids=["chunk-archive-store", "snapshot-store", "snapshot-path"])
@pytest.mark.parametrize("tolerate_torn_tail", [False, True], ids=["strict", "repair"])
def test_a_media_catalog_name_that_is_not_utf8_is_a_catalog_error(entry, what, tolerate_torn_tail):
    with pytest.raises(MediaCatalogError, match=f"{what} of the entry at byte {len(LABELS)} is not UTF-8"):
        parse_catalog(LABELS + entry, tolerate_torn_tail=tolerate_torn_tail)


@pytest.fixture
def drive(tmp_path):
    """An in-process vtape drive with a blank tape loaded."""
    create_library(tmp_path / "lib", CreateOptions(drives=1, storage_slots=2, import_export_slots=0, cartridges=1,
                                                   cleaning_cartridges=0))
    library = Library(tmp_path / "lib")
    try:
        move = cdb.move_medium(0, library.elements_of(STORAGE)[0].address, library.elements_of(DRIVE)[0].address)
        assert library.changer.execute(move, memoryview(b""), 0).status == 0
        library.drives[0].unit_attentions.clear()
        yield library.drives[0]
    finally:
        library.close()


def test_writing_many_filemarks_at_once_keeps_memory_bounded(drive):
    """WRITE FILEMARKS may ask for up to 16,777,215 filemarks; vtape built all their index entries
    in memory at once (32 bytes each, plus an object per entry: about 1 GB at the largest count)."""
    count = 200_000
    tracemalloc.start()
    try:
        outcome = drive.execute(cdb.write_filemarks_6(count), memoryview(b""), 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcome.status == 0, outcome.sense.hex()
    # The filemark positions themselves take 8 bytes each; nothing else may grow with the count.
    assert peak < 8 * count + 8 * 1024**2, f"{peak / 1024**2:.0f} MiB"
    assert drive.execute(cdb.read_position(allocation_length=32), memoryview(b""), 32).status == 0


@pytest.mark.parametrize("count", [2**40, -(2**40)], ids=["forward", "backward"])
def test_a_space_residue_beyond_32_bits_is_sense_without_a_valid_information_field(drive, count):
    """SPACE(16) over more filemarks than the tape holds: the residue (about the count) does not fit
    fixed-format sense's 32-bit information field, and building the sense raised struct.error."""
    assert drive.execute(cdb.write_filemarks_6(2), memoryview(b""), 0).status == 0
    outcome = drive.execute(cdb.space(1, count), memoryview(b""), 0)
    assert outcome.status == 2
    sense = decode_sense(outcome.sense)
    assert sense.information is None and (sense.eom or sense.key == 8), sense.describe()
