"""One tapefs process at a time per drive: a backup must not find its tape unloaded by a mount's
read, nor a mount read the tape a backup just loaded.

A POSIX record lock on `<tape status dir>/drive-locks/<drive>.lock`, taken without waiting: a busy
drive is an error naming the process that holds it. Record locks belong to the process, so the
sessions of one process (a mount's workers, a test) never block each other.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tapefs.jobs.errors import JobError
from tapefs.media.inventory import tape_status_dir

LOCK_DIR_NAME = "drive-locks"


class DriveBusy(JobError):
    pass


class DriveLock:
    def __init__(self, drive_name: str, status_dir: Path | None = None):
        self.drive_name = drive_name
        self.path = (Path(status_dir) if status_dir else tape_status_dir()) / LOCK_DIR_NAME / f"{drive_name}.lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DriveBusy(f"drive {self.drive_name} is in use by another tapefs process (pid {holder}); "
                            "a mount lets its drives go after a few idle seconds") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
