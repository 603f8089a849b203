"""Random-access byte sources the readers work on: anything with ``size`` and ``read_at``.

The datastore supplies a didx-backed source with the same two members; these adapters cover
archives held in memory or in a local file.
"""

import logging
import os
from typing import Protocol

log = logging.getLogger(__name__)


class Source(Protocol):
    size: int

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``; fewer only at the end of the source."""


class BytesSource:
    def __init__(self, data: bytes, name: str = "<memory>"):
        self._data = memoryview(data)
        self.size = len(data)
        self.name = name

    def read_at(self, offset: int, length: int) -> bytes:
        return bytes(self._data[offset : offset + length])


class FileSource:
    """A local file read with ``pread``, so one open file can serve several readers."""

    def __init__(self, path: str | os.PathLike):
        self.name = os.fspath(path)
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.size = os.fstat(self._fd).st_size

    def read_at(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        if len(data) < length and offset + len(data) < self.size:
            parts = [data]
            got = len(data)
            while got < length:
                more = os.pread(self._fd, length - got, offset + got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
