"""One index-described stream (an image's `.fidx` or a pxar's `.didx`) whose chunks lie on tape,
as a pxar Source (`size`, `read_at`): byte ranges map to chunk indexes, digests and the planner.

A read that starts where an earlier one ended is sequential: the chunks up to READAHEAD_BYTES
past it are handed to the planner as readahead, so the drive keeps streaming while a `cp`
consumes what is already in the cache. Several readers of one stream (files of one pxar archive
copied in parallel) are told apart by where each stopped, so each keeps its own readahead.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.fixed_index import FixedIndex
from tapefs.mount.read_planner import ReadPlanner

READAHEAD_BYTES = 32 * 1024 * 1024
#: Sequential readers of one stream followed at once; the one idle longest is forgotten first.
MAX_READERS = 16


class TapeStream:
    def __init__(self, planner: ReadPlanner, set_uuid: str, store: str, index: DynamicIndex | FixedIndex, name: str):
        self.planner = planner
        self.set_uuid = set_uuid
        self.store = store
        self.index = index
        self.name = name
        self.size = index.size
        self._lock = threading.Lock()
        #: Where each recent reader stopped → the last chunk index handed out as its readahead.
        self._readers: OrderedDict[int, int] = OrderedDict({0: -1})
        #: The chunk read last, kept because a reader takes it in many small pieces.
        self._last: tuple[int, bytes] | None = None

    def read_at(self, offset: int, length: int, readahead_end: int | None = None) -> bytes:
        """Up to `length` bytes at `offset`; fewer only at the end of the stream. Readahead stops
        at `readahead_end` (the end of the file being read, when the stream holds many)."""
        parts = self._parts(offset, length, readahead_end)
        if len(parts) > 1:
            return b"".join(parts)
        whole = parts[0].obj
        return whole if isinstance(whole, bytes) and len(whole) == parts[0].nbytes else bytes(parts[0])

    def view_at(self, offset: int, length: int, readahead_end: int | None = None) -> bytes | memoryview:
        """`read_at`, but a range inside one chunk comes as a view of the chunk, not a copy: the
        FUSE reply copies it once more anyway (a copy per request cost a page fault per 4 KiB)."""
        parts = self._parts(offset, length, readahead_end)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _parts(self, offset: int, length: int, readahead_end: int | None) -> list[memoryview]:
        if offset < 0 or length < 0:
            raise ValueError(f"{self.name}: negative offset or length")
        end = min(offset + length, self.size)
        if offset >= end:
            return [memoryview(b"")]
        first, last = self.index.find_chunk(offset), self.index.find_chunk(end - 1)
        readahead = self._readahead(offset, end, last, readahead_end)
        chunks = self._chunks(first, last, readahead)
        parts = []
        for i in range(first, last + 1):
            start, stop = self.index.chunk_range(i)
            parts.append(memoryview(chunks[i])[max(offset, start) - start : min(end, stop) - start])
        return parts

    def view_in_memory(self, offset: int, length: int, readahead_end: int | None = None) -> memoryview | None:
        """`view_at`'s answer when the range lies in the chunk read last and no readahead is due:
        then it needs neither the planner nor a wait, and the FUSE loop answers it without a
        thread (a `cp` asks for a 4 MiB chunk in four 1 MiB reads). None otherwise."""
        end = min(offset + length, self.size)
        last_read = self._last
        if last_read is None or not 0 <= offset < end:
            return None
        index = last_read[0]
        start, stop = self.index.chunk_range(index)
        if not start <= offset < end <= stop:
            return None
        with self._lock:
            sequential = offset in self._readers
            handed_out = self._readers[offset] if sequential else index
            if sequential:
                if self._due(index, handed_out, readahead_end):
                    return None
                del self._readers[offset]
            self._follow(end, max(handed_out, index))
        return memoryview(last_read[1])[offset - start : end - start]

    def _readahead(self, offset: int, end: int, last: int, readahead_end: int | None) -> list[int]:
        """For a sequential read, the chunk indexes after `last` up to READAHEAD_BYTES (and
        `readahead_end`) this reader has not handed out yet; nothing after a seek."""
        with self._lock:
            sequential = offset in self._readers
            handed_out = self._readers.pop(offset) if sequential else last
            ahead = self._due(last, handed_out, readahead_end) if sequential else []
            self._follow(end, max(handed_out, last, *ahead[-1:]))
        return ahead

    def _due(self, last: int, handed_out: int, readahead_end: int | None) -> list[int]:
        """The readahead a sequential reader that just read up to chunk `last` is owed."""
        limit = self.index.chunk_range(last)[1] + READAHEAD_BYTES
        if readahead_end is not None:
            limit = min(limit, readahead_end)
        ahead = []
        i = max(last + 1, handed_out + 1)
        while i < self.index.chunk_count and self.index.chunk_range(i)[0] < limit:
            ahead.append(i)
            i += 1
        return ahead

    def _follow(self, end: int, handed_out: int) -> None:
        """Remember a reader that stopped at `end` (under the lock)."""
        self._readers[end] = handed_out
        while len(self._readers) > MAX_READERS:
            self._readers.popitem(last=False)

    def _chunks(self, first: int, last: int, readahead: list[int]) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        last_read = self._last
        if last_read is not None and first <= last_read[0] <= last:
            found[last_read[0]] = last_read[1]
        wanted = [i for i in range(first, last + 1) if i not in found]
        if wanted or readahead:
            digests = self.index.digests
            data = self.planner.fetch(
                self.set_uuid, self.store, [digests[i] for i in wanted], [digests[i] for i in readahead]
            )
            for i in wanted:
                found[i] = data[digests[i]]
        self._last = (last, found[last])
        return found
