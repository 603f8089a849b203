"""What fixed and dynamic index files share: the 4096-byte header prefix, temp names and
publishing a finished index atomically (docs/datastore-format.md)."""

import hashlib
import logging
import os
from pathlib import Path

import construct

from tapefs.config.atomic_file import fsync_directory

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
