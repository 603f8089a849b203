"""Locks on group and snapshot directories, as PBS takes them: ``flock`` on the directory itself.

A backup holds an exclusive lock on the snapshot directory it writes until its manifest is in
place. The kernel drops the lock when the writer dies, even by ``kill -9``, so an unfinished
snapshot whose lock is free was left by a backup that is gone, and one whose lock is taken is
still being written.

Creating a snapshot and removing an abandoned one also hold the group directory's lock, for a
moment: a remover then never sees a new snapshot between its ``mkdir`` and its writer's lock.
"""

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path

from tapefs.datastore.errors import DatastoreError

log = logging.getLogger(__name__)

#: how long creating or removing a snapshot waits for another process's group lock
GROUP_LOCK_TIMEOUT = 30.0
GROUP_LOCK_POLL = 0.05


class GroupLockedError(DatastoreError):
    pass


def try_lock_directory(path: str | os.PathLike) -> int | None:
    """An open descriptor holding an exclusive lock on the directory, or None if it is taken.
    Closing the descriptor releases the lock."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def directory_locked(path: str | os.PathLike) -> bool:
    """Whether another open file holds the directory's lock (a running writer)."""
    fd = try_lock_directory(path)
    if fd is None:
        return True
    os.close(fd)
    return False


@contextlib.contextmanager
def group_lock(group_dir: Path, timeout: float = GROUP_LOCK_TIMEOUT):
    """Hold the group directory's lock for the block, waiting up to ``timeout`` seconds for it."""
    deadline = time.monotonic() + timeout
    while (fd := try_lock_directory(group_dir)) is None:
        if time.monotonic() > deadline:
            raise GroupLockedError(f"{group_dir}: group is locked by another process for more than {timeout:g} s")
        time.sleep(GROUP_LOCK_POLL)
    try:
        yield
    finally:
        os.close(fd)
