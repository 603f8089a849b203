import os
import random

import pytest

from tapefs.datastore.archive_reader import ArchiveReader
from tapefs.datastore.chunk_reader import ChunkReader
from tapefs.datastore.chunk_store import ChunkStore
from tapefs.datastore.chunk_uploader import ChunkUploader
from tapefs.datastore.chunker import Chunker
from tapefs.datastore.chunking_writer import ChunkingWriter
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.errors import ChunkMissingError, CorruptFileError
from tapefs.datastore.fixed_index import FixedIndex, FixedIndexWriter

AVERAGE = 64 << 10


@pytest.fixture(scope="module")
def stream():
    return random.Random(7).randbytes(3 << 20)


def write_archive(tmp_path, data, crypt_config=None, piece=70001):
    store = ChunkStore(tmp_path)
    path = tmp_path / "root.pxar.didx"
    with ChunkUploader(store, crypt_config) as uploader:
        with ChunkingWriter(uploader, path, AVERAGE, sync=False) as writer:
            for offset in range(0, len(data), piece):
                writer.write(data[offset : offset + piece])
            result = writer.finish()
    return store, path, result, uploader.stats


def test_writer_cuts_like_the_chunker_and_reads_back(tmp_path, stream):
    store, path, result, stats = write_archive(tmp_path, stream, piece=1000)
    index = DynamicIndex.load(path)
    expected_cuts = Chunker(AVERAGE).scan(stream) + [len(stream)]
    assert index.ends == expected_cuts
    assert (result.size, result.index_csum, result.chunk_count) == (len(stream), index.index_csum, len(expected_cuts))
    assert stats.chunk_count == len(expected_cuts) and stats.size == len(stream)
    with ArchiveReader(index, ChunkReader(store)) as reader:
        assert reader.size == len(stream)
        assert b"".join(reader.iter_chunks()) == stream
    assert os.listdir(tmp_path).count("root.pxar.tmp_didx") == 0


def test_second_write_is_all_duplicates(tmp_path, stream):
    write_archive(tmp_path, stream)
    _, _, _, stats = write_archive(tmp_path, stream)
    assert stats.duplicate_count == stats.chunk_count and stats.stored_size == 0


class CountingChunkReader(ChunkReader):
    def __init__(self, *args):
        super().__init__(*args)
        self.loaded = []

    def read_chunk(self, digest, expected_size=None):
        self.loaded.append(digest)
        return super().read_chunk(digest, expected_size)


def test_read_at_touches_only_covering_chunks(tmp_path, stream):
    store, path, _, _ = write_archive(tmp_path, stream)
    index = DynamicIndex.load(path)
    rng = random.Random(1)
    for _ in range(40):
        offset = rng.randrange(len(stream))
        length = rng.randrange(1, 300000)
        chunk_reader = CountingChunkReader(store)
        reader = ArchiveReader(index, chunk_reader, readahead_chunks=0)
        assert reader.read_at(offset, length) == stream[offset : offset + length]
        end = min(offset + length, len(stream))
        first, last = index.find_chunk(offset), index.find_chunk(end - 1)
        assert chunk_reader.loaded == index.digests[first : last + 1]
    reader = ArchiveReader(index, ChunkReader(store))
    assert reader.read_at(len(stream), 10) == b""
    assert reader.read_at(len(stream) - 3, 10) == stream[-3:]
    reader.close()


def test_lru_serves_repeated_reads(tmp_path, stream):
    store, path, _, _ = write_archive(tmp_path, stream)
    chunk_reader = CountingChunkReader(store)
    reader = ArchiveReader(DynamicIndex.load(path), chunk_reader, cache_chunks=4, readahead_chunks=0)
    for _ in range(5):
        reader.read_at(len(stream) - 100, 100)
        reader.read_at(0, 100)
    assert len(chunk_reader.loaded) == 2


def test_encrypted_archive(tmp_path, stream):
    key = CryptConfig(b"\x03" * 32)
    store, path, _, _ = write_archive(tmp_path, stream[: 1 << 20], key)
    index = DynamicIndex.load(path)
    assert key.digest(stream[: index.ends[0]]) == index.digests[0]
    with ArchiveReader(index, ChunkReader(store, key)) as reader:
        assert reader.read_at(12345, 100000) == stream[12345:112345]
    with pytest.raises(Exception, match="no key"):
        ArchiveReader(index, ChunkReader(store), readahead_chunks=0).read_at(0, 10)


def test_corrupt_and_missing_chunks(tmp_path, stream):
    store, path, _, _ = write_archive(tmp_path, stream[: 1 << 20])
    index = DynamicIndex.load(path)
    chunk_path = store.chunk_path(index.digests[1])
    raw = bytearray(chunk_path.read_bytes())
    raw[-1] ^= 1
    chunk_path.write_bytes(bytes(raw))
    reader = ArchiveReader(index, ChunkReader(store), readahead_chunks=0)
    with pytest.raises(CorruptFileError) as info:
        reader.read_at(index.ends[0], 10)
    assert info.value.path == str(chunk_path) and info.value.offset == 8
    os.unlink(chunk_path)
    with pytest.raises(ChunkMissingError):
        reader.read_at(index.ends[0], 10)


def test_chunk_digest_mismatch_detected(tmp_path):
    store = ChunkStore(tmp_path)
    from tapefs.datastore.blob import encode_blob

    wrong_digest = b"\x11" * 32
    store.insert(wrong_digest, encode_blob(b"not what the digest says"))
    with pytest.raises(CorruptFileError, match="digest mismatch"):
        ChunkReader(store).read_chunk(wrong_digest)


def test_writer_abort_leaves_no_index(tmp_path, stream):
    store = ChunkStore(tmp_path)
    with pytest.raises(RuntimeError):
        with ChunkUploader(store) as uploader:
            with ChunkingWriter(uploader, tmp_path / "a.pxar.didx", AVERAGE, sync=False) as writer:
                writer.write(stream)
                raise RuntimeError("source vanished")
    assert not (tmp_path / "a.pxar.didx").exists()
    assert not (tmp_path / "a.pxar.tmp_didx").exists()


def test_fixed_index_reader(tmp_path, stream):
    store = ChunkStore(tmp_path)
    chunk_size = 1 << 20
    data = stream[: 2 * chunk_size + 777]
    with ChunkUploader(store) as uploader, FixedIndexWriter(tmp_path / "d.img.fidx", chunk_size, sync=False) as writer:
        for offset in range(0, len(data), chunk_size):
            writer.add_digest(uploader.submit(data[offset : offset + chunk_size]).result())
        writer.close(len(data))
    index = FixedIndex.load(tmp_path / "d.img.fidx")
    with ArchiveReader(index, ChunkReader(store)) as reader:
        assert reader.read_at(chunk_size - 5, 10) == data[chunk_size - 5 : chunk_size + 5]
        assert b"".join(reader.iter_chunks()) == data


def test_truncated_and_foreign_chunk_files_name_offset(tmp_path):
    from tapefs.datastore.blob import encode_blob

    store = ChunkStore(tmp_path)
    data = b"chunk data" * 1000
    digest = CryptConfig(b"\x05" * 32).digest(data)
    store.insert(digest, encode_blob(data, CryptConfig(b"\x05" * 32)))
    path = store.chunk_path(digest)
    reader = ChunkReader(store, CryptConfig(b"\x05" * 32))
    assert reader.read_chunk(digest) == data
    path.write_bytes(path.read_bytes()[:30])  # inside the 44-byte encrypted header
    with pytest.raises(CorruptFileError) as info:
        reader.read_chunk(digest)
    assert (info.value.path, info.value.offset) == (str(path), 30)
    path.write_bytes(b"PK\x03\x04 not a blob at all")
    with pytest.raises(CorruptFileError) as info:
        reader.read_chunk(digest)
    assert info.value.offset == 0 and "magic" in str(info.value)
