"""Sync: copy snapshots from one local datastore to another, as PBS's sync jobs do.

Source namespace ``--ns`` and the namespaces below it (up to ``max_depth`` levels) map onto
the target namespace with the same relative path; groups pass PBS's group filters. In each
group, the source's finished snapshots (the last ``transfer_last`` of them, if given) that are
newer than the target group's newest are copied; with ``remove_vanished`` target snapshots and
groups that the source no longer has are removed (protected snapshots stay).

Every file is copied byte for byte, so encrypted snapshots need no key and their signatures
stay valid; only the chunks the target lacks are read and written (after their CRC is
checked), chunks it has are just touched. A snapshot is assembled in a hidden temporary
directory next to its final place and renamed into place once its chunks are durable, its
manifest written last: an interrupted sync leaves nothing half-visible, and the next run
starts that snapshot again, skipping the chunks already copied. The target's ``.lock`` is held
shared throughout, like a backup does.
"""

import errno
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tapefs.config.atomic_file import fsync_directory
from tapefs.datastore.blob import inspect_blob
from tapefs.datastore.datastore import OWNER_FILE_NAME, Datastore
from tapefs.datastore.datastore_lock import datastore_lock
from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.errors import DatastoreError, UnknownNameError
from tapefs.datastore.fixed_index import FixedIndex
from tapefs.datastore.group_filter import GroupFilter, group_passes
from tapefs.datastore.manifest import MANIFEST_BLOB_NAME, Manifest
from tapefs.datastore.naming import (
    MAX_NAMESPACE_DEPTH,
    BackupGroup,
    BackupNamespace,
    BackupSnapshot,
    check_archive_name,
)
from tapefs.datastore.snapshot_admin import (
    PROTECTED_FILE_NAME,
    SnapshotProtectedError,
    describe_group,
    describe_snapshot,
    remove_snapshot,
)
from tapefs.datastore.snapshot_reader import check_index_against_manifest
from tapefs.tasks.worker import check_stop

log = logging.getLogger(__name__)

#: a snapshot being copied: ``.<time>.tmp_sync`` in the target group
SYNC_TEMP_SUFFIX = ".tmp_sync"
#: not listed in the manifest, but part of the snapshot (PBS syncs it too)
CLIENT_LOG_NAME = "client.log.blob"
COPY_WORKERS = 2
#: digests already made present in this run, so that consecutive snapshots of a group do not
#: check their shared chunks again; bounded (cleared when full)
KNOWN_CACHE_SIZE = 1 << 17
#: errors after which going on cannot help
FATAL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


@dataclass
class SyncStats:
    snapshots_copied: int = 0
    snapshots_skipped: int = 0
    snapshots_removed: int = 0
    groups_removed: int = 0
    chunks_copied: int = 0
    chunk_bytes_copied: int = 0
    chunks_present: int = 0
    #: index, blob and manifest bytes
    file_bytes_copied: int = 0
    seconds: float = 0.0
    copied: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: what could not be done, one line each
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {key.replace("_", "-"): value for key, value in self.__dict__.items()}


def _map_namespace(
    namespace: BackupNamespace, source_root: BackupNamespace, target_root: BackupNamespace
) -> BackupNamespace:
    mapped = BackupNamespace(target_root.components + namespace.components[len(source_root.components) :])
    if len(mapped.components) > MAX_NAMESPACE_DEPTH:
        raise DatastoreError(
            f"namespace {namespace} would become {mapped} in the target, deeper than {MAX_NAMESPACE_DEPTH} levels"
        )
    return mapped


class _Syncer:
    def __init__(self, source: Datastore, target: Datastore, stats: SyncStats, pool: ThreadPoolExecutor):
        self.source = source
        self.target = target
        self.stats = stats
        self.pool = pool
        self.known: set[bytes] = set()

    def sync_group(
        self, group: BackupGroup, target_group: BackupGroup, transfer_last: int | None, remove_vanished: bool
    ) -> None:
        group_dir = self.target.group_path(target_group)
        self._remove_temp_dirs(group_dir)
        source_snapshots = [info.snapshot for info in self.source.list_snapshots(group)]
        wanted = source_snapshots[-transfer_last:] if transfer_last else source_snapshots
        existing = {
            info.snapshot.backup_time: info
            for info in self.target.list_snapshots(target_group, include_unfinished=True)
        }
        newest = max((t for t, info in existing.items() if info.finished), default=None)
        for snapshot in wanted:
            check_stop()  # between snapshots: each is copied whole or not at all
            target_snapshot = BackupSnapshot(target_group, snapshot.backup_time)
            if snapshot.backup_time in existing or (newest is not None and snapshot.backup_time < newest):
                self.stats.snapshots_skipped += 1
                if snapshot.backup_time in existing and not existing[snapshot.backup_time].finished:
                    self.stats.errors.append(
                        f"{describe_snapshot(target_snapshot)}: an unfinished snapshot of that "
                        "time is in the target; not copied"
                    )
                continue
            try:
                self.copy_snapshot(snapshot, target_snapshot)
            except (DatastoreError, OSError) as exc:
                if isinstance(exc, OSError) and exc.errno in FATAL_ERRNOS:
                    raise DatastoreError(
                        f"target datastore {self.target.name}: {exc.strerror} while copying "
                        f"{describe_snapshot(snapshot)}; nothing of it was published"
                    ) from None
                self.stats.errors.append(f"{describe_snapshot(snapshot)}: {exc}")
                log.warning("sync: %s: %s", describe_snapshot(snapshot), exc)
        if remove_vanished:
            present = {snapshot.backup_time for snapshot in source_snapshots}
            for info in self.target.list_snapshots(target_group):
                if info.snapshot.backup_time not in present:
                    self.remove(info.snapshot)

    def remove(self, snapshot: BackupSnapshot) -> None:
        try:
            remove_snapshot(self.target, snapshot)
        except SnapshotProtectedError:
            log.info("vanished snapshot %s is protected: kept", describe_snapshot(snapshot))
            return
        except (DatastoreError, OSError) as exc:
            self.stats.errors.append(f"{describe_snapshot(snapshot)}: {exc}")
            return
        self.stats.snapshots_removed += 1
        self.stats.removed.append(describe_snapshot(snapshot))

    def remove_group(self, group: BackupGroup) -> None:
        for info in self.target.list_snapshots(group):
            self.remove(info.snapshot)
        group_dir = self.target.group_path(group)
        if any(
            (info.path / PROTECTED_FILE_NAME).exists()
            for info in self.target.list_snapshots(group, include_unfinished=True)
        ):
            return
        self._remove_temp_dirs(group_dir)
        if not self.target.list_snapshots(group, include_unfinished=True):
            self.target.delete_content(group_dir)
            shutil.rmtree(group_dir)
            self.stats.groups_removed += 1
            self.stats.removed.append(describe_group(group))

    @staticmethod
    def _remove_temp_dirs(group_dir: Path) -> None:
        """What an interrupted sync left: snapshots never published."""
        try:
            names = os.listdir(group_dir)
        except FileNotFoundError:
            return
        for name in names:
            if name.startswith(".") and name.endswith(SYNC_TEMP_SUFFIX):
                shutil.rmtree(group_dir / name, ignore_errors=True)

    def _ensure_group(self, group: BackupGroup, target_group: BackupGroup) -> tuple[Path, bool]:
        """The target group's directory, and whether it was created now (with the source's owner)."""
        group_dir = self.target.group_path(target_group)
        if group_dir.is_dir():
            return group_dir, False
        group_dir.mkdir(parents=True)
        try:
            owner = (self.source.group_path(group) / OWNER_FILE_NAME).read_bytes()
        except FileNotFoundError:
            owner = b"root@pam\n"
        (group_dir / OWNER_FILE_NAME).write_bytes(owner)
        return group_dir, True

    def copy_snapshot(self, snapshot: BackupSnapshot, target_snapshot: BackupSnapshot) -> None:
        source_dir = self.source.snapshot_path(snapshot)
        manifest_raw = (source_dir / MANIFEST_BLOB_NAME).read_bytes()
        manifest = Manifest.decode(manifest_raw, str(source_dir / MANIFEST_BLOB_NAME))
        group_dir, new_group = self._ensure_group(snapshot.group, target_snapshot.group)
        final_dir = group_dir / target_snapshot.time_text
        temp_dir = group_dir / f".{target_snapshot.time_text}{SYNC_TEMP_SUFFIX}"
        shutil.rmtree(temp_dir, ignore_errors=True)
        temp_dir.mkdir()
        try:
            for info in manifest.files:
                name = check_archive_name(info.filename)
                raw = (source_dir / name).read_bytes()
                if name.endswith(".blob"):
                    inspect_blob(raw, str(source_dir / name))
                    if hashlib.sha256(raw).digest() != info.csum or len(raw) != info.size:
                        raise DatastoreError(f"{source_dir / name}: checksum or size differs from the manifest")
                else:
                    index = (DynamicIndex if name.endswith(".didx") else FixedIndex).parse(raw, str(source_dir / name))
                    check_index_against_manifest(index, info)
                    self._copy_chunks(index.digests)
                self._write(temp_dir / name, raw)
            if (source_dir / CLIENT_LOG_NAME).is_file() and not manifest.lookup(CLIENT_LOG_NAME):
                self._write(temp_dir / CLIENT_LOG_NAME, (source_dir / CLIENT_LOG_NAME).read_bytes())
            # chunks and files durable before the manifest makes the snapshot whole
            self.target.chunk_store.sync()
            self._write(temp_dir / MANIFEST_BLOB_NAME, manifest_raw, sync=True)
            fsync_directory(temp_dir)
            self.target.publish_snapshot(target_snapshot, temp_dir)
            os.rename(temp_dir, final_dir)
            fsync_directory(group_dir)
        except BaseException:
            shutil.rmtree(temp_dir if not new_group else group_dir, ignore_errors=True)
            raise
        self.stats.snapshots_copied += 1
        self.stats.copied.append(describe_snapshot(target_snapshot))
        log.info("copied %s", describe_snapshot(target_snapshot))

    def _write(self, path: Path, data: bytes, sync: bool = False) -> None:
        with open(path, "wb") as out:
            out.write(data)
            if sync:
                os.fsync(out.fileno())
        self.stats.file_bytes_copied += len(data)

    def _copy_chunks(self, digests: list[bytes]) -> None:
        missing = []
        for digest in dict.fromkeys(digests):
            if digest in self.known:
                continue
            if len(self.known) >= KNOWN_CACHE_SIZE:
                self.known.clear()
            if self._present(digest):
                self.stats.chunks_present += 1
                self.known.add(digest)
            else:
                missing.append(digest)
        for digest, size in self.pool.map(self._copy_chunk, missing):
            self.stats.chunks_copied += 1
            self.stats.chunk_bytes_copied += size
            self.known.add(digest)

    def _present(self, digest: bytes) -> bool:
        """Whether the target has the chunk; touched if so, so that its GC keeps it."""
        if not self.target.chunk_store.is_known(digest):
            return False
        try:
            self.target.chunk_store.touch(digest)
        except FileNotFoundError:
            return False
        return True

    def _copy_chunk(self, digest: bytes) -> tuple[bytes, int]:
        raw = self.source.chunk_store.read_raw(digest)
        inspect_blob(raw, str(self.source.chunk_store.chunk_path(digest)))
        self.target.chunk_store.insert(digest, raw)
        return digest, len(raw)


def sync_datastores(
    source: Datastore,
    target: Datastore,
    namespace: BackupNamespace = BackupNamespace(),
    target_namespace: BackupNamespace = BackupNamespace(),
    max_depth: int | None = None,
    filters: Sequence[GroupFilter] = (),
    remove_vanished: bool = False,
    transfer_last: int | None = None,
) -> SyncStats:
    """Copy what ``target`` lacks (see the module docstring). A snapshot that cannot be copied
    is reported in ``errors`` and the others go on; a full or read-only target stops the sync."""
    if source.root.resolve() == target.root.resolve():
        raise DatastoreError(f"source and target are the same datastore ({source.root})")
    if transfer_last is not None and transfer_last < 1:
        raise DatastoreError(f"transfer-last must be at least 1, got {transfer_last}")
    if not source.namespace_path(namespace).is_dir():
        raise UnknownNameError(f"namespace {namespace} not found in datastore {source.name}")
    started = time.monotonic()
    stats = SyncStats()
    namespaces = [
        ns
        for ns in source.list_namespaces(namespace)
        if max_depth is None or len(ns.components) - len(namespace.components) <= max_depth
    ]
    mapping = {ns: _map_namespace(ns, namespace, target_namespace) for ns in namespaces}
    with datastore_lock(target.root), ThreadPoolExecutor(COPY_WORKERS, thread_name_prefix="sync") as pool:
        syncer = _Syncer(source, target, stats, pool)
        for ns, target_ns in mapping.items():
            target.namespace_path(target_ns).mkdir(parents=True, exist_ok=True)
            groups = [group for group in source.list_groups(ns) if group_passes(group, filters)]
            for group in groups:
                syncer.sync_group(
                    group, BackupGroup(target_ns, group.backup_type, group.backup_id), transfer_last, remove_vanished
                )
            if remove_vanished:
                present = {(g.backup_type, g.backup_id) for g in groups}
                for target_group in target.list_groups(target_ns):
                    if (target_group.backup_type, target_group.backup_id) not in present and group_passes(
                        target_group, filters
                    ):
                        syncer.remove_group(target_group)
    stats.seconds = time.monotonic() - started
    return stats
