"""What `tapefs mount` is asked to do (kept free of pyfuse3, so the command line loads fast)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tapefs.errors import TapefsError

DEFAULT_CACHE_SIZE = 4 * 1024**3
DEFAULT_READ_TIMEOUT = 300.0


class MountError(TapefsError):
    """The mount could not start: bad mount point, no catalog, FUSE unavailable."""


@dataclass(frozen=True)
class MountOptions:
    mountpoint: Path
    cache_dir: Path | None = None
    cache_size: int = DEFAULT_CACHE_SIZE
    allow_other: bool = False
    read_timeout: float = DEFAULT_READ_TIMEOUT
    #: drive names of tape.cfg the mount may use; empty: every configured drive
    drives: tuple[str, ...] = field(default_factory=tuple)
    #: extended attributes (archived ones and tapefs's own); off saves `ls -l` two requests per file
    xattrs: bool = True
    status_dir: Path | None = None
    debug_fuse: bool = False
    #: raw tape files, streams and blobs readable by every user (0444), not the mount's owner alone
    expose_raw: bool = False


def check_mountpoint(mountpoint: Path) -> None:
    """An empty directory that is not mounted yet (checked before anything starts)."""
    if not mountpoint.is_dir():
        raise MountError(f"mount point {mountpoint} is not a directory")
    if os.path.ismount(mountpoint):
        raise MountError(f"{mountpoint} is already a mount point")
    if any(mountpoint.iterdir()):
        raise MountError(f"mount point {mountpoint} is not empty")
