"""Pool and media-set locks: flock'ed files in the tape status directory
(docs/catalog-formats.md).

A pool lock serialises the allocation of media to one pool (``__UNASSIGNED__`` for tapes of no
pool); a media-set lock is held by whoever writes or restores a set, so that an expired set is
not recycled under a running restore. The file name is the whole pool name plus ``.lck``;
PBS replaces the "extension", so pools ``a.b`` and ``a.c`` share a lock.
"""

import fcntl
import logging
import os
import time
from pathlib import Path

from tapefs.config.private_files import make_private_dirs, open_private_file
from tapefs.media.errors import LockTimeoutError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
UNASSIGNED_POOL = "__UNASSIGNED__"
_POLL_INTERVAL = 0.01


class FileLock:
    """An exclusive flock on one file; released by :meth:`release` or at process exit."""

    def __init__(self, path: Path, timeout: float = DEFAULT_TIMEOUT):
        self.path = path
        self._fd: int | None = None
        self._acquire(timeout)

    def _acquire(self, timeout: float) -> None:
        make_private_dirs(self.path.parent)
        fd = open_private_file(self.path, os.O_RDWR)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockTimeoutError(f"unable to get lock {self.path} within {timeout:g} s") from None
                time.sleep(_POLL_INTERVAL)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FileLock":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def lock_pool(status_dir: Path, pool: str, timeout: float = DEFAULT_TIMEOUT) -> FileLock:
    return FileLock(Path(status_dir) / f".pool-{pool}.lck", timeout)


def lock_unassigned_media(status_dir: Path, timeout: float = DEFAULT_TIMEOUT) -> FileLock:
    return lock_pool(status_dir, UNASSIGNED_POOL, timeout)


def lock_media_set(status_dir: Path, media_set_uuid: str, timeout: float = DEFAULT_TIMEOUT) -> FileLock:
    return FileLock(Path(status_dir) / f".media-set-{media_set_uuid}.lck", timeout)
