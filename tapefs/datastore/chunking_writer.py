"""A file-like sink that cuts a byte stream into chunks, stores them and writes the ``.didx``.

A pxar encoder (or the catalog writer) writes into it; ``finish()`` publishes the index.
"""

import logging
import os
from collections import deque
from dataclasses import dataclass

from tapefs.datastore.chunk_uploader import ChunkUploader
from tapefs.datastore.chunker import Chunker
from tapefs.datastore.dynamic_index import DynamicIndexWriter

log = logging.getLogger(__name__)

#: scan once this much unscanned data has piled up; small writes are common (item headers)
SCAN_BATCH_SIZE = 1 << 20


@dataclass(frozen=True)
class ArchiveResult:
    """What the manifest needs to know about a finished index."""

    size: int
    index_csum: bytes
    chunk_count: int


class ChunkingWriter:
    def __init__(self, uploader: ChunkUploader, index_path: str | os.PathLike, average_chunk_size: int, sync: bool = True):
        self._uploader = uploader
        self._sync = sync
        self._chunker = Chunker(average_chunk_size)
        self._index = DynamicIndexWriter(index_path, sync)
        self._buffer = bytearray()
        self._scanned = 0
        self._emitted = 0
        self._pending: deque = deque()

    def write(self, data) -> int:
        self._buffer += data
        if len(self._buffer) - self._scanned >= SCAN_BATCH_SIZE:
            self._scan()
        return len(data)

    def _scan(self) -> None:
        start = 0
        with memoryview(self._buffer) as view:
            for cut in self._chunker.scan(view[self._scanned :]):
                end = self._scanned + cut
                self._emit(bytes(view[start:end]))
                start = end
        del self._buffer[:start]
        self._scanned = len(self._buffer)

    def _emit(self, chunk: bytes) -> None:
        self._emitted += len(chunk)
        self._pending.append((self._emitted, self._uploader.submit(chunk)))
        self._drain(self._uploader.max_pending)

    def _drain(self, limit: int) -> None:
        while len(self._pending) > limit:
            end, future = self._pending.popleft()
            self._index.add_chunk(end, future.result())

    def finish(self) -> ArchiveResult:
        self._scan()
        if self._buffer:
            self._emit(bytes(self._buffer))
            self._buffer.clear()
            self._scanned = 0
        self._drain(0)
        if self._sync:
            self._uploader.chunk_store.sync()
        index_csum = self._index.close()
        return ArchiveResult(self._index.size, index_csum, self._index.chunk_count)

    def abort(self) -> None:
        for _, future in self._pending:
            future.cancel()
        for _, future in self._pending:
            if not future.cancelled():
                future.exception()
        self._pending.clear()
        self._index.abort()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
