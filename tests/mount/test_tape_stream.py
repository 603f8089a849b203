"""TapeStream: an image on tape read back byte for byte, sequential reads streaming ahead."""
from __future__ import annotations

import hashlib
import random
import time

import pytest

from tapefs.datastore.archive_reader import ArchiveReader
from tapefs.datastore.chunk_reader import ChunkReader
from tapefs.mount.chunk_cache import ChunkCache
from tapefs.mount.errors import ChunkDamaged
from tapefs.mount.tape_stream import READAHEAD_BYTES, TapeStream
from tapefs.pxar.source import Source
from tapefs.tapeformat.chunk_archive import ENTRY_HEADER_SIZE
from tests.helpers.tape_image import STORE, corrupt_on_cartridge

CHUNK = 4 * 1024 * 1024


def image_bytes(backed_up) -> bytes:
    datastore = backed_up.setup.datastore
    with ArchiveReader(backed_up.index, ChunkReader(datastore.chunk_store), readahead_chunks=0) as reader:
        return reader.read_at(0, reader.size)


def stream(backed_up, planner) -> TapeStream:
    return TapeStream(planner, backed_up.set_uuid, STORE, backed_up.index, "disk.img")


@pytest.mark.vtape
@pytest.mark.slow
def test_a_sequential_read_returns_the_image_and_streams_ahead(backed_up):
    expected = image_bytes(backed_up)
    with backed_up.planner() as planner:
        image: Source = stream(backed_up, planner)
        assert image.size == len(expected) == 9 * CHUNK
        pieces = [image.read_at(offset, 128 * 1024) for offset in range(0, image.size, 128 * 1024)]
        stats = planner.stats()
    assert b"".join(pieces) == expected
    # Every chunk came from tape once; readahead, not the reader, asked for most of them.
    assert stats["chunks_from_tape"] == 9 and stats["loads"] == len(backed_up.tapes)
    assert stats["cache_misses"] < 9
    # One LOCATE per chunk archive, not per chunk: the drive streams.
    archives = {place[:2] for place in backed_up.places.values()}
    assert stats["locates"] == len(archives) < 9


@pytest.mark.vtape
@pytest.mark.slow
def test_a_chunk_read_from_tape_twice_and_gaps_read_through_are_counted(backed_up, caplog):
    # Two chunks of one archive with one between: the drive reads through the one between.
    ordered = sorted(backed_up.places, key=lambda d: backed_up.places[d][:3])
    first, between, after = next(
        ordered[i : i + 3] for i in range(len(ordered) - 2) if len({backed_up.places[d][:2] for d in ordered[i : i + 3]}) == 1
    )
    # A cache that keeps nothing: the second read of a chunk comes from tape again.
    nothing_kept = ChunkCache(backed_up.root / "no-cache", max_bytes=0, memory_bytes=0)
    with backed_up.planner(cache=nothing_kept) as planner:
        planner.fetch(backed_up.set_uuid, STORE, [first, after])
        gap = planner.stats()["bytes_passed_over"]
        planner.fetch(backed_up.set_uuid, STORE, [first])
        stats = planner.stats()
    # the entry between, and what lies before the first one in the block the LOCATE reached
    between_entry = ENTRY_HEADER_SIZE + len(backed_up.blob(between))
    assert between_entry <= gap < between_entry + 256 * 1024
    assert stats["chunks_from_tape"] == 3 and stats["chunks_read_again"] == 1
    assert f"chunk {first.hex()} read from tape again (not in the cache" in caplog.text


@pytest.mark.vtape
@pytest.mark.slow
def test_only_the_chunks_of_a_small_range_are_read_from_tape(backed_up):
    expected = image_bytes(backed_up)
    with backed_up.planner() as planner:
        image = stream(backed_up, planner)
        offset = 5 * CHUNK + 1000
        assert image.read_at(offset, 10_000) == expected[offset:offset + 10_000]
        stats = planner.stats()
    blob = len(backed_up.blob(backed_up.index.digests[5]))
    assert stats["chunks_from_tape"] == 1 and stats["loads"] == 1
    assert stats["bytes_from_tape"] <= blob + 48 + 256 * 1024


@pytest.mark.vtape
@pytest.mark.slow
def test_random_reads_across_chunk_and_tape_boundaries(backed_up):
    expected = image_bytes(backed_up)
    rng = random.Random(8)
    with backed_up.planner() as planner:
        image = stream(backed_up, planner)
        for _ in range(20):
            offset = rng.randrange(image.size)
            length = rng.choice([1, 4096, CHUNK + 7, 3 * CHUNK])
            assert image.read_at(offset, length) == expected[offset:offset + length]
        assert image.read_at(image.size - 10, 100) == expected[-10:]
        assert image.read_at(image.size, 100) == b""
        with pytest.raises(ValueError, match="disk.img: negative offset"):
            image.read_at(-1, 10)


@pytest.mark.vtape
@pytest.mark.slow
def test_a_damaged_chunk_fails_its_range_and_the_rest_stays_readable(backed_up):
    expected = image_bytes(backed_up)
    bad = backed_up.index.digests[4]
    corrupt_on_cartridge(backed_up, bad)
    with backed_up.planner() as planner:
        image = stream(backed_up, planner)
        with pytest.raises(ChunkDamaged, match=bad.hex()):
            image.read_at(4 * CHUNK + 100, 100)
        assert image.read_at(3 * CHUNK, CHUNK) == expected[3 * CHUNK:4 * CHUNK]
        assert image.read_at(5 * CHUNK, 2 * CHUNK) == expected[5 * CHUNK:7 * CHUNK]


@pytest.mark.vtape
@pytest.mark.slow
def test_readahead_covers_about_32_mib(backed_up):
    with backed_up.planner() as planner:
        image = stream(backed_up, planner)
        image.read_at(0, 4096)
        image.read_at(4096, 4096)  # sequential: chunks 1 .. 8 go to the planner
        deadline_chunks = min(8, READAHEAD_BYTES // CHUNK)
        for _ in range(200):
            if planner.stats()["chunks_from_tape"] >= 1 + deadline_chunks:
                break
            time.sleep(0.05)
        assert planner.stats()["chunks_from_tape"] == 1 + deadline_chunks


class RecordingPlanner:
    """Answers every chunk from memory and records what was asked for and what was read ahead."""

    def __init__(self, chunks: dict[bytes, bytes]):
        self.chunks = chunks
        self.readahead: list[bytes] = []

    def fetch(self, set_uuid, store, digests, readahead=()):
        self.readahead.extend(readahead)
        return {digest: self.chunks[digest] for digest in digests}


def memory_image(chunk_count: int, chunk_size: int = 1024 * 1024):
    from tapefs.datastore.fixed_index import FixedIndex
    data = [bytes([n]) * chunk_size for n in range(chunk_count)]
    digests = [hashlib.sha256(chunk).digest() for chunk in data]
    index = FixedIndex(bytes(16), 0, bytes(32), chunk_count * chunk_size, chunk_size, digests)
    return RecordingPlanner(dict(zip(digests, data))), index, b"".join(data)


def test_each_of_two_interleaved_sequential_readers_gets_its_own_readahead():
    planner, index, image = memory_image(100)
    tape_stream = TapeStream(planner, "set", STORE, index, "disk.img")
    chunk = index.chunk_size
    a, b = 0, 50 * chunk
    tape_stream.read_at(b, 4096)  # a seek: no readahead yet
    assert planner.readahead == []
    for _ in range(3):
        assert tape_stream.read_at(a, 4096) == image[a:a + 4096]
        assert tape_stream.read_at(b, 4096) == image[b:b + 4096]
        a, b = a + 4096, b + 4096
    ahead = [index.digests.index(digest) for digest in planner.readahead]
    assert sorted(ahead) == list(range(1, 33)) + list(range(51, 83))  # 32 MiB after each reader


def test_readahead_stops_at_the_end_of_the_file_being_read():
    planner, index, image = memory_image(100)
    tape_stream = TapeStream(planner, "set", STORE, index, "archive.pxar")
    tape_stream.read_at(0, 4096, readahead_end=3 * index.chunk_size)
    tape_stream.read_at(4096, 4096, readahead_end=3 * index.chunk_size)
    assert [index.digests.index(d) for d in planner.readahead] == [1, 2]


def test_the_rest_of_the_chunk_read_last_is_answered_from_memory_and_readahead_still_flows():
    planner, index, image = memory_image(100, chunk_size=4 * 1024 * 1024)
    tape_stream = TapeStream(planner, "set", STORE, index, "disk.img")
    piece = 1024 * 1024
    assert tape_stream.view_in_memory(0, piece) is None  # nothing read yet
    assert tape_stream.view_at(0, piece) == image[:piece]
    ahead = len(planner.readahead)
    assert ahead == READAHEAD_BYTES // index.chunk_size
    for offset in range(piece, index.chunk_size, piece):
        assert tape_stream.view_in_memory(offset, piece) == image[offset:offset + piece]
    assert tape_stream.view_in_memory(index.chunk_size, piece) is None  # the next chunk: a fetch
    assert tape_stream.view_at(index.chunk_size, piece) == image[index.chunk_size:index.chunk_size + piece]
    # the sequential reader was followed through the in-memory answers: one more chunk read ahead
    assert len(planner.readahead) == ahead + 1
    # a range reaching into the next chunk is not in memory
    assert tape_stream.view_in_memory(2 * index.chunk_size - 10, 20) is None
