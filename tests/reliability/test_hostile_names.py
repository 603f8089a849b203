"""R5: names read from tape become directories when a tape is restored (the datastore, the snapshot
path): a tape or catalog naming `..`, an absolute path or a name with `/` is refused with the
format's own error, before anything is written."""
from __future__ import annotations

import io
import json
import uuid

import pytest

from tapefs.tapeformat import magic
from tapefs.tapeformat.block import HEADER_SIZE as BLOCK_HEADER_SIZE
from tapefs.tapeformat.chunk_archive import ChunkArchiveReader, ChunkArchiveWriter
from tapefs.tapeformat.content_header import CONTENT_HEADER_SIZE
from tapefs.tapeformat.errors import HeaderError, MediaCatalogError
from tapefs.tapeformat.media_catalog_log import CHUNK_ARCHIVE_START, SNAPSHOT, encode_label, parse_catalog
from tapefs.tapeformat.memory_tape import MemoryTape
from tapefs.tapeformat.snapshot_archive import SnapshotArchiveReader, SnapshotPath, write_snapshot_archive
from tapefs.tapeformat.tape_file import open_tape_file

HOSTILE_STORES = ["..", "../../tmp/x", "/tmp/x", "a/b", "", ".hidden/..", "x\0y", "-"]
HOSTILE_SNAPSHOTS = ["vm/../2024-01-01T00:00:00Z", "../x/2024-01-01T00:00:00Z", "vm/100/..",
                     "ns/../vm/100/2024-01-01T00:00:00Z", "vm/1 0/2024-01-01T00:00:00Z"]
SNAPSHOT_PATH = "vm/100/2024-01-01T00:00:00Z"


def _with_header(tape: MemoryTape, key: str, value) -> MemoryTape:
    """The tape's first file with header JSON key `key` set to `value` (same length, so the
    block layout holds): what a hostile or damaged tape could carry."""
    block = tape.objects[0]
    start = BLOCK_HEADER_SIZE + CONTENT_HEADER_SIZE
    end = block.index(b"}", start) + 1
    header = json.loads(block[start:end])
    header[key] = value
    text = json.dumps(header).encode()
    assert len(text) <= end - start, "the test's names must not be longer than the originals"
    tape.objects[0] = block[:start] + text.ljust(end - start) + block[end:]
    tape.rewind()
    return tape


def _chunk_archive_tape() -> MemoryTape:
    tape = MemoryTape()
    writer = ChunkArchiveWriter(tape, "s" * 24, ctime=1700000000)
    writer.add_chunk(bytes(32), b"blob")
    writer.finish()
    return tape


def _snapshot_archive_tape() -> MemoryTape:
    tape = MemoryTape()
    write_snapshot_archive(tape, "s" * 24, "vm/100000000/2024-01-01T00:00:00Z", lambda: io.BytesIO(b"pxar"), None,
                           ctime=1700000000)
    return tape


@pytest.mark.parametrize("store", HOSTILE_STORES)
def test_a_chunk_archive_naming_a_store_that_is_no_plain_name_is_refused(store):
    tape = _with_header(_chunk_archive_tape(), "store", store)
    with pytest.raises(HeaderError, match="not a datastore name"):
        ChunkArchiveReader(open_tape_file(tape))


@pytest.mark.parametrize("store", HOSTILE_STORES)
def test_a_snapshot_archive_naming_a_store_that_is_no_plain_name_is_refused(store):
    tape = _with_header(_snapshot_archive_tape(), "store", store)
    with pytest.raises(HeaderError, match="not a datastore name"):
        SnapshotArchiveReader(open_tape_file(tape))


@pytest.mark.parametrize("snapshot", HOSTILE_SNAPSHOTS)
def test_a_snapshot_archive_naming_a_path_that_climbs_out_is_refused(snapshot):
    tape = _with_header(_snapshot_archive_tape(), "snapshot", snapshot)
    with pytest.raises(HeaderError, match="not a snapshot path"):
        SnapshotArchiveReader(open_tape_file(tape))
    with pytest.raises(ValueError):
        SnapshotPath.parse(snapshot)


def test_valid_names_still_read():
    assert ChunkArchiveReader(open_tape_file(_with_header(_chunk_archive_tape(), "store", "store-1.a_b"))).store \
        == "store-1.a_b"
    reader = SnapshotArchiveReader(open_tape_file(_with_header(_snapshot_archive_tape(), "snapshot",
                                                               "ns/a/ns/b/ct/1.x/2024-01-01T00:00:00Z")))
    assert str(reader.path) == "ns/a/ns/b/ct/1.x/2024-01-01T00:00:00Z"


def _catalog_entry(kind: bytes, store: bytes, snapshot: bytes = b"") -> bytes:
    body = (2).to_bytes(8, "little") + uuid.UUID(int=3).bytes + bytes([len(store)])
    if kind == SNAPSHOT:
        return kind + body + b"\0" + len(snapshot).to_bytes(2, "little") + bytes(4) + store + b":" + snapshot
    return kind + body + bytes(7) + store


@pytest.mark.parametrize("store", [s for s in HOSTILE_STORES if s])
@pytest.mark.parametrize("kind", [CHUNK_ARCHIVE_START, SNAPSHOT], ids=["chunk-archive", "snapshot"])
def test_a_media_catalog_naming_a_store_that_is_no_plain_name_is_refused(kind, store):
    data = magic.MEDIA_CATALOG_1_1 + encode_label(0, uuid.UUID(int=1), 0) + \
        _catalog_entry(kind, store.encode(), SNAPSHOT_PATH.encode())
    with pytest.raises(MediaCatalogError, match="not a datastore name"):
        parse_catalog(data)


@pytest.mark.parametrize("snapshot", HOSTILE_SNAPSHOTS)
def test_a_media_catalog_naming_a_snapshot_path_that_climbs_out_is_refused(snapshot):
    data = magic.MEDIA_CATALOG_1_1 + encode_label(0, uuid.UUID(int=1), 0) + \
        _catalog_entry(SNAPSHOT, b"store", snapshot.encode())
    with pytest.raises(MediaCatalogError, match="not a snapshot path"):
        parse_catalog(data)
