"""Fixed index ``.fidx``: one digest per fixed-size chunk of a block image
(docs/datastore-format.md, "Fixed index").

Header (4096 bytes): magic, uuid, ctime, index_csum = SHA-256 of all digests, size (u64),
chunk_size (u64); then n = ceil(size / chunk_size) 32-byte digests.
"""

import hashlib
import logging
import os
from pathlib import Path

import construct

from tapefs.datastore.errors import CorruptFileError
from tapefs.datastore.index_file import (
    DIGEST_SIZE,
    INDEX_HEADER_SIZE,
    IndexWriter,
    index_magic,
)

log = logging.getLogger(__name__)

FIXED_INDEX_MAGIC = index_magic("Proxmox Backup fixed sized chunk index v1.0")

FIXED_HEADER = construct.Struct(
    "magic" / construct.Bytes(8),
    "uuid" / construct.Bytes(16),
    "ctime" / construct.Int64sl,
    "index_csum" / construct.Bytes(32),
    "size" / construct.Int64ul,
    "chunk_size" / construct.Int64ul,
).compile()


def chunk_count_for(size: int, chunk_size: int) -> int:
    return (size + chunk_size - 1) // chunk_size


class FixedIndex:
    """A loaded ``.fidx``; chunk i covers ``[i * chunk_size, min((i + 1) * chunk_size, size))``."""

    def __init__(
        self,
        uuid_bytes: bytes,
        ctime: int,
        index_csum: bytes,
        size: int,
        chunk_size: int,
        digests: list[bytes],
        path: str = "<fidx>",
    ):
        self.uuid = uuid_bytes
        self.ctime = ctime
        self.index_csum = index_csum
        self.size = size
        self.chunk_size = chunk_size
        self.digests = digests
        self.path = path

    @property
    def chunk_count(self) -> int:
        return len(self.digests)

    def chunk_range(self, i: int) -> tuple[int, int]:
        start = i * self.chunk_size
        return start, min(start + self.chunk_size, self.size)

    def find_chunk(self, offset: int) -> int:
        return offset // self.chunk_size

    @classmethod
    def parse(cls, raw: bytes, path: str = "<fidx>") -> "FixedIndex":
        if len(raw) < INDEX_HEADER_SIZE:
            raise CorruptFileError(
                path, len(raw), f"truncated index: {len(raw)} bytes, header needs {INDEX_HEADER_SIZE}"
            )
        header = FIXED_HEADER.parse(raw[: FIXED_HEADER.sizeof()])
        if header.magic != FIXED_INDEX_MAGIC:
            raise CorruptFileError(path, 0, f"not a fixed index (magic {header.magic.hex()})")
        chunk_size = header.chunk_size
        if chunk_size == 0 or chunk_size & (chunk_size - 1):
            raise CorruptFileError(path, 72, f"chunk size {chunk_size} is not a power of two")
        count = chunk_count_for(header.size, chunk_size)
        expected_length = INDEX_HEADER_SIZE + count * DIGEST_SIZE
        if len(raw) != expected_length:
            offset = min(len(raw), expected_length)
            raise CorruptFileError(
                path, offset, f"index file has {len(raw)} bytes, expected {expected_length} for {count} chunks"
            )
        entry_area = memoryview(raw)[INDEX_HEADER_SIZE:]
        actual_csum = hashlib.sha256(entry_area).digest()
        if actual_csum != header.index_csum:
            raise CorruptFileError(
                path, 32, f"index checksum mismatch: stored {header.index_csum.hex()}, computed {actual_csum.hex()}"
            )
        digests = [bytes(entry_area[i : i + DIGEST_SIZE]) for i in range(0, len(entry_area), DIGEST_SIZE)]
        return cls(header.uuid, header.ctime, header.index_csum, header.size, chunk_size, digests, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FixedIndex":
        return cls.parse(Path(path).read_bytes(), str(path))


class FixedIndexWriter(IndexWriter):
    """Appends digests in order to ``<name>.tmp_fidx``; the total size is known at close()."""

    def __init__(self, path: str | os.PathLike, chunk_size: int, sync: bool = True):
        if chunk_size <= 0 or chunk_size & (chunk_size - 1):
            raise ValueError(f"chunk size {chunk_size} is not a power of two")
        super().__init__(path, sync)
        self.chunk_size = chunk_size

    def add_digest(self, digest: bytes) -> None:
        if len(digest) != DIGEST_SIZE:
            raise ValueError(f"digest must be {DIGEST_SIZE} bytes")
        self._file.write(digest)
        self._csum.update(digest)
        self.chunk_count += 1

    def close(self, size: int, ctime: int | None = None, uuid_bytes: bytes | None = None) -> bytes:
        """Finish the file for an image of ``size`` bytes; returns the index checksum."""
        if chunk_count_for(size, self.chunk_size) != self.chunk_count:
            raise ValueError(f"{self.chunk_count} chunks do not cover {size} bytes in chunks of {self.chunk_size}")
        fields = self._header_fields(FIXED_INDEX_MAGIC, ctime, uuid_bytes)
        self._publish(FIXED_HEADER.build({**fields, "size": size, "chunk_size": self.chunk_size}))
        return fields["index_csum"]
