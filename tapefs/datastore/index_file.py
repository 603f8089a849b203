"""What fixed and dynamic index files share: the 4096-byte header prefix, temp names and
publishing a finished index atomically (docs/datastore-format.md)."""

import hashlib
import logging
import os
import time
import uuid
from pathlib import Path

import construct

from tapefs.config.atomic_file import fsync_directory
from tapefs.config.private_files import restrict_file

log = logging.getLogger(__name__)

INDEX_HEADER_SIZE = 4096
DIGEST_SIZE = 32


def index_magic(text: str) -> bytes:
    return hashlib.sha256(text.encode("ascii")).digest()[:8]


#: fields at the same place in both index kinds
COMMON_HEADER = construct.Struct(
    "magic" / construct.Bytes(8),
    "uuid" / construct.Bytes(16),
    "ctime" / construct.Int64sl,
    "index_csum" / construct.Bytes(32),
).compile()


def temp_index_path(path: str | os.PathLike) -> Path:
    """``x.img.fidx`` is written as ``x.img.tmp_fidx``, as PBS does; PBS listings ignore it."""
    path = Path(path)
    return path.with_suffix(".tmp_" + path.suffix.lstrip("."))


def publish(temp_path: Path, final_path: Path, file, sync: bool = True) -> None:
    """Flush ``file`` (open on ``temp_path``), close it and rename it into place."""
    file.flush()
    if sync:
        os.fsync(file.fileno())
    file.close()
    os.rename(temp_path, final_path)
    if sync:
        fsync_directory(final_path.parent)


def discard(temp_path: Path, file) -> None:
    if not file.closed:
        file.close()
    try:
        os.unlink(temp_path)
    except FileNotFoundError:
        pass


class IndexWriter:
    """Writes an index to its temp name (``temp_index_path``) and renames it into place when the
    subclass's ``close()`` calls ``_publish``. Used as a context manager: an exception discards
    the temp file, so no index ever appears that was not completely written."""

    def __init__(self, path: str | os.PathLike, sync: bool = True):
        self.path = Path(path)
        self.temp_path = temp_index_path(self.path)
        self._sync = sync
        self._file = open(self.temp_path, "wb")
        restrict_file(self._file.fileno())
        self._file.write(bytes(INDEX_HEADER_SIZE))
        self._csum = hashlib.sha256()
        self.chunk_count = 0

    def _header_fields(self, magic: bytes, ctime: int | None, uuid_bytes: bytes | None) -> dict:
        return {
            "magic": magic,
            "uuid": uuid_bytes if uuid_bytes is not None else uuid.uuid4().bytes,
            "ctime": int(time.time()) if ctime is None else ctime,
            "index_csum": self._csum.digest(),
        }

    def _publish(self, header: bytes) -> None:
        self._file.seek(0)
        self._file.write(header)
        publish(self.temp_path, self.path, self._file, self._sync)

    def abort(self) -> None:
        discard(self.temp_path, self._file)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        elif not self._file.closed:
            self.abort()
            raise RuntimeError(f"{self.path}: index writer left without close()")
