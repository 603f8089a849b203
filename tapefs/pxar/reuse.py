"""Metadata change detection: archive a tree as a split archive, reusing the payload of files
whose metadata did not change since a previous split archive (docs/datastore.md, "Change
detection modes").

A regular file is unchanged when the previous metadata archive has a regular file at the same
path with the same size and equal metadata (mode, chattr flags, uid, gid, mtime including
nanoseconds, xattrs, ACLs, file capabilities, quota project id); it is then not read, because its
PAYLOAD item is still in the previous payload stream. Unchanged files whose old PAYLOAD items lie
back to back form a run; the entries met meanwhile wait with them. When a file breaks the run, the
previous payload chunks covering it are appended whole to the new payload stream and the waiting
files get payload references into them, unless the bytes of those chunks outside the run (the
padding) exceed 10 % of the chunks: then the run's files are read after all, as PBS does. The last
chunk of a run is held back while no new payload is written, so that a chunk shared by two runs is
appended once.
"""

import logging
import os
from dataclasses import dataclass
from typing import Protocol

from . import format as fmt
from .accessor import Accessor
from .encoder import Encoder, TreeWalker
from .entry import Entry, Kind, Metadata

log = logging.getLogger(__name__)

#: most padding a run's chunks may carry, as a share of their size, for the run to be reused
REUSE_PADDING_THRESHOLD = 0.1
#: entries waiting for a run to be settled (each waiting file keeps an open descriptor)
MAX_WAITING_ENTRIES = 1024


@dataclass(frozen=True)
class PayloadChunk:
    position: int  # in the previous payload index
    size: int
    digest: bytes


class PreviousPayload(Protocol):
    size: int

    def chunks_covering(self, start: int, end: int) -> tuple[list[PayloadChunk], int, int]:
        """The chunks holding payload bytes ``[start, end)``, the bytes of the first before
        ``start`` and the bytes of the last after ``end``."""


@dataclass
class ReuseStats:
    files_reused: int = 0
    files_read: int = 0
    #: PAYLOAD items (header and contents) of reused files
    bytes_reused: int = 0
    #: file contents read
    bytes_read: int = 0
    chunks_appended: int = 0
    #: size of the appended chunks, padding included
    bytes_appended: int = 0


@dataclass
class _WaitingFile:
    fd: int
    name: bytes
    metadata: Metadata
    size: int
    #: of its old PAYLOAD header from the start of the run
    run_offset: int


class _DeferringEncoder:
    """The encoder as the walker sees it: entries wait while a run is open."""

    def __init__(self, walker: "ReusingTreeWalker"):
        self._walker = walker

    def add_symlink(self, *args) -> None:
        self._walker.entry("add_symlink", args)

    def add_device(self, *args) -> None:
        self._walker.entry("add_device", args)

    def add_special(self, *args) -> None:
        self._walker.entry("add_special", args)

    def add_hardlink(self, *args) -> None:
        self._walker.entry("add_hardlink", args)

    def begin_directory(self, *args) -> None:
        self._walker.entry("begin_directory", args)

    def end_directory(self) -> None:
        self._walker.entry("end_directory", ())


class ReusingTreeWalker(TreeWalker):
    """A ``TreeWalker`` for a v2 encoder whose ``payload_out`` can append known chunks."""

    def __init__(
        self,
        encoder: Encoder,
        one_file_system: bool,
        previous: Accessor,
        previous_payload: PreviousPayload,
        stats: ReuseStats,
    ):
        super().__init__(encoder, one_file_system)
        self.target = encoder
        self.encoder = _DeferringEncoder(self)  # type: ignore[assignment]
        self.previous = previous
        self.previous_payload = previous_payload
        self.stats = stats
        # the children of each open directory in the previous archive, by name
        self._previous_directories: list[dict[bytes, Entry] | None] = [self._children(previous.root())]
        self._waiting: list[_WaitingFile | tuple[str, tuple]] = []
        self._run: tuple[int, int] | None = None  # [start, end) in the previous payload stream
        self._held: PayloadChunk | None = None
        self._held_unused = 0  # bytes of the held chunk no reused file lies in

    # -- the walk

    def begin_directory(self, name: bytes, metadata: Metadata) -> None:
        parent = self._previous_directories[-1]
        previous = parent.get(name) if parent is not None else None
        self._previous_directories.append(
            self._children(previous) if previous is not None and previous.kind is Kind.DIRECTORY else None
        )
        super().begin_directory(name, metadata)

    def _children(self, directory: Entry) -> dict[bytes, Entry]:
        return {entry.name: entry for entry in self.previous.iter_dir(directory)}

    def end_directory(self) -> None:
        self._previous_directories.pop()
        super().end_directory()

    def entry(self, method: str, args: tuple) -> None:
        if self._waiting:
            self._waiting.append((method, args))
            if len(self._waiting) >= MAX_WAITING_ENTRIES:
                self._settle(keep_last=True, run_continues=True)
        else:
            getattr(self.target, method)(*args)

    def add_regular_file(self, fd: int, name: bytes, metadata: Metadata, st: os.stat_result) -> int:
        """Returns the FILENAME offset for a file read now, -1 for one waiting in a run (never
        a file with more than one link, the only ones whose offset is asked for)."""
        payload_range = self._unchanged_payload(name, metadata, st)
        if payload_range is None:
            self._settle(keep_last=False)
            return self._read_file(fd, name, metadata, st.st_size)
        start, end = payload_range
        if self._run is not None and start != self._run[1]:
            self._settle(keep_last=True)
        run_start = start if self._run is None else self._run[0]
        self._run = (run_start, end)
        self._waiting.append(_WaitingFile(os.dup(fd), name, metadata, st.st_size, start - run_start))
        if len(self._waiting) >= MAX_WAITING_ENTRIES:
            self._settle(keep_last=True, run_continues=True)
        return -1

    def _read_file(self, fd: int, name: bytes, metadata: Metadata, size: int) -> int:
        self.stats.files_read += 1
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as reader:
            return self.target.add_file(name, metadata, size, reader)

    def finish(self) -> None:
        self._settle(keep_last=False)
        self._append_held()
        self.stats.bytes_read = self.target.bytes_read

    def close(self) -> None:
        """Release what waits (after a failure)."""
        for item in self._waiting:
            if isinstance(item, _WaitingFile):
                os.close(item.fd)
        self._waiting.clear()

    # -- reuse

    def _unchanged_payload(self, name: bytes, metadata: Metadata, st: os.stat_result) -> tuple[int, int] | None:
        """The old PAYLOAD item of an unchanged file, as [start, end) in the previous payload."""
        parent = self._previous_directories[-1]
        if parent is None or st.st_nlink > 1:
            return None
        previous = parent.get(name)
        if (
            previous is None
            or previous.kind is not Kind.FILE
            or previous.payload_ref_offset is None
            or previous.size != st.st_size
            or previous.metadata != metadata
        ):
            return None
        start = previous.payload_ref_offset
        end = start + fmt.HEADER_SIZE + previous.size
        if end > self.previous_payload.size:
            log.warning("%r: payload reference beyond the previous payload stream; reading the file", name)
            return None
        return start, end

    def _settle(self, keep_last: bool, run_continues: bool = False) -> None:
        """Write what waits: the run's files as references into its appended chunks if their
        padding stays under the threshold, else read. ``keep_last`` holds the run's last chunk
        back for a run that may continue in it. A run cut short only because too many entries
        wait (``run_continues``) is likely to go on in its last chunk: the rest of that chunk
        does not count as padding yet."""
        if self._run is None:
            self._append_held()  # payload may be written next
            self._replay(None)
            return
        start, end = self._run
        chunks, before, after = self.previous_payload.chunks_covering(start, end)
        held, self._held = self._held, None
        shares_held = held is not None and held.position == chunks[0].position
        unused_before = before - (held.size - self._held_unused) if shares_held and held is not None else before
        padding = unused_before + (0 if run_continues else after)
        if padding > REUSE_PADDING_THRESHOLD * (end - start + before + after):
            log.debug("payload %d..%d: padding %d too high; reading its files", start, end, padding)
            self._held = held
            self._append_held()
            self._replay(None)
            return
        if held is not None and not shares_held:
            self._append([held])
        payload_position = self.target.payload_position
        assert payload_position is not None
        self._replay(payload_position + before)
        if keep_last:
            self._held = chunks.pop()
            self._held_unused = after + (unused_before if not chunks else 0)
        self._append(chunks)

    def _append_held(self) -> None:
        if self._held is not None:
            self._append([self._held])
            self._held = None

    def _append(self, chunks: list[PayloadChunk]) -> None:
        if chunks:
            size = sum(chunk.size for chunk in chunks)
            self.target.append_payload_chunks([(chunk.size, chunk.digest) for chunk in chunks], size)
            self.stats.chunks_appended += len(chunks)
            self.stats.bytes_appended += size

    def _replay(self, base: int | None) -> None:
        """Hand the waiting entries to the encoder; files by reference at ``base`` plus their
        run offset, or read if ``base`` is None."""
        waiting, self._waiting, self._run = self._waiting, [], None
        try:
            for index, item in enumerate(waiting):
                if not isinstance(item, _WaitingFile):
                    method, args = item
                    getattr(self.target, method)(*args)
                elif base is None:
                    self._read_file(item.fd, item.name, item.metadata, item.size)
                else:
                    self.stats.files_reused += 1
                    self.stats.bytes_reused += fmt.HEADER_SIZE + item.size
                    self.target.add_payload_ref(item.name, item.metadata, item.size, base + item.run_offset)
                if isinstance(item, _WaitingFile):
                    os.close(item.fd)
                    waiting[index] = ("", ())
        finally:
            for item in waiting:
                if isinstance(item, _WaitingFile):
                    os.close(item.fd)
