"""The datastore-wide ``.lock`` (docs/datastore-format.md, "Locks"): POSIX fcntl record locks, as PBS uses them.

Writers hold a shared lock while they create indexes; garbage collection needs the exclusive
lock. These are ``lockf`` locks, not ``flock``: PBS would not see an flock.
"""

import contextlib
import fcntl
import logging
import os
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
