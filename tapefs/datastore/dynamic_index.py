"""Dynamic index ``.didx``: a list of (end offset, digest) for variable-sized chunks
(docs/datastore-format.md, "Dynamic index").

Header (4096 bytes): magic, uuid, ctime, index_csum = SHA-256 of the entry area; then 40-byte
entries, ``end: u64`` (exclusive end of the chunk in the archive) and the 32-byte digest.
"""

import bisect
import hashlib
import logging
import os
import struct
from pathlib import Path

from tapefs.datastore.errors import CorruptFileError
from tapefs.datastore.index_file import (
    COMMON_HEADER,
    DIGEST_SIZE,
    INDEX_HEADER_SIZE,
    IndexWriter,
    index_magic,
)

log = logging.getLogger(__name__)

DYNAMIC_INDEX_MAGIC = index_magic("Proxmox Backup dynamic sized chunk index v1.0")
ENTRY = struct.Struct("<Q32s")


class DynamicIndex:
    """A loaded ``.didx``; chunk i covers ``[end[i-1], end[i])``."""

    def __init__(
        self,
        uuid_bytes: bytes,
        ctime: int,
        index_csum: bytes,
        ends: list[int],
        digests: list[bytes],
        path: str = "<didx>",
    ):
        self.uuid = uuid_bytes
        self.ctime = ctime
        self.index_csum = index_csum
        self.ends = ends
        self.digests = digests
        self.path = path

    @property
    def size(self) -> int:
        return self.ends[-1] if self.ends else 0

    @property
    def chunk_count(self) -> int:
        return len(self.ends)

    def chunk_range(self, i: int) -> tuple[int, int]:
        return (self.ends[i - 1] if i else 0), self.ends[i]

    def find_chunk(self, offset: int) -> int:
        """Index of the chunk holding byte ``offset`` (0 <= offset < size)."""
        return bisect.bisect_right(self.ends, offset)

    @classmethod
    def parse(cls, raw: bytes, path: str = "<didx>") -> "DynamicIndex":
        if len(raw) < INDEX_HEADER_SIZE:
            raise CorruptFileError(
                path, len(raw), f"truncated index: {len(raw)} bytes, header needs {INDEX_HEADER_SIZE}"
            )
        header = COMMON_HEADER.parse(raw[: COMMON_HEADER.sizeof()])
        if header.magic != DYNAMIC_INDEX_MAGIC:
            raise CorruptFileError(path, 0, f"not a dynamic index (magic {header.magic.hex()})")
        entry_area = memoryview(raw)[INDEX_HEADER_SIZE:]
        if len(entry_area) % ENTRY.size:
            raise CorruptFileError(
                path,
                len(raw),
                f"truncated index: entry area of {len(entry_area)} bytes is not a multiple of {ENTRY.size}",
            )
        actual_csum = hashlib.sha256(entry_area).digest()
        if actual_csum != header.index_csum:
            raise CorruptFileError(
                path, 32, f"index checksum mismatch: stored {header.index_csum.hex()}, computed {actual_csum.hex()}"
            )
        ends: list[int] = []
        digests: list[bytes] = []
        previous_end = 0
        for number, (end, digest) in enumerate(ENTRY.iter_unpack(entry_area)):
            if end <= previous_end:
                raise CorruptFileError(
                    path,
                    INDEX_HEADER_SIZE + number * ENTRY.size,
                    f"entry {number}: end {end} not after previous end {previous_end}",
                )
            ends.append(end)
            digests.append(digest)
            previous_end = end
        return cls(header.uuid, header.ctime, header.index_csum, ends, digests, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DynamicIndex":
        return cls.parse(Path(path).read_bytes(), str(path))


class DynamicIndexWriter(IndexWriter):
    """Writes entries to ``<name>.tmp_didx`` and renames it into place on close()."""

    def __init__(self, path: str | os.PathLike, sync: bool = True):
        super().__init__(path, sync)
        self._end = 0

    @property
    def size(self) -> int:
        return self._end

    def add_chunk(self, end: int, digest: bytes) -> None:
        if end <= self._end:
            raise ValueError(f"chunk end {end} not after previous end {self._end}")
        if len(digest) != DIGEST_SIZE:
            raise ValueError(f"digest must be {DIGEST_SIZE} bytes")
        entry = ENTRY.pack(end, digest)
        self._file.write(entry)
        self._csum.update(entry)
        self._end = end
        self.chunk_count += 1

    def close(self, ctime: int | None = None, uuid_bytes: bytes | None = None) -> bytes:
        """Finish the file; returns the index checksum."""
        fields = self._header_fields(DYNAMIC_INDEX_MAGIC, ctime, uuid_bytes)
        self._publish(COMMON_HEADER.build(fields))
        return fields["index_csum"]
