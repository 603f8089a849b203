"""A datastore directory: its chunk store plus namespaces, groups and snapshots
(docs/datastore-format.md, "Directory layout")."""

import contextlib
import logging
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tapefs.config.private_files import (
    PRIVATE_DIR_MODE,
    make_private_dir,
    make_private_dirs,
    open_private_file,
    restrict_file,
)
from tapefs.datastore.chunk_store import ChunkStore
from tapefs.datastore.datastore_lock import LOCK_FILE_NAME
from tapefs.datastore.errors import DatastoreError, NamingError, SnapshotExistsError, UnknownNameError
from tapefs.datastore.manifest import MANIFEST_BLOB_NAME, Manifest
from tapefs.datastore.naming import (
    BACKUP_TIME,
    BACKUP_TYPES,
    SAFE_ID,
    BackupGroup,
    BackupNamespace,
    BackupSnapshot,
    check_archive_name,
    parse_backup_time,
)
from tapefs.datastore.permissions import give_to_group, group_id
from tapefs.datastore.snapshot_lock import directory_locked, group_lock, try_lock_directory

log = logging.getLogger(__name__)

OWNER_FILE_NAME = "owner"
DEFAULT_OWNER = "root@pam"


@dataclass(frozen=True)
class SnapshotInfo:
    snapshot: BackupSnapshot
    path: Path
    #: False for a snapshot without manifest (a backup still running, or one that crashed)
    finished: bool
    files: tuple[str, ...]


@dataclass(frozen=True)
class UnfinishedSnapshot:
    """A snapshot directory without manifest."""

    snapshot: BackupSnapshot
    path: Path
    #: True while a running backup holds the snapshot's lock; False when the backup that made
    #: it is gone (killed, crashed): then it is abandoned and may be removed
    in_progress: bool

    @property
    def state(self) -> str:
        return "in-progress" if self.in_progress else "abandoned"

    def describe(self) -> str:
        """Why it has no manifest and what happens to it, for listings."""
        if self.in_progress:
            return "a backup is still writing it"
        return f"left by an interrupted backup; the next backup of {self.snapshot.group} removes it"


class Datastore:
    #: chunks a backup encodes and stores at once: the two cores' worth
    upload_concurrency = 2

    def __init__(self, root: str | os.PathLike, name: str | None = None):
        self.root = Path(root)
        self.name = name or self.root.name
        self.chunk_store = ChunkStore(self.root)

    @classmethod
    def create(
        cls, root: str | os.PathLike, name: str | None = None, prefix_dirs: bool = True, group: str | None = None
    ) -> "Datastore":
        """Lay out a new, empty datastore; refuses a non-empty directory. Everything in it is
        0750/0640 (see ``permissions``); ``group`` may read it.

        ``prefix_dirs=False``: see ``ChunkStore.create``."""
        root = Path(root)
        gid = group_id(group) if group is not None else None
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise DatastoreError(f"{root}: exists and is not an empty directory")
        if root.is_dir():
            # an empty directory given to us, e.g. a file system's root: ours now, so private
            mode = root.stat().st_mode
            if stat.S_IMODE(mode) & ~stat.S_ISGID != PRIVATE_DIR_MODE:
                os.chmod(root, PRIVATE_DIR_MODE | (mode & stat.S_ISGID))
        else:
            make_private_dirs(root)
        if gid is not None:
            give_to_group(root, gid)
        ChunkStore.create(root, prefix_dirs)
        lock_fd = open_private_file(root / LOCK_FILE_NAME, os.O_WRONLY)
        try:
            restrict_file(lock_fd)
        finally:
            os.close(lock_fd)
        return cls(root, name)

    @classmethod
    def open(cls, root: str | os.PathLike, name: str | None = None) -> "Datastore":
        datastore = cls(root, name)
        if not datastore.chunk_store.exists():
            raise DatastoreError(f"{root}: not a datastore (no .chunks directory)")
        return datastore

    # A datastore with a remote backend (``s3_backend``) mirrors its contents there; a local
    # datastore's directory is all there is.

    def publish_snapshot(self, snapshot: BackupSnapshot, directory: Path | None = None) -> None:
        """Make a finished snapshot (its manifest is written) durable beyond this directory;
        ``directory`` holds its files if they are not in their place yet."""

    def upload_content(self, path: Path) -> None:
        """Mirror a changed file of this directory (owner, notes, protection marker, manifest)."""

    def delete_content(self, path: Path) -> None:
        """Mirror the removal of a file or directory of this directory."""

    def sweep_backend_chunks(self, cutoff: float) -> tuple[int, int, list[str]]:
        """Garbage collection of a remote backend's chunks last used before ``cutoff``:
        (chunks removed, their bytes, objects the backend refused to remove)."""
        return 0, 0, []

    def namespace_path(self, namespace: BackupNamespace) -> Path:
        return self.root / namespace.relative_path()

    def group_path(self, group: BackupGroup) -> Path:
        return self.root / group.relative_path()

    def snapshot_path(self, snapshot: BackupSnapshot) -> Path:
        return self.root / snapshot.relative_path()

    def list_namespaces(
        self, parent: BackupNamespace = BackupNamespace(), recursive: bool = True
    ) -> list[BackupNamespace]:
        """``parent`` and the namespaces below it, in sorted order."""
        found = [parent]
        ns_dir = self.namespace_path(parent) / "ns"
        try:
            names = sorted(os.listdir(ns_dir))
        except (FileNotFoundError, NotADirectoryError):
            return found
        for name in names:
            if not SAFE_ID.fullmatch(name) or not (ns_dir / name).is_dir():
                continue
            child = BackupNamespace(parent.components + (name,))
            found.extend(self.list_namespaces(child, recursive) if recursive else [child])
        return found

    def list_groups(self, namespace: BackupNamespace = BackupNamespace()) -> list[BackupGroup]:
        groups = []
        base = self.namespace_path(namespace)
        for backup_type in BACKUP_TYPES:
            try:
                names = sorted(os.listdir(base / backup_type))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for name in names:
                if SAFE_ID.fullmatch(name) and (base / backup_type / name).is_dir():
                    groups.append(BackupGroup(namespace, backup_type, name))
        return groups

    def list_snapshots(self, group: BackupGroup, include_unfinished: bool = False) -> list[SnapshotInfo]:
        snapshots = []
        group_dir = self.group_path(group)
        try:
            names = sorted(os.listdir(group_dir))
        except FileNotFoundError:
            return []
        for name in names:
            path = group_dir / name
            if not BACKUP_TIME.fullmatch(name) or not path.is_dir():
                continue
            info = self.snapshot_info(BackupSnapshot(group, parse_backup_time(name)))
            if info.finished or include_unfinished:
                snapshots.append(info)
        return snapshots

    def snapshot_info(self, snapshot: BackupSnapshot) -> SnapshotInfo:
        path = self.snapshot_path(snapshot)
        try:
            names = sorted(os.listdir(path))
        except FileNotFoundError:
            raise UnknownNameError(f"snapshot {snapshot} not found in datastore {self.name}") from None
        files = []
        for name in names:
            try:
                check_archive_name(name)
            except NamingError:
                continue
            files.append(name)
        return SnapshotInfo(snapshot, path, MANIFEST_BLOB_NAME in files, tuple(files))

    def load_manifest(self, snapshot: BackupSnapshot) -> Manifest:
        path = self.snapshot_path(snapshot)
        if not (path / MANIFEST_BLOB_NAME).exists():
            if path.is_dir():
                raise DatastoreError(f"snapshot {snapshot} is unfinished (no {MANIFEST_BLOB_NAME})")
            raise UnknownNameError(f"snapshot {snapshot} not found in datastore {self.name}")
        return Manifest.load(path)

    @contextlib.contextmanager
    def writing_snapshot(self, snapshot: BackupSnapshot, owner: str = DEFAULT_OWNER) -> Iterator[Path]:
        """Create the snapshot directory and hold its lock while the block fills it, so that
        nothing takes it for the leftover of a dead backup; the block writes the manifest last."""
        with group_lock(self._group_dir_for_writing(snapshot.group, owner)):
            path = self.create_snapshot_dir(snapshot, owner)
            fd = try_lock_directory(path)
        if fd is None:
            raise DatastoreError(f"snapshot {snapshot}: locked by another process right after it was created")
        try:
            yield path
        finally:
            os.close(fd)

    def unfinished_snapshots(self, group: BackupGroup | None = None) -> list[UnfinishedSnapshot]:
        """Snapshot directories without manifest, of ``group`` or of the whole datastore."""
        if group is None:
            groups = [g for namespace in self.list_namespaces() for g in self.list_groups(namespace)]
        else:
            groups = [group]
        found = []
        for each in groups:
            for info in self.list_snapshots(each, include_unfinished=True):
                if info.finished:
                    continue
                try:
                    in_progress = directory_locked(info.path)
                except FileNotFoundError:  # finished or removed since the listing
                    continue
                found.append(UnfinishedSnapshot(info.snapshot, info.path, in_progress))
        return found

    def remove_abandoned_snapshot(self, snapshot: BackupSnapshot) -> bool:
        """Remove a snapshot directory that has no manifest and no writer any more; False (and
        nothing removed) if it is finished, gone, or a backup still holds it. Its chunks stay:
        they are garbage collection's business."""
        path = self.snapshot_path(snapshot)
        try:
            with group_lock(self.group_path(snapshot.group)):
                fd = try_lock_directory(path)
                if fd is None:
                    return False
                try:
                    if (path / MANIFEST_BLOB_NAME).exists():
                        return False
                    shutil.rmtree(path)
                finally:
                    os.close(fd)
        except FileNotFoundError:
            return False
        log.info("removed unfinished snapshot %s left by an interrupted backup", snapshot)
        return True

    def remove_abandoned_snapshots(self, group: BackupGroup) -> list[BackupSnapshot]:
        """Remove the group's abandoned snapshots (see ``remove_abandoned_snapshot``); the ones removed."""
        return [
            unfinished.snapshot
            for unfinished in self.unfinished_snapshots(group)
            if not unfinished.in_progress and self.remove_abandoned_snapshot(unfinished.snapshot)
        ]

    def _group_dir_for_writing(self, group: BackupGroup, owner: str) -> Path:
        group_dir = make_private_dirs(self.group_path(group))
        owner_file = group_dir / OWNER_FILE_NAME
        if not owner_file.exists():
            fd = open_private_file(owner_file, os.O_WRONLY | os.O_TRUNC)
            with os.fdopen(fd, "w") as file:
                restrict_file(fd)
                file.write(owner + "\n")
        return group_dir

    def create_snapshot_dir(self, snapshot: BackupSnapshot, owner: str = DEFAULT_OWNER) -> Path:
        """Create the group (with its owner file) if needed and a new, empty snapshot dir.
        Writers use ``writing_snapshot``, which also locks it."""
        self._group_dir_for_writing(snapshot.group, owner)
        path = self.snapshot_path(snapshot)
        try:
            make_private_dir(path)
        except FileExistsError:
            raise SnapshotExistsError(f"snapshot {snapshot} already exists in datastore {self.name}") from None
        return path
