"""Tape backup of a datastore to a media pool (docs/tape-backup.md, "Backup";
docs/architecture.md, "Tape backup").

Per snapshot: the chunks not yet on the media set go into chunk archives, then the snapshot
archive follows; each archive is registered in the catalog once it is closed on tape. At the end
the catalog archive of the last tape is appended. Early warning continues an archive on the next
tape (the format writers cut cleanly); the physical end aborts only the archive being written,
which is written again on the next tape, so nothing finished is lost. A drive (or its vtape
daemon) that goes away ends the job with a message naming the drive and the tape it was writing.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from tapefs.catalog.file_catalog_builder import record_backed_up_snapshot
from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.datastore.blob import chunk_digest_matches
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.group_filter import GroupFilter
from tapefs.datastore.naming import BackupNamespace, BackupSnapshot
from tapefs.datastore.snapshot_include import parse_includes
from tapefs.errors import InvalidInput
from tapefs.jobs.drive_session import DriveSession
from tapefs.jobs.errors import JobError, TapeWriteFailed
from tapefs.jobs.pool_writer import PoolWriter
from tapefs.jobs.request_rate_alerts import request_rates_checked
from tapefs.jobs.snapshot_files import encode_snapshot_pxar, snapshot_digests, tape_snapshot_path
from tapefs.jobs.snapshot_selection import select_snapshots
from tapefs.jobs.tape_encryption import media_set_encryption_for_pool
from tapefs.media.inventory import Inventory
from tapefs.media.pool import MediaPool
from tapefs.media.tape_config import CHUNK_ORDERS, MediaPoolConfig
from tapefs.notify import events
from tapefs.notify.dispatch import send
from tapefs.progress import ProgressCallback, ProgressMeter
from tapefs.scsi.errors import ConnectionLost, MediumError
from tapefs.tapeformat.block import PAYLOAD_SIZE, blocks_for_stream
from tapefs.tapeformat.block_device import BLOCK_SIZE
from tapefs.tapeformat.chunk_archive import ChunkArchiveWriter
from tapefs.tapeformat.errors import ArchiveAborted
from tapefs.tapeformat.snapshot_archive import write_snapshot_archive
from tapefs.tasks.worker import TaskStopped, stop_requested

log = logging.getLogger(__name__)

READ_AHEAD_THREADS = 2
#: Chunks read ahead of the one being written (at most 4 MiB each).
READ_AHEAD_CHUNKS = 4
#: A snapshot archive may meet the physical end once and be written again; twice is an error.
SNAPSHOT_ATTEMPTS = 2


@dataclass(frozen=True)
class BackupRequest:
    pool: str
    namespace: str | None = None
    max_depth: int | None = None
    group_filters: tuple[str, ...] = ()
    latest_only: bool = False
    eject_media: bool = False
    export_media_set: bool = False
    force_media_set: bool = False
    #: the tape-job.cfg id when a job runs, for its notification
    job_id: str | None = None
    #: ``--include`` expressions: group filters and retention selectors (``keep-yearly=*``)
    includes: tuple[str, ...] = ()
    #: "inode" (PBS's default) or "none": see tape_config.CHUNK_ORDERS.
    chunk_order: str = "inode"


@dataclass
class BackupResult:
    media_set: str
    new_media_set_reason: str | None
    snapshots_written: list[str] = field(default_factory=list)
    snapshots_skipped: list[str] = field(default_factory=list)
    snapshots_failed: dict[str, str] = field(default_factory=dict)
    tapes: list[str] = field(default_factory=list)
    #: What the operator should know about the tapes written (also logged as warnings).
    warnings: list[str] = field(default_factory=list)
    chunks_written: int = 0
    #: Chunk bytes written (blobs as stored in the datastore).
    bytes_written: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "media-set": self.media_set,
            "new-media-set-reason": self.new_media_set_reason,
            "snapshots": self.snapshots_written,
            "skipped": self.snapshots_skipped,
            "failed": self.snapshots_failed,
            "tapes": self.tapes,
            "chunks": self.chunks_written,
            "bytes": self.bytes_written,
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
        }


def backup_datastore(
    datastore: Datastore,
    pool_config: MediaPoolConfig,
    request: BackupRequest,
    session: DriveSession,
    inventory: Inventory,
    catalog: MediaCatalog,
    progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.time,
) -> BackupResult:
    """Write the selected snapshots; a ``tape-backup-ok`` or ``-err`` notification tells how it
    went (and a threshold one if reading an S3 datastore ran its request rate away)."""
    started = time.monotonic()
    partial: list[BackupResult] = []
    with request_rates_checked(datastore):
        try:
            result = _backup_datastore(
                datastore, pool_config, request, session, inventory, catalog, progress, clock, partial
            )
        except Exception as error:
            _notify_end(datastore, pool_config, request, session, partial, time.monotonic() - started, str(error))
            raise
        _notify_end(datastore, pool_config, request, session, partial, result.seconds)
        return result


def _notify_end(
    datastore: Datastore,
    pool_config: MediaPoolConfig,
    request: BackupRequest,
    session: DriveSession,
    partial: list[BackupResult],
    seconds: float,
    error: str | None = None,
) -> None:
    tapes = partial[0].tapes if partial else []
    written = partial[0].snapshots_written if partial else []
    notification = events.tape_backup(
        datastore.name, pool_config.name, session.setup.name, tapes, written, seconds, request.job_id, error
    )
    send(notification)


def _backup_datastore(
    datastore: Datastore,
    pool_config: MediaPoolConfig,
    request: BackupRequest,
    session: DriveSession,
    inventory: Inventory,
    catalog: MediaCatalog,
    progress: ProgressCallback | None,
    clock: Callable[[], float],
    partial: list[BackupResult],
) -> BackupResult:
    started = time.monotonic()
    if request.chunk_order not in CHUNK_ORDERS:
        raise InvalidInput(f"chunk order {request.chunk_order!r}: expected one of {', '.join(CHUNK_ORDERS)}")
    filters = [GroupFilter.parse(text) for text in request.group_filters]
    namespace = BackupNamespace.parse(request.namespace)
    # PBS writes catalog archive v1.1 unless the job is root-only (docs/tape-format.md,
    # "Catalog archives").
    namespaces = not namespace.is_root or request.max_depth != 0
    include = parse_includes(request.includes)
    snapshots = select_snapshots(datastore, namespace, request.max_depth, filters, request.latest_only, include)
    meter = ProgressMeter("backup", progress)
    session.update_online_status(inventory)
    with MediaPool.from_config(pool_config, inventory, changer=session.setup.changer_name) as pool:
        reason = pool.start_write_session(int(clock()), force=request.force_media_set)
        encryption = media_set_encryption_for_pool(pool.name, pool.encrypt_fingerprint, pool.current_set.uuid)
        writer = PoolWriter(
            pool,
            session,
            inventory,
            catalog,
            namespaces,
            clock,
            on_tape=lambda label: meter.emit("tape-loaded", label),
            encryption=encryption,
        )
        result = BackupResult(pool.current_set.uuid, reason)
        partial.append(result)
        job = _BackupJob(datastore, writer, catalog, meter, result, request.chunk_order)
        todo = [
            s for s in snapshots if not catalog.snapshot_in_set(writer.set_uuid, datastore.name, tape_snapshot_path(s))
        ]
        result.snapshots_skipped = [tape_snapshot_path(s) for s in snapshots if s not in todo]
        meter.total = job.bytes_to_write(todo)
        drive_lost = False
        stopped_after: int | None = None
        try:
            for done, snapshot in enumerate(todo):
                # A safe point: the snapshots so far are on tape and registered; the set's catalog
                # is still written below, so the tape stays complete.
                if stop_requested():
                    stopped_after = done
                    break
                job.back_up(snapshot)
            if todo:
                writer.write_catalog()
        except ConnectionLost as lost:
            drive_lost = True
            written = f"{len(result.snapshots_written)} snapshots of this job are on tape and in the catalog; "
            raise session.connection_lost(lost, written + writer.interrupted()) from None
        except MediumError as error:
            label_text = writer.tape_damaged()
            where = f"tape {label_text} is marked damaged; " if label_text else ""
            raise TapeWriteFailed(
                f"{error}; {where}{len(result.snapshots_written)} snapshots of this job are on tape and in the "
                f"catalog of media set {writer.set_uuid}; the next backup starts a new media set on another tape"
            ) from None
        finally:
            job.close()
            result.tapes = list(dict.fromkeys(writer.used_tapes))
            result.seconds = time.monotonic() - started
            result.bytes_written = meter.current
            if not drive_lost:  # nothing reaches that drive any more
                writer.release_drive_key()
        if request.export_media_set:
            missing = session.export(
                [inventory.get(uuid).id.label_text for uuid in pool.current_set.members if uuid is not None], inventory
            )
            for label_text in missing:
                log.warning("tape %s of the media set is not online, not exported", label_text)
        elif request.eject_media:
            session.eject()
    if stopped_after is not None:
        raise TaskStopped(
            f"tape backup stopped by request after {stopped_after} of {len(todo)} snapshots "
            "(those are on tape and in the catalog)"
        )
    if result.snapshots_failed:
        failed = ", ".join(f"{name}: {error}" for name, error in result.snapshots_failed.items())
        raise JobError(f"tape backup finished with some errors: {failed}")
    return result


class _BackupJob:
    def __init__(
        self,
        datastore: Datastore,
        writer: PoolWriter,
        catalog: MediaCatalog,
        meter: ProgressMeter,
        result: BackupResult,
        chunk_order: str,
    ):
        self.datastore = datastore
        self.chunk_order = chunk_order
        self.store = datastore.name
        self.writer = writer
        self.catalog = catalog
        self.meter = meter
        self.result = result
        self.on_set = catalog.chunks_in_set(writer.set_uuid, self.store)
        # Reading and checking chunks (file I/O, CRC, SHA-256: all release the GIL) runs
        # ahead of the tape in worker threads, so the drive is not kept waiting for the disk.
        self._readers = ThreadPoolExecutor(READ_AHEAD_THREADS, thread_name_prefix="chunk-read")
        self._reads: dict[bytes, Future] = {}

    def close(self) -> None:
        self._readers.shutdown(cancel_futures=True)

    def _read_ahead(self, pending: deque) -> None:
        for digest in itertools.islice(pending, READ_AHEAD_CHUNKS):
            if digest not in self._reads:
                self._reads[digest] = self._readers.submit(self._read_chunk, digest)

    def _take_chunk(self, digest: bytes) -> bytes:
        future = self._reads.pop(digest, None) or self._readers.submit(self._read_chunk, digest)
        return future.result()

    def bytes_to_write(self, snapshots: list[BackupSnapshot]) -> int:
        """Chunk bytes not yet on the set, for the progress total (one stat per chunk)."""
        total, seen = 0, set(self.on_set)
        for snapshot in snapshots:
            try:
                digests = snapshot_digests(self.datastore, snapshot, "none")
            except (DatastoreError, OSError):
                continue  # reported when the snapshot is written
            for digest in digests:
                if digest not in seen:
                    seen.add(digest)
                    try:
                        total += os.stat(self.datastore.chunk_store.chunk_path(digest)).st_size
                    except OSError:
                        pass
        return total

    def back_up(self, snapshot: BackupSnapshot) -> None:
        name = tape_snapshot_path(snapshot)
        try:
            digests = snapshot_digests(self.datastore, snapshot, self.chunk_order, skip=self.on_set)
            pxar = encode_snapshot_pxar(self.datastore, snapshot)
        except FileNotFoundError:
            log.info("snapshot %s vanished, skipping it", name)
            return
        except (DatastoreError, OSError) as error:
            log.error("snapshot %s: %s", name, error)
            self.result.snapshots_failed[name] = str(error)
            return
        try:
            self._write_chunks(digests)
        except JobError as error:
            # What is on tape stays registered; the snapshot is not written without its chunks.
            self._reads.clear()
            log.error("snapshot %s: %s", name, error)
            self.result.snapshots_failed[name] = str(error)
            return
        record_backed_up_snapshot(self.catalog.db_path.parent, self.datastore, snapshot, name)
        self._write_snapshot(name, pxar)
        self.result.snapshots_written.append(name)
        self.meter.emit("snapshot-done", name)

    def _read_chunk(self, digest: bytes) -> bytes:
        """The blob as stored, checked: a corrupt chunk must not reach the tape as if it were good."""
        path = self.datastore.chunk_store.chunk_path(digest)
        try:
            raw = self.datastore.chunk_store.read_raw(digest)
            if not chunk_digest_matches(raw, digest, str(path)):
                raise JobError(f"chunk {path}: content does not match its digest")
        except DatastoreError as error:
            raise JobError(f"datastore {self.store}: {error}") from None
        return raw

    def _write_chunks(self, digests: list[bytes]) -> None:
        pending = deque(digests)
        while pending:
            device = self.writer.writable_device()
            archive = ChunkArchiveWriter(device, self.store, self.writer.next_volume_for(self.store))
            try:
                while pending:
                    digest = pending.popleft()
                    self._read_ahead(pending)
                    blob = self._take_chunk(digest)
                    # Counted first: if the physical end aborts the part, the whole part is
                    # taken back below, this chunk included.
                    self.on_set.add(digest)
                    self.result.chunks_written += 1
                    self.meter.add(len(blob))
                    archive.add_chunk(digest, blob)
                    if archive.size_limit_reached:
                        break
                parts = archive.finish()
            except ArchiveAborted as aborted:
                # Physical end: the part's chunks never made it; they go first on the next tape.
                lost = [location.digest for location in aborted.part.chunks]
                pending.extendleft(reversed(lost))
                self.on_set.difference_update(lost)
                self.result.chunks_written -= len(lost)
                self.meter.current -= sum(location.size for location in aborted.part.chunks)
                self.writer.tape_full()
                continue
            except ConnectionLost:
                raise  # nothing more reaches the tape; the catalog keeps what was closed on it
            except BaseException:
                # A datastore error mid-archive: close what is on tape so it stays readable
                # and registered; the job then fails on the snapshot. A part closed for the
                # next tape was registered by next_volume already (which failed if we are here).
                if not archive.part.continued and self.writer.media_uuid is not None:
                    try:
                        parts = archive.finish()
                        self._registered(parts[-1])
                    except ArchiveAborted:
                        self.writer.tape_full()
                raise
            self._registered(parts[-1])

    def _registered(self, part) -> None:
        self.writer.register_chunk_part(part, self.store)

    def _warn_if_bigger_than_a_tape(self, name: str, pxar_size: int) -> None:
        """A snapshot archive that cannot fit on one tape is written in parts, which PBS's restore
        cannot read (docs/tape-format.md, "Differences from PBS"): say so before writing it."""
        self.writer.writable_device()
        capacity = self.writer.tape_capacity()
        # One block more at most for the content header and its JSON, two for the labels.
        on_tape = (blocks_for_stream(pxar_size) + 3) * BLOCK_SIZE
        if capacity is not None and on_tape > capacity:
            message = (
                f"snapshot {name}: its snapshot archive ({pxar_size} bytes) is bigger than a whole tape "
                f"({capacity} bytes): it is written in parts across tapes, which tapefs restores and PBS cannot"
            )
            log.warning("%s", message)
            self.result.warnings.append(message)

    def _write_snapshot(self, name: str, pxar: bytes) -> None:
        view = memoryview(pxar)

        def pieces():
            return (view[start : start + PAYLOAD_SIZE] for start in range(0, len(view), PAYLOAD_SIZE))

        self._warn_if_bigger_than_a_tape(name, len(pxar))
        for _ in range(SNAPSHOT_ATTEMPTS):
            device = self.writer.writable_device()
            # The tape each attempt or part starts on: the archive's part 0 is on the
            # len(parts)-th last of them (one part per tape, the last part on the current one).
            tapes = [self.writer.media_uuid]
            to_next_tape = self.writer.next_volume_for(self.store)

            # Called only within this attempt; the defaults bind this attempt's tape list.
            def next_volume(part, to_next_tape=to_next_tape, tapes=tapes):
                device = to_next_tape(part)
                tapes.append(self.writer.media_uuid)
                return device

            try:
                parts = write_snapshot_archive(device, self.store, name, pieces, next_volume)
            except ArchiveAborted:
                self.writer.tape_full()
                continue
            # A snapshot bigger than a tape is found at its part 0; readers follow the parts.
            self.writer.register_snapshot(parts[0], self.store, name, media_uuid=tapes[-len(parts)])
            return
        raise JobError(f"snapshot {name}: physical end of tape twice in a row")
