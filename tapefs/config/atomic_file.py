"""Replace a file so that readers see either the old or the complete new content.

The data goes to a temporary file in the same directory, is fsynced, renamed over the target,
and the directory is fsynced so the rename itself survives a crash.
"""

import logging
import os
import tempfile
from pathlib import Path

from tapefs.config.private_files import PRIVATE_FILE_MODE

log = logging.getLogger(__name__)


def fsync_directory(directory: str | os.PathLike) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes, mode: int = PRIVATE_FILE_MODE, sync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (mode 0640 unless told); the temp file never survives a failure."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fchmod(tmp.fileno(), mode)
            if sync:
                os.fsync(tmp.fileno())
        os.rename(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    if sync:
        fsync_directory(path.parent)
