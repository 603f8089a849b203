"""Random access to the archive an index describes (docs/datastore-format.md, "Dynamic index").

``read_at`` touches only the chunks covering the range: bisect over the chunk end offsets for a
dynamic index, a division for a fixed one. Decoded chunks stay in a small LRU; pxar lookups
start at the archive's tail (the root goodbye table), which the LRU keeps warm. A sequential
reader gets the next chunks decoded ahead of time on worker threads.
"""

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

from tapefs.datastore.chunk_reader import ChunkReader
from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.fixed_index import FixedIndex

log = logging.getLogger(__name__)

DEFAULT_CACHE_CHUNKS = 32
DEFAULT_READAHEAD_CHUNKS = 2


class ArchiveReader:
    """``size`` and ``read_at(offset, length)`` over a ``.didx`` or ``.fidx``."""

    def __init__(
        self,
        index: DynamicIndex | FixedIndex,
        chunk_reader: ChunkReader,
        cache_chunks: int = DEFAULT_CACHE_CHUNKS,
        readahead_chunks: int = DEFAULT_READAHEAD_CHUNKS,
    ):
        self.index = index
        self.chunk_reader = chunk_reader
        self.size = index.size
        self.name = index.path
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._cache_chunks = max(1, cache_chunks)
        self._readahead_chunks = readahead_chunks
        self._prefetch: dict[int, Future] = {}
        self._pool = (
            ThreadPoolExecutor(max_workers=readahead_chunks, thread_name_prefix="chunk-read")
            if readahead_chunks
            else None
        )
        self._last_chunk = -2
        self._lock = threading.Lock()

    def load_chunk(self, i: int) -> bytes:
        """Decoded data of chunk ``i``, bypassing cache and readahead (safe from any thread)."""
        start, end = self.index.chunk_range(i)
        return self.chunk_reader.read_chunk(self.index.digests[i], end - start)

    def chunk(self, i: int) -> bytes:
        """Decoded data of chunk ``i``."""
        with self._lock:
            data = self._cache.get(i)
            if data is not None:
                self._cache.move_to_end(i)
                return data
            sequential = i == self._last_chunk + 1
            self._last_chunk = i
            future = self._prefetch.pop(i, None)
            if self._pool is not None and sequential:
                for ahead in range(i + 1, min(i + 1 + self._readahead_chunks, self.index.chunk_count)):
                    if ahead not in self._cache and ahead not in self._prefetch:
                        self._prefetch[ahead] = self._pool.submit(self.load_chunk, ahead)
        data = future.result() if future is not None else self.load_chunk(i)
        with self._lock:
            self._cache[i] = data
            while len(self._cache) > self._cache_chunks:
                self._cache.popitem(last=False)
        return data

    def read_at(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        end = min(offset + length, self.size)
        if offset >= end:
            return b""
        i = self.index.find_chunk(offset)
        parts = []
        while offset < end:
            chunk_start, chunk_end = self.index.chunk_range(i)
            data = self.chunk(i)
            parts.append(data[offset - chunk_start : min(end, chunk_end) - chunk_start])
            offset = chunk_end
            i += 1
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def iter_chunks(self):
        """Every chunk's data in order, decoded ahead on the worker threads."""
        for i in range(self.index.chunk_count):
            data = self.chunk(i)
            # a full sequential pass never re-reads a chunk; keep the LRU from holding them all
            with self._lock:
                self._cache.pop(i, None)
            yield data

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._prefetch.clear()
        self._cache.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
