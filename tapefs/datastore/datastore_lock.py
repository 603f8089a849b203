"""The datastore-wide ``.lock`` (docs/datastore-format.md, "Locks"): POSIX fcntl record locks, as PBS uses them.

Writers hold a shared lock while they create indexes; PBS's garbage collection needs the
exclusive lock. These are ``lockf`` locks, not ``flock``: PBS would not see an flock.

tapefs's garbage collection runs beside writers, as PBS's does beside the backups of its own
process: it takes the shared lock, and the holders of the lock, found in ``/proc/locks``, tell
it which writers run and since when.
"""

import contextlib
import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from tapefs.config.private_files import open_private_file
from tapefs.datastore.errors import DatastoreError
from tapefs.errors import Busy

log = logging.getLogger(__name__)

LOCK_FILE_NAME = ".lock"


class DatastoreLockedError(Busy, DatastoreError):
    pass


@contextlib.contextmanager
def datastore_lock(root: str | os.PathLike, exclusive: bool = False):
    """Hold the lock for the duration of the block; fails at once if it is taken."""
    path = Path(root) / LOCK_FILE_NAME
    fd = open_private_file(path, os.O_RDWR)
    try:
        try:
            fcntl.lockf(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except OSError:
            kind = "exclusive" if exclusive else "shared"
            raise DatastoreLockedError(f"{path}: cannot take {kind} lock, datastore is busy") from None
        yield
    finally:
        # closing the descriptor releases the record lock
        os.close(fd)


@dataclass(frozen=True)
class LockHolder:
    pid: int
    #: when the process started (epoch seconds): no later than when it took the lock
    started: float


def _boot_time() -> float:
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise DatastoreError("/proc/stat has no btime line")


def _process_start(pid: int, boot_time: float) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after its last ")"
    fields = text[text.rindex(")") + 2 :].split()
    return boot_time + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def lock_holders(root: str | os.PathLike) -> list[LockHolder]:
    """Other processes holding a POSIX lock on the datastore's ``.lock``: backups and syncs
    writing into it (tapefs or PBS), read from ``/proc/locks``.

    Matched by inode number alone, since overlay file systems may show another device there:
    a stranger's lock on an equal inode only makes garbage collection more careful. A holder
    whose start time cannot be read (another PID namespace) is an error, because garbage
    collection could not know which chunks it may still rely on."""
    inode = os.stat(Path(root) / LOCK_FILE_NAME).st_ino
    boot_time = _boot_time()
    holders: dict[int, LockHolder] = {}
    with open("/proc/locks") as locks:
        for line in locks:
            fields = line.split()
            if "->" in fields:  # a waiter, not a holder
                continue
            if len(fields) < 8 or fields[1] != "POSIX" or int(fields[5].rsplit(":", 1)[1]) != inode:
                continue
            pid = int(fields[4])
            if pid == os.getpid() or pid in holders:
                continue
            started = _process_start(pid, boot_time) if pid > 0 else None
            if started is None:
                raise DatastoreLockedError(
                    f"{Path(root) / LOCK_FILE_NAME}: locked by process {pid}, whose start time "
                    "cannot be read (another PID namespace?)"
                )
            holders[pid] = LockHolder(pid, started)
    return sorted(holders.values(), key=lambda holder: holder.started)


@contextlib.contextmanager
def garbage_collection_lock(root: str | os.PathLike):
    """What garbage collection holds: the shared ``lockf`` lock (so PBS's own garbage collection,
    which needs it exclusively, cannot run meanwhile, while backups can) plus an exclusive
    ``flock`` on the same descriptor, which keeps a second tapefs collection out. One
    descriptor for both: closing any descriptor of the file would drop the process's
    ``lockf`` locks."""
    path = Path(root) / LOCK_FILE_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DatastoreLockedError(f"{path}: garbage collection is already running") from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            raise DatastoreLockedError(f"{path}: datastore is locked exclusively (PBS garbage collection?)") from None
        yield
    finally:
        os.close(fd)
