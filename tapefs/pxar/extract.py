"""Extract a pxar archive into a directory without ever writing outside it.

Every file system call is made relative to an open directory descriptor and never follows a
symlink (``O_NOFOLLOW``, ``follow_symlinks=False``), so names like ``../x``, absolute hardlink
targets or a symlink planted where a directory is expected cannot redirect a write.  Files,
links and device nodes are created under a temporary name and renamed into place once
complete; directory metadata is applied when the directory is left, so that creating its
children does not change its mtime.

Nothing that already exists in the target is replaced or changed unless ``Overwrite`` allows
it: a taken name stops the extraction with an ``ExistingEntryError`` naming it (entries placed
before that stay; they did not exist before), and directories that already existed - the
target included - are merged into but keep their owner, mode and times.  ``check_conflicts``
finds such a name before anything is written, reading only what the target and the archive
have in common.
"""

import ctypes
import enum
import errno
import itertools
import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from .entry import Entry, Kind, Metadata
from .errors import ExistingEntryError, PxarError, UnsafePathError
from .fsmeta import FCAPS_XATTR, acl_to_xattrs, apply_pxar_flags, apply_quota_project_id

log = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_temp_counter = itertools.count()
_RENAME_NOREPLACE = 1  # renameat2 flag from <linux/fs.h>
_renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
if _renameat2 is not None:
    _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]


class Overwrite(enum.Flag):
    """What an extraction may replace or change that already exists in its target.

    The flag is chosen by the kind of the archive entry being placed; ``FILES`` also covers
    device nodes, FIFOs and sockets.  A directory is never replaced by anything, nor anything
    by a directory.  ``DIRECTORY_METADATA`` lets the archive's owner, mode, times and other
    metadata be applied to directories that existed before (the target included).
    """

    NONE = 0
    FILES = enum.auto()
    SYMLINKS = enum.auto()
    HARDLINKS = enum.auto()
    DIRECTORY_METADATA = enum.auto()
    ALL = FILES | SYMLINKS | HARDLINKS | DIRECTORY_METADATA


_OVERWRITE_FOR_KIND = {Kind.SYMLINK: Overwrite.SYMLINKS, Kind.HARDLINK: Overwrite.HARDLINKS}
_TYPE_NAMES = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "directory",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}


@dataclass
class ExtractStats:
    entries: int = 0
    bytes: int = 0
    skipped: int = 0


def _components(path: bytes, what: str) -> list[bytes]:
    parts = path.split(b"/")
    for part in parts:
        if not part or part in (b".", b"..") or b"\0" in part:
            raise UnsafePathError(f"refusing {what} {path!r}: it is not a plain relative path inside the target")
    return parts


def _temp_name() -> bytes:
    return f".tapefs-extract-{os.getpid()}-{next(_temp_counter)}".encode()


def _existing_mode(dir_fd: int, name: bytes) -> int | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None


def _refusal(shown_path: str, existing_mode: int, kind: Kind, overwrite: Overwrite) -> ExistingEntryError | None:
    """Why an entry of ``kind`` may not take the place of what exists there, or None."""
    existing = _TYPE_NAMES.get(stat.S_IFMT(existing_mode), "entry")
    if kind is Kind.DIRECTORY:
        if stat.S_ISDIR(existing_mode):
            return None
        return ExistingEntryError(f"refusing to restore a directory over existing {existing} {shown_path}", shown_path)
    if stat.S_ISDIR(existing_mode):
        return ExistingEntryError(
            f"refusing to replace existing directory {shown_path} with a {kind.value}", shown_path
        )
    needed = _OVERWRITE_FOR_KIND.get(kind, Overwrite.FILES)
    if needed in overwrite:
        return None
    return ExistingEntryError(f"refusing to overwrite existing {existing} {shown_path}", shown_path, needed)


def _rename_noreplace(dir_fd: int, old: bytes, new: bytes) -> None:
    """Rename within ``dir_fd``, failing with ``FileExistsError`` if ``new`` exists."""
    if _renameat2 is not None:
        if _renameat2(dir_fd, old, dir_fd, new, _RENAME_NOREPLACE) == 0:
            return
        error = ctypes.get_errno()
        if error != errno.EINVAL:
            raise OSError(error, os.strerror(error), os.fsdecode(new))
    # no RENAME_NOREPLACE here: only the existence check made before creating the entry guards
    if _existing_mode(dir_fd, new) is not None:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(new))
    os.rename(old, new, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def _open_directory(dir_fd: int, name: bytes) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePathError(
                f"refusing to extract below {name!r}: it exists and is not a directory (possibly a symlink)"
            ) from None
        raise


class _Extractor:
    def __init__(
        self,
        target_fd: int,
        target: bytes,
        reader,
        restore_owners: bool,
        stats: ExtractStats,
        subtree: bytes,
        fsync: bool,
        overwrite: Overwrite,
        target_existed: bool,
    ):
        self.target_fd = target_fd
        self.target = target
        self.overwrite = overwrite
        self.target_existed = target_existed
        # hardlink targets are stored relative to the archive root
        self.link_prefix = subtree + b"/" if subtree else b""
        self.reader = reader
        self.restore_owners = restore_owners
        self.fsync = fsync
        self.stats = stats
        # (path, fd, metadata) of the directories on the way to the current entry
        self.open_dirs: list[tuple[bytes, int, Metadata | None]] = [(b"", target_fd, None)]

    def _warn_skip(self, path: bytes, what: str, error: OSError) -> None:
        log.warning("%r: cannot restore %s (%s)", path, what, error.strerror)
        self.stats.skipped += 1

    def apply_metadata(
        self,
        path: bytes,
        metadata: Metadata,
        *,
        fd: int | None = None,
        dir_fd: int | None = None,
        name: bytes | None = None,
    ) -> None:
        """Owner, mode, xattrs, ACLs, fcaps, project id, mtime and chattr flags, in the order
        that keeps them all.

        chown clears setuid bits and file capabilities, so it goes first; flags such as
        immutable or append-only would block everything else, so they go last.
        """
        is_symlink = stat.S_IFMT(metadata.mode) == stat.S_IFLNK
        where = {"dir_fd": dir_fd, "follow_symlinks": False} if fd is None else {}
        target = fd if fd is not None else name
        if self.restore_owners:
            try:
                os.chown(target, metadata.uid, metadata.gid, **where)
            except OSError as error:
                self._warn_skip(path, "owner", error)
        if not is_symlink:
            try:
                os.chmod(target, stat.S_IMODE(metadata.mode), **where)
            except OSError as error:
                self._warn_skip(path, "mode", error)
            if fd is not None:
                attributes = list(metadata.xattrs)
                attributes += acl_to_xattrs(metadata.acl, metadata.mode).items()
                if metadata.fcaps is not None:
                    attributes.append((FCAPS_XATTR, metadata.fcaps))
                for key, value in attributes:
                    try:
                        os.setxattr(fd, key, value)
                    except OSError as error:
                        self._warn_skip(path, f"xattr {key!r}", error)
                if metadata.quota_project_id is not None:
                    try:
                        apply_quota_project_id(fd, metadata.quota_project_id)
                    except OSError as error:
                        self._warn_skip(path, "quota project id", error)
        mtime = metadata.mtime_ns
        try:
            os.utime(target, ns=(mtime, mtime), **where)
        except OSError as error:
            self._warn_skip(path, "mtime", error)
        if fd is not None and metadata.flags:
            try:
                apply_pxar_flags(fd, metadata.flags)
            except OSError as error:
                self._warn_skip(path, "file attributes (chattr)", error)

    def close_directories(self, keep: int) -> None:
        while len(self.open_dirs) > keep:
            path, fd, metadata = self.open_dirs.pop()
            try:
                if metadata is not None:
                    self.apply_metadata(path, metadata, fd=fd)
            finally:
                if fd != self.target_fd:
                    os.close(fd)

    def parent_fd(self, path: bytes) -> int:
        parent = path.rpartition(b"/")[0]
        depth = next(
            (index for index in range(len(self.open_dirs) - 1, -1, -1) if self.open_dirs[index][0] == parent), None
        )
        if depth is None:
            raise PxarError(f"{path!r} comes after its directory was closed; the archive is not in depth-first order")
        self.close_directories(depth + 1)
        return self.open_dirs[-1][1]

    def shown(self, path: bytes) -> str:
        return os.fsdecode(os.path.join(self.target, path))

    def keeps_metadata_of_existing_directories(self) -> bool:
        return Overwrite.DIRECTORY_METADATA not in self.overwrite

    def place(self, dir_fd: int, name: bytes, path: bytes, kind: Kind, create) -> None:
        """Create an entry under a temporary name with ``create(temp)``, then rename it to
        ``name`` - over an existing entry only if ``overwrite`` allows it for ``kind``."""
        existing_mode = _existing_mode(dir_fd, name)
        if existing_mode is not None:
            refusal = _refusal(self.shown(path), existing_mode, kind, self.overwrite)
            if refusal is not None:
                raise refusal
        temp = _temp_name()
        try:
            create(temp)
            if existing_mode is None:
                try:
                    _rename_noreplace(dir_fd, temp, name)
                except FileExistsError:
                    raise ExistingEntryError(
                        f"refusing to overwrite {self.shown(path)}: it appeared during the restore",
                        self.shown(path),
                        _OVERWRITE_FOR_KIND.get(kind, Overwrite.FILES),
                    ) from None
            else:
                os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                # rename does nothing when both names are already links to the same file
                if kind is Kind.HARDLINK:
                    try:
                        os.unlink(temp, dir_fd=dir_fd)
                    except FileNotFoundError:
                        pass
        except BaseException:
            try:
                os.unlink(temp, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            raise

    def extract(self, path: bytes, entry: Entry) -> None:
        self.stats.entries += 1
        if not path:
            if entry.kind is not Kind.DIRECTORY:
                raise UnsafePathError(f"refusing {entry.kind.value} entry with an empty path")
            keep = self.target_existed and self.keeps_metadata_of_existing_directories()
            self.open_dirs[0] = (b"", self.target_fd, None if keep else entry.metadata)
            return
        _components(path, "archive path")
        dir_fd = self.parent_fd(path)
        name = path.rpartition(b"/")[2]
        kind = entry.kind
        if kind is Kind.DIRECTORY:
            metadata = entry.metadata
            try:
                os.mkdir(name, 0o700, dir_fd=dir_fd)
            except FileExistsError:
                if self.keeps_metadata_of_existing_directories():
                    metadata = None
            self.open_dirs.append((path, _open_directory(dir_fd, name), metadata))
        elif kind is Kind.FILE:
            self.place(dir_fd, name, path, kind, lambda temp: self.write_file(dir_fd, temp, path, entry))
        elif kind is Kind.SYMLINK:

            def create_symlink(temp):
                os.symlink(entry.symlink_target, temp, dir_fd=dir_fd)
                self.apply_metadata(path, entry.metadata, dir_fd=dir_fd, name=temp)

            self.place(dir_fd, name, path, kind, create_symlink)
        elif kind is Kind.HARDLINK:
            self.extract_hardlink(dir_fd, name, path, entry)
        else:
            self.extract_node(dir_fd, name, path, entry)

    def write_file(self, dir_fd: int, temp: bytes, path: bytes, entry: Entry) -> None:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        try:
            for block in self.reader.iter_content(entry):
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view) :]
            self.stats.bytes += entry.size
            self.apply_metadata(path, entry.metadata, fd=fd)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def extract_hardlink(self, dir_fd: int, name: bytes, path: bytes, entry: Entry) -> None:
        target = _components(entry.hardlink_target.lstrip(b"/"), "hardlink target")
        joined = b"/".join(target)
        if not joined.startswith(self.link_prefix):
            self.copy_hardlink_target(dir_fd, name, path, entry)
            return
        target = joined[len(self.link_prefix) :].split(b"/")
        source_fd = self.target_fd
        opened = []
        try:
            for component in target[:-1]:
                source_fd = _open_directory(source_fd, component)
                opened.append(source_fd)
            self.place(
                dir_fd,
                name,
                path,
                Kind.HARDLINK,
                lambda temp: os.link(target[-1], temp, src_dir_fd=source_fd, dst_dir_fd=dir_fd, follow_symlinks=False),
            )
        except FileNotFoundError:
            self.copy_hardlink_target(dir_fd, name, path, entry)
        finally:
            for fd in opened:
                os.close(fd)

    def copy_hardlink_target(self, dir_fd: int, name: bytes, path: bytes, entry: Entry) -> None:
        """A hardlink whose target was not extracted gets a copy of the target file."""
        file = self.reader.resolve_hardlink(entry)
        self.place(dir_fd, name, path, Kind.HARDLINK, lambda temp: self.write_file(dir_fd, temp, path, file))

    def extract_node(self, dir_fd: int, name: bytes, path: bytes, entry: Entry) -> None:
        file_type = {
            Kind.FIFO: stat.S_IFIFO,
            Kind.SOCKET: stat.S_IFSOCK,
            Kind.CHAR_DEVICE: stat.S_IFCHR,
            Kind.BLOCK_DEVICE: stat.S_IFBLK,
        }[entry.kind]
        device = os.makedev(*entry.device) if entry.device else 0

        def create_node(temp):
            os.mknod(temp, file_type | 0o600, device, dir_fd=dir_fd)
            self.apply_metadata(path, entry.metadata, dir_fd=dir_fd, name=temp)

        try:
            self.place(dir_fd, name, path, entry.kind, create_node)
        except PermissionError as error:
            self._warn_skip(path, entry.kind.value, error)


def _relative_entries(entries: Iterable[Entry], subtree: bytes):
    """(path relative to the extraction target, entry) for a subtree's entries."""
    if not subtree:
        for entry in entries:
            yield entry.path, entry
        return
    prefix_length = len(subtree) + 1
    for entry in entries:
        if entry.path == subtree:
            yield (b"" if entry.kind is Kind.DIRECTORY else entry.name), entry
        else:
            yield entry.path[prefix_length:], entry


def extract(
    reader,
    target: str | os.PathLike,
    subtree: bytes | str = b"",
    restore_owners: bool | None = None,
    fsync: bool = False,
    overwrite: Overwrite = Overwrite.NONE,
) -> ExtractStats:
    """Extract an archive, or the part at ``subtree``, into the directory ``target``.

    ``reader`` is a ``Decoder`` or an ``Accessor`` (anything with ``iter_subtree``,
    ``iter_content`` and ``resolve_hardlink``); an accessor reads only the subtree.  A
    directory's contents go straight into ``target``, a single file into ``target/name``.
    Owners are restored when running as root unless ``restore_owners`` says otherwise; device
    nodes and other things the process may not create are skipped with a warning and counted
    in ``ExtractStats.skipped``.  Unsafe names, a corrupt
    archive or a failed write raise a ``PxarError`` (or ``OSError``) and leave no partly
    written file under its final name; with ``fsync`` each file is also on disk before it
    gets that name, so a crash cannot leave one either.  An entry whose name is already
    taken in the target raises ``ExistingEntryError`` unless ``overwrite`` allows replacing
    it; directories that already exist keep their metadata unless it has
    ``Overwrite.DIRECTORY_METADATA``.
    """
    if restore_owners is None:
        restore_owners = os.geteuid() == 0
    subtree = b"/".join(part for part in os.fsencode(subtree).split(b"/") if part)
    target_existed = os.path.isdir(target)
    os.makedirs(target, exist_ok=True)
    # the target itself may be a symlink the operator chose; nothing below it may be
    target_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    stats = ExtractStats()
    extractor = _Extractor(
        target_fd, os.fsencode(target), reader, restore_owners, stats, subtree, fsync, overwrite, target_existed
    )
    try:
        for path, entry in _relative_entries(reader.iter_subtree(subtree), subtree):
            extractor.extract(path, entry)
        extractor.close_directories(0)
    finally:
        for _, fd, _ in extractor.open_dirs:
            if fd != target_fd:
                os.close(fd)
        os.close(target_fd)
    log.info(
        "extracted %d entries (%d bytes of file contents) into %s; %d items skipped",
        stats.entries,
        stats.bytes,
        os.fsdecode(os.fspath(target)),
        stats.skipped,
    )
    return stats


def check_conflicts(accessor, target: str | os.PathLike, overwrite: Overwrite = Overwrite.NONE) -> None:
    """Raise the ``ExistingEntryError`` that extracting the whole archive of ``accessor`` (an
    ``Accessor``) into ``target`` would raise, before anything is written.

    Only names that exist in the target are looked up in the archive, so a missing or empty
    target costs one directory table.
    """
    try:
        target_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    target = os.fsencode(target)
    pending = [(accessor.root(), target_fd)]
    try:
        while pending:
            directory, dir_fd = pending.pop()
            try:
                for name in sorted(os.fsencode(name) for name in os.listdir(dir_fd)):
                    entry = accessor.child(directory, name)
                    if entry is None:
                        continue
                    mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
                    refusal = _refusal(os.fsdecode(os.path.join(target, entry.path)), mode, entry.kind, overwrite)
                    if refusal is not None:
                        raise refusal
                    if entry.kind is Kind.DIRECTORY:
                        pending.append((entry, _open_directory(dir_fd, name)))
            finally:
                os.close(dir_fd)
    finally:
        for _, dir_fd in pending:
            os.close(dir_fd)
