"""Who may read a datastore: its owner (root, or the user running tapefs) reads and writes, its
group (if it was given one) reads, nobody else does. Directories are 0750, files 0640.

A group is given with ``datastore create --group`` or ``datastore fix-permissions --group``: the
datastore's directories then belong to it and carry the setgid bit. The kernel then gives every
file and directory created below the group, whoever creates it (tapefs, a tape restore, PBS),
with nothing to configure and no moment in which a new chunk has another group.
"""

import grp
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tapefs.config.private_files import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE
from tapefs.datastore.errors import DatastoreError

log = logging.getLogger(__name__)

#: permission bits for "any other user"
OTHERS = stat.S_IRWXO


@dataclass
class PermissionReport:
    directories: int = 0
    files: int = 0
    #: entries whose mode or group was (or, on a check, would be) changed
    changed: int = 0
    #: entries other users could read, list or enter
    open_directories: int = 0
    open_files: int = 0

    @property
    def open_to_others(self) -> bool:
        return bool(self.open_directories or self.open_files)


def group_id(name: str) -> int:
    """The id of group ``name`` (a name or a number)."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pass
    if name.isdigit():
        return int(name)
    raise DatastoreError(f"no group named {name!r}")


def give_to_group(directory: str | os.PathLike, gid: int) -> None:
    """Make ``directory`` the group's, with the setgid bit so that what is created below is too."""
    try:
        os.chown(directory, -1, gid)
    except PermissionError:
        raise DatastoreError(f"{directory}: cannot give it to group {gid}: only root or a member may") from None
    os.chmod(directory, PRIVATE_DIR_MODE | stat.S_ISGID)


def fix_permissions(root: str | os.PathLike, gid: int | None = None, check_only: bool = False) -> PermissionReport:
    """Bring every directory below ``root`` (and ``root``) to 0750 and every file to 0640; with
    ``gid`` also give them that group and directories the setgid bit. Without ``gid`` a
    directory keeps its group and setgid bit. ``check_only`` changes nothing, it counts.

    Owners stay as they are; symbolic links are neither followed nor changed."""
    report = PermissionReport()
    root = Path(root)
    _fix(str(root), os.lstat(root), True, gid, check_only, report)
    pending = [str(root)]
    while pending:
        directory = pending.pop()
        try:
            entries = os.scandir(directory)
        except PermissionError as exc:
            raise DatastoreError(f"{directory}: cannot list it: {exc.strerror}") from None
        with entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while we walk (garbage collection, a finished temp file)
                if stat.S_ISDIR(info.st_mode):
                    pending.append(entry.path)
                    _fix(entry.path, info, True, gid, check_only, report)
                elif stat.S_ISREG(info.st_mode):
                    _fix(entry.path, info, False, gid, check_only, report)
    return report


def _fix(
    path: str, info: os.stat_result, is_dir: bool, gid: int | None, check_only: bool, report: PermissionReport
) -> None:
    mode = stat.S_IMODE(info.st_mode)
    if is_dir:
        report.directories += 1
        report.open_directories += bool(mode & OTHERS)
        wanted = PRIVATE_DIR_MODE | (stat.S_ISGID if gid is not None else mode & stat.S_ISGID)
    else:
        report.files += 1
        report.open_files += bool(mode & OTHERS)
        wanted = PRIVATE_FILE_MODE
    regroup = gid is not None and info.st_gid != gid
    if mode == wanted and not regroup:
        return
    report.changed += 1
    if check_only:
        return
    try:
        if regroup:
            os.chown(path, -1, gid, follow_symlinks=False)
        # after chown, which may clear the setgid bit
        os.chmod(path, wanted)
    except FileNotFoundError:
        report.changed -= 1
    except PermissionError as exc:
        raise DatastoreError(
            f"{path}: cannot change its mode or group: {exc.strerror} (run as root or as its owner)"
        ) from None
