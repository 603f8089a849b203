"""Filling the file catalog: a snapshot's files, and every entry of each of its pxar archives.

`record_snapshot` works on the snapshot's raw files and anything with
`read_chunk(digest, expected_size)`, so the same code records from a datastore (at tape backup
time) and, later, from chunks read off tape. The metadata stream is decoded front to back once;
rows go to SQLite as they are decoded (the decoder, one chunk window and an 8-byte offset per
entry stay in memory, never the list of entries).
"""

from __future__ import annotations

import bisect
import logging
import os
import queue
import sqlite3
import stat
import threading
from array import array
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from tapefs.catalog.file_catalog import (
    ArchiveRecorder,
    ArchiveUnreadable,
    FileCatalog,
    FileCatalogError,
    SnapshotAlreadyRecorded,
    encode_xattrs,
)
from tapefs.datastore.archive_reader import ArchiveReader
from tapefs.datastore.chunk_reader import ChunkReader
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.manifest import MANIFEST_BLOB_NAME, Manifest
from tapefs.datastore.naming import BackupSnapshot
from tapefs.datastore.snapshot_reader import check_index_against_manifest
from tapefs.pxar.decoder import Decoder
from tapefs.pxar.entry import Entry, Kind
from tapefs.pxar.errors import PxarError

log = logging.getLogger(__name__)

V1_INDEX_SUFFIX = ".pxar.didx"
V2_METADATA_SUFFIX = ".mpxar.didx"
V2_PAYLOAD_SUFFIX = ".ppxar.didx"
#: Snapshot files whose mode the caller does not know: a plain readable file.
DEFAULT_FILE_MODE = stat.S_IFREG | 0o644
FCAPS_XATTR = b"security.capability"
#: SQLite integers are 64-bit: mtimes past 2262 (pxar allows ext4's 2446) are kept at the limit.
MTIME_NS_RANGE = (-(1 << 63), (1 << 63) - 1)
#: Entry rows handed from the decoding thread to the inserting one at a time, and batches in flight.
PRODUCER_BATCH = 2000
PRODUCER_BATCHES = 4


class ArchiveEncrypted(ArchiveUnreadable):
    """Encrypted with a client key: expected, not damage."""


@dataclass(frozen=True)
class PxarArchive:
    name: str  # "root.pxar" for both versions
    metadata_index: str  # "root.pxar.didx" (v1) or "root.mpxar.didx" (v2)
    payload_index: str | None  # "root.ppxar.didx" (v2)

    @property
    def version(self) -> int:
        return 1 if self.payload_index is None else 2


def pxar_archives(manifest: Manifest) -> list[PxarArchive]:
    archives = []
    for info in manifest.files:
        if info.filename.endswith(V1_INDEX_SUFFIX):
            label = info.filename[: -len(V1_INDEX_SUFFIX)]
            archives.append(PxarArchive(f"{label}.pxar", info.filename, None))
        elif info.filename.endswith(V2_METADATA_SUFFIX):
            label = info.filename[: -len(V2_METADATA_SUFFIX)]
            archives.append(PxarArchive(f"{label}.pxar", info.filename, f"{label}{V2_PAYLOAD_SUFFIX}"))
    return archives


def record_snapshot(
    catalog: FileCatalog,
    store: str,
    path: str,
    files: dict[str, bytes],
    chunk_reader,
    file_modes: dict[str, tuple[int, int]] | None = None,
) -> bool:
    """Record a snapshot from its raw files (name → bytes, `index.json.blob` among them), reading
    the pxar metadata streams through `chunk_reader.read_chunk(digest, expected_size)`.

    `file_modes` gives (mode, mtime) per file name; others get DEFAULT_FILE_MODE and the backup
    time. Returns False, changing nothing, if (store, path) is recorded already.
    """
    if catalog.has_snapshot(store, path):
        return False
    manifest_bytes = files.get(MANIFEST_BLOB_NAME)
    if manifest_bytes is None:
        raise FileCatalogError(f"snapshot {store}:{path}: no {MANIFEST_BLOB_NAME} among its files")
    manifest = Manifest.decode(manifest_bytes, f"{path}/{MANIFEST_BLOB_NAME}")
    file_modes = file_modes or {}
    try:
        with catalog.recording(store, path) as recorder:
            for name, content in files.items():
                mode, mtime = file_modes.get(name, (DEFAULT_FILE_MODE, manifest.backup_time))
                recorder.add_file(name, mode, mtime, content)
            for archive in pxar_archives(manifest):
                with recorder.archive(archive.name, archive.metadata_index, archive.payload_index) as entries:
                    try:
                        _record_archive(entries, archive, manifest, files, chunk_reader)
                    except ArchiveUnreadable as error:
                        level = logging.INFO if isinstance(error, ArchiveEncrypted) else logging.WARNING
                        log.log(level, "snapshot %s:%s, %s: entries not listed: %s", store, path, archive.name, error)
                        raise
    except SnapshotAlreadyRecorded:
        return False
    return True


def _record_archive(
    entries: ArchiveRecorder, archive: PxarArchive, manifest: Manifest, files: dict[str, bytes], chunk_reader
) -> None:
    info = manifest.lookup(archive.metadata_index)
    if info.crypt_mode == "encrypt":
        fingerprint = manifest.unprotected.get("key-fingerprint", "unknown")
        raise ArchiveEncrypted(f"encrypted with key {fingerprint}")
    if archive.payload_index is not None and manifest.lookup(archive.payload_index) is None:
        raise ArchiveUnreadable(f"damaged: the manifest lists no payload index {archive.payload_index}")
    raw_index = files.get(archive.metadata_index)
    if raw_index is None:
        raise ArchiveUnreadable(f"damaged: index {archive.metadata_index} is missing")
    try:
        index = DynamicIndex.parse(raw_index, archive.metadata_index)
        check_index_against_manifest(index, info)
        # A sequential pass: one chunk being decoded and the next ones read ahead are all it needs.
        with ArchiveReader(index, chunk_reader, cache_chunks=2) as stream:
            decoder = Decoder(stream)
            if decoder.version != archive.version:
                raise ArchiveUnreadable(f"damaged: {archive.metadata_index} holds a pxar v{decoder.version} stream")
            listing = EntryListing(entries.archive_id, entries.first_entry_id)
            # Closed before the stream is: the decoding thread must stop first.
            with closing(produced_ahead(listing.rows(decoder))) as rows:
                entries.insert_entries(rows)
            entries.link_hardlinks(listing.hardlinks)
    except (PxarError, DatastoreError, OSError) as error:
        raise ArchiveUnreadable(f"damaged: {error}") from None


def produced_ahead(items: Iterable, batch_size: int = PRODUCER_BATCH, batches: int = PRODUCER_BATCHES) -> Iterator:
    """`items`, computed on a worker thread a few batches ahead of the consumer.

    SQLite releases the GIL while it inserts, so decoding the next entries overlaps with
    inserting the last ones. An exception of the producer is raised to the consumer; a consumer
    that stops early stops the producer.
    """
    pending: queue.Queue = queue.Queue(batches)
    stopped = threading.Event()

    def hand_over(item) -> bool:
        while not stopped.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        batch = []
        try:
            for item in items:
                batch.append(item)
                if len(batch) == batch_size:
                    if not hand_over(batch):
                        return
                    batch = []
            hand_over(batch)
            hand_over(None)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            hand_over(error)

    producer = threading.Thread(target=produce, name="catalog-decode", daemon=True)
    producer.start()
    try:
        while (batch := pending.get()) is not None:
            if isinstance(batch, BaseException):
                raise batch
            yield from batch
    finally:
        stopped.set()
        producer.join()


class EntryListing:
    """Turns decoded entries (pxar order, root first) into entry rows with ids from `first_id`.

    A directory's row is held back until its last child, when its nlink is known. Hardlinks
    are found by the FILENAME offset of their target (as PBS resolves them): `hardlinks` lists
    (link id, target id) once the rows are consumed.
    """

    def __init__(self, archive_id: int, first_id: int):
        self.archive_id = archive_id
        self.first_id = first_id
        self.hardlinks: list[tuple[int, int]] = []
        # FILENAME offset per entry, index = id - first_id; ascending, as pxar order is.
        self._filename_offsets = array("q")

    def rows(self, entries: Iterable[Entry]) -> Iterator[tuple]:
        open_dirs: list[_OpenDirectory] = []
        entry_id = self.first_id - 1
        for entry in entries:
            entry_id += 1
            self._filename_offsets.append(-1 if entry.filename_offset is None else entry.filename_offset)
            parent_path, _, name = entry.path.rpartition(b"/")
            if open_dirs:
                while open_dirs and open_dirs[-1].path != parent_path:
                    yield open_dirs.pop().row()
                if not open_dirs:
                    raise ArchiveUnreadable(f"damaged: entry {entry.path!r} outside its directory")
                parent = open_dirs[-1]
                parent_id = parent.id
                # Two entries of one name (a hostile archive: a symlink, then a directory through
                # it) would make a lookup through the mount depend on which row it meets first.
                if name in parent.names:
                    raise ArchiveUnreadable(f"damaged: a second entry named {entry.path!r}")
                parent.names.add(name)
            elif entry_id == self.first_id:
                parent = None
                parent_id = None
            else:
                raise ArchiveUnreadable(f"damaged: entry {entry.path!r} after the root directory ended")
            row = self._row(entry, name, entry_id, parent_id)
            if entry.kind is Kind.DIRECTORY:
                if parent is not None:
                    parent.subdirectories += 1
                open_dirs.append(_OpenDirectory(entry.path, entry_id, row))
            else:
                yield row
        while open_dirs:
            yield open_dirs.pop().row()

    def _row(self, entry: Entry, name: bytes, entry_id: int, parent_id: int | None) -> tuple:
        kind = entry.kind
        if kind is Kind.HARDLINK:
            target_id = self._hardlink_target(entry)
            self.hardlinks.append((entry_id, target_id))
            # Attributes are copied from the target once the whole archive is in.
            return (
                entry_id,
                self.archive_id,
                parent_id,
                name,
                kind.value,
                0,
                0,
                0,
                0,
                0,
                None,
                None,
                target_id,
                None,
                1,
                None,
            )
        metadata = entry.metadata
        xattrs = metadata.xattrs
        if metadata.fcaps is not None:
            xattrs = [*xattrs, (FCAPS_XATTR, metadata.fcaps)]
        is_file = kind is Kind.FILE
        return (
            entry_id,
            self.archive_id,
            parent_id,
            name,
            kind.value,
            metadata.mode,
            metadata.uid,
            metadata.gid,
            min(max(metadata.mtime_ns, MTIME_NS_RANGE[0]), MTIME_NS_RANGE[1]),
            entry.size if is_file else 0,
            entry.content_offset if is_file else None,
            entry.symlink_target,
            None,
            os.makedev(*entry.device) if entry.device is not None else None,
            1,
            encode_xattrs(xattrs) if xattrs else None,
        )

    def _hardlink_target(self, link: Entry) -> int:
        target_offset = link.filename_offset - link.hardlink_offset
        index = bisect.bisect_left(self._filename_offsets, target_offset)
        if index == len(self._filename_offsets) or self._filename_offsets[index] != target_offset:
            raise ArchiveUnreadable(f"damaged: hardlink {link.path!r} points at no entry (offset {target_offset})")
        return self.first_id + index


class _OpenDirectory:
    __slots__ = ("path", "id", "subdirectories", "names", "_row")

    def __init__(self, path: bytes, entry_id: int, row: tuple):
        self.path = path
        self.id = entry_id
        self.subdirectories = 0
        #: The names of the children so far.
        self.names: set[bytes] = set()
        self._row = row

    def row(self) -> tuple:
        return (*self._row[:14], 2 + self.subdirectories, self._row[15])


def datastore_snapshot_files(
    datastore: Datastore, snapshot: BackupSnapshot
) -> tuple[dict[str, bytes], dict[str, tuple[int, int]]]:
    """The snapshot's files as they would go to tape: the manifest, the files it lists, and the
    other blobs of the directory (client.log.blob); with (mode, mtime) of each."""
    directory = datastore.snapshot_path(snapshot)
    manifest = datastore.load_manifest(snapshot)
    names = [MANIFEST_BLOB_NAME] + [info.filename for info in manifest.files]
    names += sorted(path.name for path in directory.glob("*.blob") if path.name not in names)
    files, modes = {}, {}
    for name in names:
        path = directory / name
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise DatastoreError(f"{path}: not a regular file")
        files[name] = path.read_bytes()
        modes[name] = (info.st_mode, int(info.st_mtime))
    return files, modes


def record_datastore_snapshot(catalog: FileCatalog, datastore: Datastore, snapshot: BackupSnapshot, path: str) -> bool:
    """Record a snapshot of a datastore under its tape snapshot path `path` (`ns/a/type/id/time`)."""
    if catalog.has_snapshot(datastore.name, path):
        return False
    files, modes = datastore_snapshot_files(datastore, snapshot)
    return record_snapshot(catalog, datastore.name, path, files, ChunkReader(datastore.chunk_store), modes)


def record_backed_up_snapshot(
    status_dir: str | Path, datastore: Datastore, snapshot: BackupSnapshot, path: str
) -> None:
    """For the tape backup: record the snapshot in the file catalog of `status_dir`. The tape copy
    does not depend on it, so a failure is logged as a warning and not raised."""
    try:
        with FileCatalog.open(status_dir) as catalog:
            if record_datastore_snapshot(catalog, datastore, snapshot, path):
                log.info("snapshot %s recorded in the file catalog", path)
    except (FileCatalogError, DatastoreError, OSError, sqlite3.Error) as error:
        log.warning("snapshot %s: not recorded in the file catalog: %s", path, error)
    except Exception:  # noqa: BLE001 - a bug here must not cost the tape backup
        log.warning("snapshot %s: not recorded in the file catalog", path, exc_info=True)
