"""One tapefs process at a time per drive: a backup must not find its tape unloaded by a mount's
read, nor a mount read the tape a backup just loaded, nor `tapefs label` rewind under either.

A POSIX record lock on `<tape status dir>/drive-locks/<drive>.lock`, taken without waiting: a busy
drive is an error naming the process that holds it. Record locks belong to the process, so the
holders inside one process (a mount's workers, a job that labels and then writes) share one lock.
POSIX drops a process's lock when it closes *any* descriptor of the file, so the process keeps
one descriptor per lock file and counts its holders; the last release closes it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from tapefs.config.paths import tape_status_dir
from tapefs.config.private_files import make_private_dirs, open_private_file
from tapefs.errors import Busy
from tapefs.media.errors import MediaError

LOCK_DIR_NAME = "drive-locks"

#: Lock file path -> [descriptor, number of DriveLock objects holding it in this process].
_held: dict[Path, list[int]] = {}
_held_guard = threading.Lock()


class DriveBusy(Busy, MediaError):
    pass


class DriveLock:
    def __init__(self, drive_name: str, status_dir: Path | None = None):
        self.drive_name = drive_name
        self.path = (Path(status_dir) if status_dir else tape_status_dir()) / LOCK_DIR_NAME / f"{drive_name}.lock"
        self.held = False

    def __enter__(self) -> DriveLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        if self.held:
            return
        with _held_guard:
            entry = _held.get(self.path)
            if entry is not None:
                entry[1] += 1
            else:
                _held[self.path] = [self._lock_file(), 1]
        self.held = True

    def _lock_file(self) -> int:
        make_private_dirs(self.path.parent)
        fd = open_private_file(self.path, os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DriveBusy(
                f"drive {self.drive_name} is in use by another tapefs process (pid {holder}); "
                "a mount lets its drives go after a few idle seconds"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def release(self) -> None:
        if not self.held:
            return
        with _held_guard:
            entry = _held[self.path]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[self.path]
                os.close(entry[0])
        self.held = False
