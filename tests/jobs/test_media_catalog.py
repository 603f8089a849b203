"""The SQLite media catalog: registration rules, set queries, chunk offsets, PBS .log export/import."""
import hashlib
import uuid

import pytest

from tapefs.catalog.media_catalog import CatalogError, MediaCatalog
from tapefs.tapeformat.archive_part import ArchivePart, ChunkLocation
from tapefs.tapeformat.media_catalog_log import MediaCatalogLog, parse_catalog

SET = str(uuid.UUID(int=42))
SNAPSHOT = "ns/a/vm/100/2024-06-05T10:00:00Z"


def digest(n: int) -> bytes:
    return hashlib.sha256(str(n).encode()).digest()


def chunk_part(file_number: int, digests, first_block: int = 100) -> ArchivePart:
    part = ArchivePart("chunk", uuid.uuid4(), 0, file_number, first_block)
    part.chunks = [ChunkLocation(d, 60 + i * 1000, 952) for i, d in enumerate(digests)]
    return part


@pytest.fixture
def catalog(tmp_path):
    with MediaCatalog.open(tmp_path) as opened:
        yield opened


def test_chunks_and_snapshots_of_a_set_with_offsets(catalog):
    tape0, tape1 = str(uuid.uuid4()), str(uuid.uuid4())
    catalog.reset_media(tape0, SET, 0)
    catalog.reset_media(tape1, SET, 1)
    catalog.register_chunk_archive(tape0, chunk_part(2, [digest(1), digest(2)]), "store")
    catalog.register_snapshot(tape0, 3, uuid.uuid4(), "store", SNAPSHOT)
    catalog.register_chunk_archive(tape1, chunk_part(4, [digest(3)], first_block=7), "store")
    assert catalog.chunks_in_set(SET, "store") == {digest(1), digest(2), digest(3)}
    assert catalog.chunks_in_set(SET, "other") == set()
    assert catalog.snapshot_in_set(SET, "store", SNAPSHOT)
    assert not catalog.snapshot_in_set(str(uuid.uuid4()), "store", SNAPSHOT)
    places = catalog.chunk_places(SET, "store", [digest(2), digest(3), digest(9)])
    assert set(places) == {digest(2), digest(3)}
    assert (places[digest(2)].media_uuid, places[digest(2)].file_number, places[digest(2)].offset) == (tape0, 2, 1060)
    assert (places[digest(3)].seq_nr, places[digest(3)].first_block) == (1, 7)


def test_registration_out_of_order_or_for_unknown_media_is_refused(catalog):
    tape = str(uuid.uuid4())
    with pytest.raises(CatalogError, match="no catalog"):
        catalog.register_snapshot(tape, 2, uuid.uuid4(), "store", SNAPSHOT)
    catalog.reset_media(tape, SET, 0)
    catalog.register_snapshot(tape, 5, uuid.uuid4(), "store", SNAPSHOT)
    for file_number in (5, 4, 1):
        with pytest.raises(CatalogError, match="out of order"):
            catalog.register_chunk_archive(tape, chunk_part(file_number, [digest(1)]), "store")
    # The refused registrations left nothing behind.
    assert catalog.chunks_in_set(SET, "store") == set()


def test_reset_forgets_what_the_tape_held(catalog):
    tape = str(uuid.uuid4())
    catalog.reset_media(tape, SET, 0)
    catalog.register_chunk_archive(tape, chunk_part(2, [digest(1)]), "store")
    catalog.reset_media(tape, str(uuid.uuid4()), 0)
    assert catalog.chunks_in_set(SET, "store") == set()
    assert catalog.media_content(tape) == []


def test_log_export_loads_in_the_pbs_format_reader_and_imports_back(catalog, tmp_path):
    tape = str(uuid.uuid4())
    catalog.reset_media(tape, SET, 3)
    catalog.register_chunk_archive(tape, chunk_part(2, [digest(1), digest(2)]), "store")
    catalog.register_snapshot(tape, 3, uuid.uuid4(), "store", SNAPSHOT)
    path = catalog.export_log(tape, tmp_path)
    loaded = MediaCatalogLog.load(path, uuid.UUID(tape), (uuid.UUID(SET), 3))
    assert loaded.content.chunks == {"store": {digest(1): 2, digest(2): 2}}
    assert loaded.content.snapshots == {"store": {SNAPSHOT: 3}}

    with MediaCatalog.open(tmp_path / "other") as imported:
        assert imported.import_log(path.read_bytes()) == tape
        assert imported.log_bytes(tape) == path.read_bytes()
        assert imported.chunk_places(SET, "store", [digest(2)])[digest(2)].offset is None


def test_import_of_a_catalog_cut_inside_an_archive_is_refused(catalog):
    tape = str(uuid.uuid4())
    catalog.reset_media(tape, SET, 0)
    catalog.register_chunk_archive(tape, chunk_part(2, [digest(1)]), "store")
    data = catalog.log_bytes(tape)
    cut = data[:-25]  # without the chunk-archive end entry
    parse_catalog(cut)  # PBS tolerates this at load
    with pytest.raises(CatalogError, match="inside a chunk archive"):
        catalog.import_log(cut)
