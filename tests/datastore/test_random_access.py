"""The didx-backed reader under the pxar accessor: a path lookup and a byte range read touch
only a few chunks of a large archive, and random streams round-trip."""

import os
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tapefs.datastore.archive_reader import ArchiveReader
from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.chunk_reader import ChunkReader
from tapefs.datastore.chunk_store import ChunkStore
from tapefs.datastore.chunk_uploader import ChunkUploader
from tapefs.datastore.chunking_writer import ChunkingWriter
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.naming import BackupGroup
from tapefs.pxar.accessor import Accessor


class CountingChunkReader(ChunkReader):
    def __init__(self, *args):
        super().__init__(*args)
        self.loads = 0

    def read_chunk(self, digest, expected_size=None):
        self.loads += 1
        return super().read_chunk(digest, expected_size)


def test_accessor_lookup_and_range_read_touch_few_chunks(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    rng = random.Random(11)
    big = rng.randbytes(12 << 20)
    for i in range(4):
        (tree / f"pad{i}").write_bytes(rng.randbytes(1 << 20))
    (tree / "target.bin").write_bytes(big)
    (tree / "zzz").mkdir()
    (tree / "zzz" / "small.txt").write_text("found me\n")
    datastore = Datastore.create(tmp_path / "store", prefix_dirs=False)
    result = backup(datastore, BackupGroup.parse("host/t"), parse_sources([str(tree)]))
    index = DynamicIndex.load(datastore.snapshot_path(result.snapshot) / "root.pxar.didx")
    assert index.chunk_count >= 3

    chunk_reader = CountingChunkReader(datastore.chunk_store)
    with ArchiveReader(index, chunk_reader, readahead_chunks=0) as source:
        accessor = Accessor(source)
        assert accessor.read("zzz/small.txt") == b"found me\n"
        lookup_loads = chunk_reader.loads
        assert lookup_loads <= 2  # the tail chunk holds the goodbye tables and the small file
        offset = 7 << 20
        assert accessor.read("target.bin", offset, 100000) == big[offset : offset + 100000]
        assert chunk_reader.loads - lookup_loads <= 2
        assert chunk_reader.loads < index.chunk_count


@given(
    data=st.binary(min_size=0, max_size=600000),
    pieces=st.lists(st.integers(min_value=1, max_value=100000), min_size=1, max_size=20),
    reads=st.lists(st.tuples(st.integers(min_value=0, max_value=700000), st.integers(min_value=0, max_value=200000)), max_size=10),
)
@settings(max_examples=40, deadline=None)
def test_random_streams_round_trip(tmp_path_factory, data, pieces, reads):
    base = tmp_path_factory.mktemp("rt")
    store = ChunkStore(base)
    with ChunkUploader(store) as uploader, ChunkingWriter(uploader, base / "s.pxar.didx", 4096, sync=False) as writer:
        offset, turn = 0, 0
        while offset < len(data):
            size = pieces[turn % len(pieces)]
            writer.write(data[offset : offset + size])
            offset += size
            turn += 1
        result = writer.finish()
    assert result.size == len(data)
    index = DynamicIndex.load(base / "s.pxar.didx")
    assert all(end - start <= 4 * 4096 for start, end in map(index.chunk_range, range(index.chunk_count)))
    with ArchiveReader(index, ChunkReader(store), cache_chunks=2) as reader:
        for start, length in reads:
            assert reader.read_at(start, length) == data[start : start + length]
        assert b"".join(reader.iter_chunks()) == data
    assert os.path.exists(base / "s.pxar.didx")
