"""A file-like sink that cuts a byte stream into chunks, stores them and writes the ``.didx``.

A pxar encoder (or the catalog writer) writes into it; ``finish()`` publishes the index.
For the payload stream of a split pxar archive the encoder also suggests boundaries (the
offsets where files start), which the writer honours the way PBS's payload chunker does
(docs/datastore-format.md, "Chunking"), so that a file's contents start a chunk of their own.
"""

import logging
import os
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

from tapefs.datastore.chunk_uploader import ChunkUploader
from tapefs.datastore.chunker import Chunker
from tapefs.datastore.dynamic_index import DynamicIndexWriter
from tapefs.datastore.errors import DatastoreError

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
    def __init__(
        self, uploader: ChunkUploader, index_path: str | os.PathLike, average_chunk_size: int, sync: bool = True
    ):
        self._uploader = uploader
        self._sync = sync
        self._chunker = Chunker(average_chunk_size)
        # the chunker's own minimum: a suggestion closer to the chunk start is dropped
        self._minimum_chunk_size = average_chunk_size // 4
        self._index = DynamicIndexWriter(index_path, sync)
        # stream bytes not yet emitted as chunks; the buffer starts at stream offset _emitted
        self._buffer = bytearray()
        self._scanned = 0
        self._emitted = 0
        self._pending: deque = deque()
        self._suggestions: deque[int] = deque()

    def suggest_boundary(self, offset: int) -> None:
        """Prefer a cut at stream ``offset`` (may lie beyond the bytes written so far).

        With ``s`` the start of the chunk in progress when the scan reaches ``offset`` without
        a hash cut: ``offset - s`` below the minimum chunk size drops the suggestion; otherwise
        the chunk ends exactly at ``offset`` and the rolling hash restarts there. Hash cuts
        before ``offset`` (including the maximum size) still happen.
        """
        if self._suggestions and offset < self._suggestions[-1]:
            raise ValueError(f"suggested boundary {offset} is before the previous one at {self._suggestions[-1]}")
        self._suggestions.append(offset)

    def write(self, data) -> int:
        self._buffer += data
        if len(self._buffer) - self._scanned >= SCAN_BATCH_SIZE:
            self._scan()
        return len(data)

    def _scan(self) -> None:
        start = 0  # buffer offset of the chunk in progress
        buffer_offset = self._emitted  # stream offset of the buffer's first byte
        with memoryview(self._buffer) as view:
            while True:
                boundary = self._next_boundary(buffer_offset, len(view))
                stop = len(view) if boundary is None else boundary
                for cut in self._chunker.scan(view[self._scanned : stop]):
                    end = self._scanned + cut
                    self._emit(bytes(view[start:end]))
                    start = end
                self._scanned = stop
                if boundary is None:
                    break
                if boundary - start >= self._minimum_chunk_size:
                    self._emit(bytes(view[start:boundary]))
                    start = boundary
                    self._chunker.reset()
        del self._buffer[:start]
        self._scanned = len(self._buffer)

    def _next_boundary(self, buffer_offset: int, buffered: int) -> int | None:
        """Buffer offset of the next suggestion within the ``buffered`` bytes, taken off the
        queue; None if there is none there yet."""
        while self._suggestions:
            boundary = self._suggestions[0] - buffer_offset
            if boundary > buffered:
                return None
            self._suggestions.popleft()
            if boundary >= self._scanned:
                return boundary
            # the scan already went past it (suggested late): nothing to cut any more
            log.debug("suggested boundary %d already passed", boundary + buffer_offset)
        return None

    def append_known_chunks(self, chunks: list[tuple[int, bytes]]) -> None:
        """Append chunks already in the store, as (size, digest), to the index at the current
        stream position: what is buffered is cut off there first, as PBS's payload chunker
        does at an injection. The chunks are touched (kept from garbage collection) and
        counted as known; their bytes are never read.
        """
        self._scan()
        if self._buffer:
            self._emit(bytes(self._buffer))
            self._buffer.clear()
        self._scanned = 0
        self._chunker.reset()
        chunk_store = self._uploader.chunk_store
        for size, digest in chunks:
            try:
                chunk_store.touch(digest)
            except FileNotFoundError:
                raise DatastoreError(
                    f"chunk {digest.hex()} of the previous snapshot is missing from the store"
                ) from None
            self._emitted += size
            known: Future = Future()
            known.set_result(digest)
            self._pending.append((self._emitted, known))
            self._uploader.count_known_chunk(size)
        self._drain(self._uploader.max_pending)

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
        self._suggestions.clear()  # any left lie beyond the end of the stream
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
