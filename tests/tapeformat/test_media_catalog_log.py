"""The binary `.log` media catalog: record bytes from the C layout in docs/catalog-formats.md, validation,
and the commit protocol."""
import uuid

import pytest

from tapefs.tapeformat import magic
from tapefs.tapeformat.errors import MediaCatalogError
from tapefs.tapeformat.media_catalog_log import (
    COMMIT_THRESHOLD,
    MediaCatalogLog,
    encode_chunk,
    encode_chunk_archive_end,
    encode_chunk_archive_start,
    encode_label,
    encode_snapshot,
    parse_catalog,
)

MEDIA = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
SET = uuid.UUID("ffeeddcc-bbaa-9988-7766-554433221100")
CONTENT = uuid.UUID(int=0x0102)
U = MEDIA.bytes.hex()
C = CONTENT.bytes.hex()
DIGEST = bytes(range(32))


def test_label_record_bytes():
    assert encode_label(1, MEDIA, 0x0203) == bytes.fromhex("4c" "0100000000000000" + U + "0302000000000000")


def test_chunk_archive_records_bytes():
    assert encode_chunk_archive_start(2, CONTENT, "store") == bytes.fromhex(
        "41" "0200000000000000" + C + "05" "00000000000000") + b"store"
    assert encode_chunk(DIGEST) == b"C" + DIGEST
    assert encode_chunk_archive_end(2, CONTENT) == bytes.fromhex("45" "0200000000000000" + C)


def test_snapshot_record_bytes():
    name = "vm/100/2021-01-11T10:43:48Z"
    assert encode_snapshot(0x0304, CONTENT, "st", name) == bytes.fromhex(
        "53" "0403000000000000" + C + "02" "00" "1b00" "00000000") + b"st:" + name.encode()


def test_names_longer_than_their_length_field_are_refused():
    with pytest.raises(ValueError, match="store name of 256 bytes"):
        encode_chunk_archive_start(2, CONTENT, "x" * 256)


def full_catalog() -> bytes:
    return (magic.MEDIA_CATALOG_1_1 + encode_label(0, MEDIA, 0) + encode_label(1, SET, 3)
            + encode_chunk_archive_start(2, CONTENT, "a") + encode_chunk(DIGEST) + encode_chunk(b"\1" * 32)
            + encode_chunk_archive_end(2, CONTENT)
            + encode_snapshot(3, uuid.UUID(int=3), "a", "ns/x/vm/1/2020-01-01T00:00:00Z")
            + encode_chunk_archive_start(5, uuid.UUID(int=5), "b") + encode_chunk(DIGEST)
            + encode_chunk_archive_end(5, uuid.UUID(int=5)))


def test_parse_builds_store_maps():
    content, _ = parse_catalog(full_catalog())
    assert (content.media_uuid, content.media_set_uuid, content.seq_nr) == (MEDIA, SET, 3)
    assert content.chunks == {"a": {DIGEST: 2, b"\1" * 32: 2}, "b": {DIGEST: 5}}
    assert content.snapshots == {"a": {"ns/x/vm/1/2020-01-01T00:00:00Z": 3}}
    assert content.content_uuids[2] == CONTENT


def test_padding_is_ignored_when_reading():
    data = bytearray(full_catalog())
    start = data.index(b"A" + (2).to_bytes(8, "little"))
    data[start + 1 + 25:start + 1 + 32] = b"garbage"
    assert parse_catalog(bytes(data))[0].chunks["a"][DIGEST] == 2


def test_open_archive_at_end_of_file_is_tolerated():
    data = full_catalog() + encode_chunk_archive_start(6, CONTENT, "a") + encode_chunk(b"\2" * 32)
    assert parse_catalog(data)[0].chunks["a"][b"\2" * 32] == 6


BAD = [
    (b"\0" * 8, "wrong magic number"),
    (magic.MEDIA_CATALOG_1_0, "v1.0 is no longer supported"),
    (magic.MEDIA_CATALOG_1_1 + b"Z", "unknown entry type b'Z' at byte 8"),
    (magic.MEDIA_CATALOG_1_1 + encode_label(0, MEDIA, 0)[:20], "truncated L entry at byte 8"),
    (magic.MEDIA_CATALOG_1_1 + encode_label(1, MEDIA, 0), "label for file 1 out of order"),
    (magic.MEDIA_CATALOG_1_1 + encode_label(0, MEDIA, 2), "media label entry with seq_nr 2"),
    (magic.MEDIA_CATALOG_1_1 + encode_chunk(DIGEST), "chunk entry outside a chunk archive"),
    (magic.MEDIA_CATALOG_1_1 + encode_chunk_archive_start(1, CONTENT, "a"), "chunk archive for file 1"),
    (magic.MEDIA_CATALOG_1_1 + encode_chunk_archive_start(2, CONTENT, "a") + encode_chunk_archive_end(3, CONTENT),
     "chunk archive end for file 3 does not match"),
    (magic.MEDIA_CATALOG_1_1 + encode_chunk_archive_start(2, CONTENT, "a")
     + encode_snapshot(3, CONTENT, "a", "vm/1/t"), "snapshot inside a chunk archive"),
    (magic.MEDIA_CATALOG_1_1 + encode_snapshot(4, CONTENT, "a", "vm/1/t") + encode_snapshot(4, CONTENT, "a", "vm/2/t"),
     "snapshot for file 4 after file 4"),
    (magic.MEDIA_CATALOG_1_1 + encode_snapshot(4, CONTENT, "a", "vm/1/t").replace(b"a:vm", b"a;vm"),
     "lacks the ':' separator"),
    (magic.MEDIA_CATALOG_1_1 + encode_snapshot(4, CONTENT, "a", "vm/1/t")[:-2], "truncated entry at byte 8"),
]


@pytest.mark.parametrize("data, message", BAD)
def test_bad_catalogs_are_refused_with_the_reason(data, message):
    with pytest.raises(MediaCatalogError, match=message):
        parse_catalog(data)


def test_create_writes_magic_and_labels_atomically(tmp_path):
    catalog = MediaCatalogLog.create(tmp_path, MEDIA, (SET, 3))
    assert catalog.path == tmp_path / f"{MEDIA}.log" and not (tmp_path / f"{MEDIA}.tmp").exists()
    assert catalog.path.read_bytes() == magic.MEDIA_CATALOG_1_1 + encode_label(0, MEDIA, 0) + encode_label(1, SET, 3)


def test_entries_reach_the_disk_only_on_commit(tmp_path):
    catalog = MediaCatalogLog.create(tmp_path, MEDIA, (SET, 0))
    before = catalog.path.read_bytes()
    catalog.register_chunk_archive(2, CONTENT, "a", [DIGEST])
    catalog.register_snapshot(3, uuid.UUID(int=3), "a", "vm/1/2020-01-01T00:00:00Z")
    assert catalog.path.read_bytes() == before
    catalog.commit()
    assert catalog.contents() == before + encode_chunk_archive_start(2, CONTENT, "a") + encode_chunk(DIGEST) \
        + encode_chunk_archive_end(2, CONTENT) + encode_snapshot(3, uuid.UUID(int=3), "a", "vm/1/2020-01-01T00:00:00Z")
    loaded = MediaCatalogLog.load(catalog.path, MEDIA, (SET, 0))
    assert loaded.content.snapshots == {"a": {"vm/1/2020-01-01T00:00:00Z": 3}}
    # The loaded catalog goes on where the file ended.
    loaded.register_snapshot(4, uuid.UUID(int=4), "a", "vm/2/2020-01-01T00:00:00Z")
    with pytest.raises(MediaCatalogError, match="snapshot for file 4 after file 4"):
        loaded.register_snapshot(4, uuid.UUID(int=5), "a", "vm/3/2020-01-01T00:00:00Z")


def test_empty_file_gets_the_magic_on_first_commit(tmp_path):
    path = tmp_path / f"{MEDIA}.log"
    path.write_bytes(b"")
    catalog = MediaCatalogLog.load(path)
    catalog.register_label(0, MEDIA, 0)
    catalog.commit()
    assert path.read_bytes() == magic.MEDIA_CATALOG_1_1 + encode_label(0, MEDIA, 0)


def test_load_refuses_catalog_of_another_media_or_set(tmp_path):
    catalog = MediaCatalogLog.create(tmp_path, MEDIA, (SET, 1))
    with pytest.raises(MediaCatalogError, match="catalog of media"):
        MediaCatalogLog.load(catalog.path, SET)
    with pytest.raises(MediaCatalogError, match="unexpected media set"):
        MediaCatalogLog.load(catalog.path, MEDIA, (SET, 2))


def test_invalid_entry_is_refused_before_it_is_pending(tmp_path):
    catalog = MediaCatalogLog.create(tmp_path, MEDIA)
    with pytest.raises(MediaCatalogError):
        catalog.register_chunk(DIGEST)
    assert not catalog.pending


def test_commit_if_large_waits_for_the_threshold_and_refuses_inside_an_archive(tmp_path):
    catalog = MediaCatalogLog.create(tmp_path, MEDIA, (SET, 0))
    size = catalog.path.stat().st_size
    catalog.start_chunk_archive(2, CONTENT, "a")
    for n in range(COMMIT_THRESHOLD // 33 + 1):
        catalog.register_chunk(n.to_bytes(32, "little"))
    with pytest.raises(MediaCatalogError, match="inside an open chunk archive"):
        catalog.commit_if_large()
    catalog.end_chunk_archive(2, CONTENT)
    catalog.commit_if_large()
    assert catalog.path.stat().st_size > size + COMMIT_THRESHOLD and not catalog.pending
    catalog.register_snapshot(3, CONTENT, "a", "vm/1/t")
    catalog.commit_if_large()
    assert catalog.pending


def test_torn_commit_is_an_error_unless_repaired(tmp_path):
    catalog = MediaCatalogLog.create(tmp_path, MEDIA, (SET, 0))
    catalog.register_snapshot(2, CONTENT, "a", "vm/1/t")
    catalog.commit()
    intact = catalog.path.read_bytes()
    archive = encode_chunk_archive_start(3, CONTENT, "a") + encode_chunk(DIGEST) + encode_chunk_archive_end(3, CONTENT)
    with open(catalog.path, "ab") as file:
        file.write(archive[:-5])  # the crash hit in the middle of the append
    with pytest.raises(MediaCatalogError, match=f"{catalog.path}: truncated E entry"):
        MediaCatalogLog.load(catalog.path)
    repaired = MediaCatalogLog.load(catalog.path, MEDIA, (SET, 0), repair=True)
    assert catalog.path.read_bytes() == intact and repaired.content.chunks == {}
    repaired.register_chunk_archive(3, CONTENT, "a", [DIGEST])
    repaired.commit()
    assert MediaCatalogLog.load(catalog.path).content.chunks == {"a": {DIGEST: 3}}


def test_repair_drops_an_archive_left_open_and_keeps_a_clean_file(tmp_path):
    catalog = MediaCatalogLog.create(tmp_path, MEDIA)
    clean = catalog.path.read_bytes()
    MediaCatalogLog.load(catalog.path, repair=True)
    assert catalog.path.read_bytes() == clean
    with open(catalog.path, "ab") as file:
        file.write(encode_chunk_archive_start(2, CONTENT, "a") + encode_chunk(DIGEST))
    assert MediaCatalogLog.load(catalog.path).content.chunks == {"a": {DIGEST: 2}}  # PBS tolerates it
    assert MediaCatalogLog.load(catalog.path, repair=True).content.chunks == {}
    assert catalog.path.read_bytes() == clean
