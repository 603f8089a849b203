"""Directories and files that other local users must not read: datastores, catalogs, state and
configuration are created 0750 and 0640, whatever the process umask.

Group read is allowed on purpose: a datastore or the configuration can be shared with a
``backup`` group, as on a PBS server. The group comes from the parent directory when it has the
setgid bit, which a directory made here keeps.
"""

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o750
PRIVATE_FILE_MODE = 0o640


def make_private_dir(path: str | os.PathLike, dir_fd: int | None = None, exist_ok: bool = False) -> bool:
    """mkdir with mode 0750 (plus the setgid bit it inherits); False if it already existed."""
    try:
        os.mkdir(path, PRIVATE_DIR_MODE, dir_fd=dir_fd)
    except FileExistsError:
        if exist_ok and stat.S_ISDIR(os.stat(path, dir_fd=dir_fd).st_mode):
            return False
        raise
    mode = os.stat(path, dir_fd=dir_fd).st_mode
    # Only when the umask took bits away: a chmod by a user outside the directory's group
    # would drop the inherited setgid bit.
    if stat.S_IMODE(mode) & ~stat.S_ISGID != PRIVATE_DIR_MODE:
        os.chmod(path, PRIVATE_DIR_MODE | (mode & stat.S_ISGID), dir_fd=dir_fd)
    return True


def make_private_dirs(path: str | os.PathLike) -> Path:
    """``mkdir -p`` in which every directory it creates is 0750; existing ones are left alone."""
    path = Path(path)
    missing = []
    directory = path
    while not directory.is_dir() and directory.parent != directory:
        missing.append(directory)
        directory = directory.parent
    for directory in reversed(missing):
        make_private_dir(directory, exist_ok=True)
    return path


def open_private_file(path: str | os.PathLike, flags: int) -> int:
    """os.open with O_CREAT; a file it creates is 0640 at most (an existing one keeps its mode)."""
    return os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)


def restrict_file(fd: int) -> None:
    """Give a file this process just created mode 0640, whatever the umask."""
    os.fchmod(fd, PRIVATE_FILE_MODE)
