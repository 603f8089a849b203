"""The read planner behind `tapefs mount`: turns chunk reads into tape loads and LOCATEs.

Callers ask for chunks by digest (`fetch`, blocking, from any number of threads). Chunks in the
chunk cache are answered at once; the others become jobs queued per tape, found through the
media catalog (tape, file number, offset) and the inventory (label text, location). One worker
thread per drive, each with its own DriveSession, takes a tape: the one already in its drive if
it has work, else the tape whose oldest urgent request waits longest, never one another worker is
serving or holds. It reads that tape's jobs in (file number, offset) order, the chunks of one
archive as one run after a single LOCATE, checks every chunk (CRC; SHA-256 = digest, the chunks
being unencrypted), fills the cache and answers every caller waiting for it. Readahead jobs ride
along at low priority: they fill the cache and nobody waits for them.

A tape that is not in the library is asked for once ("insert tape X"), shown in `stats`, and
tried again every RETRY_INTERVAL seconds until `read_timeout`; then its requests fail with
MediaUnavailable, while the other drives go on serving other tapes. A drive another tapefs process
holds (a backup) leaves its tapes to the other drives and is tried again every RETRY_INTERVAL;
reads that find no drive within `read_timeout` fail naming the holder.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tapefs.catalog.media_catalog import ChunkPlace, MediaCatalog
from tapefs.datastore.blob import blob_kind, decode_blob
from tapefs.datastore.errors import DatastoreError
from tapefs.jobs.drive_session import DriveSession, DriveSetup
from tapefs.jobs.errors import MediaOffline
from tapefs.jobs.tape_encryption import set_drive_key_for_set
from tapefs.keys.errors import KeyNotFound
from tapefs.media.drive_lock import DriveBusy
from tapefs.media.inventory import Inventory
from tapefs.mount.chunk_cache import ChunkCache
from tapefs.mount.errors import ChunkDamaged, ChunkNotOnTape, KeyUnavailable, MediaUnavailable, MountReadError
from tapefs.scsi.errors import ScsiError
from tapefs.tapeformat.block_device import BlockDevice
from tapefs.tapeformat.chunk_archive import ENTRY_HEADER_SIZE, ChunkArchiveReader, ChunkRunReader
from tapefs.tapeformat.errors import TapeFormatError
from tapefs.tapeformat.labels import TapeLabels, read_labels
from tapefs.tapeformat.magic import CHUNK_ARCHIVE_1_1
from tapefs.tapeformat.tape_file import TapeFile, open_tape_file

log = logging.getLogger(__name__)

#: Seconds between two attempts to load a tape that is not in the library.
RETRY_INTERVAL = 1.5
#: Chunks read from tape and waiting for their check: bounds memory while the drive reads on.
CHECKS_IN_FLIGHT = 4
#: A drive without reads for this long is released for other tapefs processes.
DRIVE_IDLE_RELEASE = 10.0
#: Workers still busy this long after `close` are left behind (daemon threads).
JOIN_TIMEOUT = 10.0

#: `events(kind, details)`: "insert-tape" {tape, location}, "tape-loaded" {tape, drive},
#: "media-unavailable" {tape, location}, "chunk-damaged" {tape, file, offset, digest, error},
#: "drive-busy" {drive, reason}.
EventCallback = Callable[[str, dict], None]

_Key = tuple[str, str, bytes]  # (media set, store, digest)


@dataclass(eq=False)
class _ChunkJob:
    key: _Key
    place: ChunkPlace
    label_text: str
    #: Someone waits for it (False: readahead only).
    urgent: bool
    queued: float = field(default_factory=time.monotonic)
    #: Read from tape and passed to a check, or answered: a drive failure no longer concerns it.
    handed_over: bool = False
    future: Future = field(default_factory=Future)

    @property
    def digest(self) -> bytes:
        return self.key[2]

    @property
    def where(self) -> str:
        offset = "unknown" if self.place.offset is None else self.place.offset
        return f"tape {self.label_text} file {self.place.file_number} offset {offset}"


@dataclass(eq=False)
class _TapeTask:
    """Work on one tape other than reading chunks (the mount's raw tape files), queued with the
    tape's chunk jobs so the same worker and drive serve it."""

    key: tuple[str, int]
    label_text: str
    what: str
    work: Callable[[BlockDevice], bytes]
    urgent: bool = True
    queued: float = field(default_factory=time.monotonic)
    handed_over: bool = False
    future: Future = field(default_factory=Future)

    @property
    def where(self) -> str:
        return f"tape {self.label_text} {self.what}"


@dataclass(eq=False)
class _Worker:
    setup: DriveSetup
    session: DriveSession
    thread: threading.Thread | None = None
    #: Media UUID of the tape in the drive, labels checked and key given; None when unknown.
    media: str | None = None
    #: Media UUID of the tape this worker has taken, loaded or not.
    serving: str | None = None
    state: str = "idle"
    loads: int = 0
    #: Reads the loaded tape's chunks, keeping the stream open between batches.
    chunks: ChunkRunReader | None = None
    #: (label text, location, wall-clock start) while asking for a tape that is not there.
    waiting: tuple[str, str, float] | None = None
    #: Another tapefs process holds the drive: why, and until when this worker leaves tapes alone.
    busy: str | None = None
    busy_until: float = 0.0
    #: The tapes loaded last, newest at the end.
    tapes_loaded: deque[str] = field(default_factory=lambda: deque(maxlen=16))


class ReadPlanner:
    """Fetches chunks of media sets from tape through `drives`, into and out of `cache`.

    `status_dir` is the tape status directory holding the inventory and the media catalog
    (default: the configured one); both are only read."""

    def __init__(
        self,
        drives: list[DriveSetup],
        cache: ChunkCache,
        read_timeout: float = 300,
        status_dir: str | Path | None = None,
        events: EventCallback | None = None,
    ):
        if not drives:
            raise ValueError("the read planner needs at least one drive")
        self.cache = cache
        self.read_timeout = read_timeout
        self.status_dir = status_dir
        self._events = events
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._started = False
        self._workers = [_Worker(setup, DriveSession(setup)) for setup in drives]
        #: media UUID → jobs not yet taken by a worker.
        self._queues: dict[str, dict[_Key, _ChunkJob]] = {}
        #: every job not answered yet, queued or being read.
        self._jobs: dict[_Key, _ChunkJob] = {}
        self._labels: dict[str, str] = {}
        #: label → what reads asked of a tape outside the library: it must be brought back (from
        #: its vault) before they can be answered. Kept after the reads failed, until it is loaded.
        self._retrievals: dict[str, dict] = {}
        # Two workers moving tapes through one changer at once could both pick the same slot state.
        self._changer_lock = threading.Lock()
        self._checks = ThreadPoolExecutor(CHECKS_IN_FLIGHT, thread_name_prefix="chunk-check")
        self._check_slots = threading.Semaphore(CHECKS_IN_FLIGHT)
        self._counters = {
            "loads": 0,
            "locates": 0,
            "cache_hits": 0,
            "cache_misses": 0,
            "chunks_from_tape": 0,
            "bytes_from_tape": 0,
            "bytes_delivered": 0,
            "damaged": 0,
            "unavailable": 0,
        }
        self._reading_seconds = 0.0
        self._task_numbers = itertools.count()
        self._catalog: MediaCatalog | None = None
        self._inventory: Inventory | None = None

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            raise RuntimeError("read planner already started")
        self._started = True
        self._catalog = MediaCatalog.open(self.status_dir)
        self._inventory = Inventory.open(self.status_dir)
        for worker in self._workers:
            worker.thread = threading.Thread(
                target=self._run, args=(worker,), daemon=True, name=f"tape-read-{worker.setup.name}"
            )
            worker.thread.start()

    def close(self) -> None:
        """Fail every request not answered yet and stop the workers (waits for one that is in the
        middle of a tape operation to finish it)."""
        with self._cond:
            if self._closed.is_set():
                return
            self._closed.set()
            pending = list(self._jobs.values())
            self._jobs.clear()
            self._queues.clear()
            self._cond.notify_all()
        for job in pending:
            _settle(job.future, error=MountReadError(f"{job.where}: the tape reader was closed"))
        for worker in self._workers:
            if worker.thread is not None:
                worker.thread.join(JOIN_TIMEOUT)
                if worker.thread.is_alive():
                    log.warning("drive %s still busy after close", worker.setup.name)
        self._checks.shutdown(wait=True, cancel_futures=True)
        for database in (self._catalog, self._inventory):
            if database is not None:
                database.close()

    def __enter__(self) -> ReadPlanner:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- requests ----------------------------------------------------------------------------

    def fetch(
        self, set_uuid: str, store: str, digests: list[bytes], readahead: Iterable[bytes] = ()
    ) -> dict[bytes, bytes]:
        """Decoded data of `digests` (blocking); `readahead` digests are queued, not waited for.
        Raises a MountReadError for the first digest that cannot be read."""
        if not self._started or self._closed.is_set():
            raise MountReadError("the tape reader is not running")
        results: dict[bytes, bytes] = {}
        wanted = list(dict.fromkeys(digests))
        jobs: dict[bytes, _ChunkJob] = {}
        while wanted:
            missing = []
            for digest in wanted:
                data = self.cache.get(digest)
                if data is None:
                    missing.append(digest)
                else:
                    results[digest] = data
            self._count(cache_hits=len(wanted) - len(missing), cache_misses=len(missing))
            attached, wanted = self._submit(set_uuid, store, missing, urgent=True)
            jobs.update(attached)
        ahead = [d for d in dict.fromkeys(readahead) if d not in results and d not in jobs]
        if ahead:
            self._submit(set_uuid, store, ahead, urgent=False)
        for digest, job in jobs.items():
            results[digest] = job.future.result()
        self._count(bytes_delivered=sum(len(data) for data in results.values()))
        return results

    def _submit(
        self, set_uuid: str, store: str, digests: list[bytes], urgent: bool
    ) -> tuple[dict[bytes, _ChunkJob], list[bytes]]:
        """Jobs for `digests`, joining those already queued; also the digests that reached the
        cache meanwhile (read them from there). Readahead digests not on tape are left out."""
        attached: dict[bytes, _ChunkJob] = {}
        need = []
        with self._cond:
            for digest in digests:
                job = self._jobs.get((set_uuid, store, digest))
                if job is None:
                    need.append(digest)
                    continue
                job.urgent = job.urgent or urgent
                attached[digest] = job
        if not urgent:
            need = [digest for digest in need if digest not in self.cache]
        if not need:
            return attached, []
        places = self._catalog.chunk_places(set_uuid, store, need)
        unknown = [digest for digest in need if digest not in places]
        if unknown and urgent:
            raise ChunkNotOnTape(
                f"chunk {unknown[0].hex()} of store {store} is not on media set {set_uuid} according to the catalog"
            )
        labels = {media: self._label_text(media) for media in {place.media_uuid for place in places.values()}}
        in_cache = []
        with self._cond:
            if self._closed.is_set():  # close() answered every job there was: none may come after
                raise MountReadError("the tape reader is not running")
            for digest, place in places.items():
                key = (set_uuid, store, digest)
                job = self._jobs.get(key)
                if job is None and digest in self.cache:
                    # A job finished between our cache look-up and now: it is in the cache.
                    in_cache.append(digest)
                    continue
                if job is None:
                    job = _ChunkJob(key, place, labels[place.media_uuid], urgent)
                    self._jobs[key] = job
                    self._queues.setdefault(place.media_uuid, {})[key] = job
                job.urgent = job.urgent or urgent
                attached[digest] = job
            self._cond.notify_all()
        return attached, (in_cache if urgent else [])

    def run_on_tape(self, media_uuid: str, what: str, work: Callable[[BlockDevice], bytes]) -> bytes:
        """`work(device)` with tape `media_uuid` loaded (blocking), e.g. reading one of its files
        raw; `what` names it in errors. Fails like a chunk read (offline tape, missing key)."""
        if not self._started or self._closed.is_set():
            raise MountReadError("the tape reader is not running")
        task = _TapeTask(("task", next(self._task_numbers)), self._label_text(media_uuid), what, work)
        with self._cond:
            if self._closed.is_set():
                raise MountReadError("the tape reader is not running")
            self._jobs[task.key] = task
            self._queues.setdefault(media_uuid, {})[task.key] = task
            self._cond.notify_all()
        return task.future.result()

    def _run_task(self, chunks: ChunkRunReader, task: _TapeTask) -> None:
        chunks.forget()  # the task moves the tape: the next chunk run locates afresh
        try:
            result = task.work(chunks.device)
        except (TapeFormatError, ScsiError, OSError) as error:
            self._finish(task, error=MountReadError(f"{task.where}: {error}"))
            return
        task.handed_over = True
        with self._cond:
            self._jobs.pop(task.key, None)
        _settle(task.future, result)

    def chunk_reader(self, set_uuid: str, store: str) -> TapeChunkReader:
        return TapeChunkReader(self, set_uuid, store)

    # -- status ------------------------------------------------------------------------------

    def stats(self) -> dict:
        with self._cond:
            counters = dict(self._counters)
            queued = sum(len(queue) for queue in self._queues.values())
            urgent = sum(1 for job in self._jobs.values() if job.urgent)
            drives = [
                {
                    "drive": w.setup.name,
                    "tape": self._labels.get(w.media) if w.media else None,
                    "serving": self._labels.get(w.serving) if w.serving else None,
                    "state": w.state,
                    "loads": w.loads,
                    "tapes_loaded": list(w.tapes_loaded),
                }
                for w in self._workers
            ]
            waiting = [
                {"tape": w.waiting[0], "location": w.waiting[1], "since": w.waiting[2], "drive": w.setup.name}
                for w in self._workers
                if w.waiting
            ]
            seconds = self._reading_seconds
            retrievals = [dict(request) for _, request in sorted(self._retrievals.items())]
        rate = counters["bytes_from_tape"] / seconds / 1e6 if seconds > 0 else 0.0
        return {
            **counters,
            "queued": queued,
            "pending": len(self._jobs),
            "pending_urgent": urgent,
            "reading_seconds": round(seconds, 3),
            "mb_per_s": round(rate, 1),
            "drives": drives,
            "waiting_for": waiting,
            "retrieval_requests": retrievals,
            "cache": self.cache.stats(),
        }

    def _count(self, **amounts: int) -> None:
        with self._cond:
            for name, amount in amounts.items():
                self._counters[name] += amount

    def _emit(self, kind: str, **details) -> None:
        if self._events is not None:
            try:
                self._events(kind, details)
            except Exception:
                log.exception("event callback failed for %s", kind)

    def _label_text(self, media_uuid: str) -> str:
        label = self._labels.get(media_uuid)
        if label is None:
            entry = self._inventory.lookup(media_uuid)
            label = entry.id.label_text if entry is not None else media_uuid
            self._labels[media_uuid] = label
        return label

    def _location(self, media_uuid: str) -> str:
        entry = self._inventory.lookup(media_uuid)
        return str(entry.location) if entry is not None and entry.location is not None else "offline"

    def _request_retrieval(self, media_uuid: str, label: str, location: str) -> None:
        """Note that reads need a tape that is outside the library, with the vault note the
        operator recorded for it (if it is still in that vault)."""
        vault, note, _ = self._inventory.vault_records().get(media_uuid, (None, None, 0))
        with self._cond:
            request = self._retrievals.setdefault(label, {"tape": label, "since": time.time(), "reads_failed": 0})
            request["location"] = location
            request["vault_note"] = note if vault is not None and location == f"vault-{vault}" else None

    def _retrieval_failed(self, label: str, reads: int) -> None:
        with self._cond:
            if label in self._retrievals:
                self._retrievals[label]["reads_failed"] += reads

    # -- workers -----------------------------------------------------------------------------

    def _next_tape(self, worker: _Worker) -> str | None:
        """The tape `worker` serves next (called with the lock held)."""
        if time.monotonic() < worker.busy_until:
            return None
        others = {w.serving for w in self._workers if w is not worker} | {
            w.media for w in self._workers if w is not worker
        }
        # Tapes someone waits for first; among them the one in the drive, then the longest waiting.
        candidates = [
            (
                not any(job.urgent for job in queue.values()),
                media != worker.media,
                min(job.queued for job in queue.values()),
                media,
            )
            for media, queue in self._queues.items()
            if queue and media not in others
        ]
        return min(candidates)[3] if candidates else None

    def _urgent_elsewhere(self) -> bool:
        """Someone waits for a tape no worker has taken (called with the lock held)."""
        taken = {w.serving for w in self._workers}
        return any(job.urgent for media, queue in self._queues.items() if media not in taken for job in queue.values())

    def _run(self, worker: _Worker) -> None:
        try:
            while not self._closed.is_set():
                with self._cond:
                    media = self._next_tape(worker)
                    idle_too_long = False
                    while media is None and not self._closed.is_set() and not idle_too_long:
                        busy_for = worker.busy_until - time.monotonic()
                        if busy_for > 0:
                            self._cond.wait(busy_for)
                        else:
                            worker.state = "idle"
                            idle_too_long = not self._cond.wait(DRIVE_IDLE_RELEASE) and worker.session.holds_drive
                        media = self._next_tape(worker)
                    if media is None and self._closed.is_set():
                        return
                    if media is not None:
                        worker.serving = media
                if media is None:
                    # Other tapefs processes (a backup) may use the drive now; whatever they leave
                    # in it, the labels are checked again before the next read.
                    worker.session.close()
                    worker.session.label_text = None
                    worker.media = worker.chunks = None
                    log.info("drive %s idle: released", worker.setup.name)
                    continue
                attempt = time.monotonic()
                try:
                    self._serve(worker, media)
                except Exception as error:  # a drive or changer failure: fail this tape's reads, go on
                    label = self._labels.get(media, media)
                    log.exception("drive %s, tape %s", worker.setup.name, label)
                    reason = str(error)
                    # Reads queued since get an attempt of their own.
                    self._fail_tape(media, lambda job, reason=reason: MountReadError(f"{job.where}: {reason}"), attempt)
                    worker.media = worker.chunks = None
                    worker.session.close()
                    worker.session.label_text = None
                finally:
                    with self._cond:
                        worker.serving = None
                        worker.waiting = None
                        self._cond.notify_all()
        finally:
            worker.state = "stopped"
            worker.session.close()

    def _serve(self, worker: _Worker, media: str) -> None:
        chunks = self._load(worker, media)
        if chunks is None:
            return
        while not self._closed.is_set():
            with self._cond:
                queue = self._queues.get(media)
                if not queue or (not any(job.urgent for job in queue.values()) and self._urgent_elsewhere()):
                    return  # only readahead left here: a tape someone waits for goes first
                del self._queues[media]
                worker.state = "reading"
            started = time.monotonic()
            batch = [job for job in queue.values() if not isinstance(job, _TapeTask)]
            for task in (job for job in queue.values() if isinstance(job, _TapeTask)):
                self._run_task(chunks, task)
            try:
                self._read_jobs(chunks, batch)
            except Exception as error:
                reason = str(error)
                for job in batch:
                    if not job.handed_over:
                        self._finish(job, error=MountReadError(f"{job.where}: {reason}"))
                raise
            finally:
                with self._cond:
                    self._reading_seconds += time.monotonic() - started

    def _fail_tape(
        self, media: str, error_for: Callable[[_ChunkJob], MountReadError], queued_before: float | None = None
    ) -> None:
        with self._cond:
            queue = self._queues.get(media, {})
            failed = [job for job in queue.values() if queued_before is None or job.queued < queued_before]
            for job in failed:
                del queue[job.key]
            if not queue:
                self._queues.pop(media, None)
        for job in failed:
            self._finish(job, error=error_for(job))

    def _load(self, worker: _Worker, media: str) -> ChunkRunReader | None:
        """The tape in the worker's drive with its labels checked; None when its jobs were
        failed instead (not in the library before the timeout, wrong tape, no key)."""
        if worker.media == media and worker.chunks is not None:
            return worker.chunks
        worker.media = worker.chunks = None  # whatever the drive holds is about to change
        label = self._labels.get(media, media)
        asked = False
        location = None
        while True:
            if self._closed.is_set():
                return None
            worker.state = f"loading {label}"
            try:
                with self._changer_lock:
                    device = worker.session.load(label)
                labels = read_labels(device)
                break
            except MediaOffline:
                worker.session.label_text = None  # the session unloaded its drive before finding out
            except DriveBusy as error:
                self._drive_busy(worker, media, error)
                return None
            now = time.monotonic()
            if not asked:
                asked = True
                location = self._location(media)
                worker.waiting = (label, location, time.time())
                worker.state = f"waiting for {label}"
                self._request_retrieval(media, label, location)
                log.warning(
                    "insert tape %s (location %s) into the library: reads wait for it up to %gs",
                    label,
                    location,
                    self.read_timeout,
                )
                self._emit("insert-tape", tape=label, location=location)
            # Every read waits up to the timeout from when it came, then fails on its own.
            expired_before = now - self.read_timeout
            with self._cond:
                queued = [job.queued for job in self._queues.get(media, {}).values()]
            if any(when < expired_before for when in queued):
                self._retrieval_failed(label, sum(when < expired_before for when in queued))
                log.error(
                    "tape %s (location %s) not inserted within %gs: reads fail", label, location, self.read_timeout
                )
                self._emit("media-unavailable", tape=label, location=location)
                self._fail_tape(
                    media,
                    lambda job, label=label, location=location: MediaUnavailable(
                        f"{job.where}: tape {label} is not in the library (location {location}); "
                        f"not inserted within {self.read_timeout:g}s"
                    ),
                    expired_before,
                )
                queued = [when for when in queued if when >= expired_before]
            if not queued:
                return None
            self._closed.wait(min(RETRY_INTERVAL, max(0.01, min(queued) + self.read_timeout - now)))
        worker.waiting = None
        with self._cond:
            self._retrievals.pop(label, None)
        if worker.busy is not None:
            log.info("drive %s is free again", worker.setup.name)
            worker.busy = None
        worker.tapes_loaded.append(label)
        worker.loads += 1
        self._count(loads=1)
        self._emit("tape-loaded", tape=label, drive=worker.setup.name)
        log.info("drive %s: tape %s loaded for reading", worker.setup.name, label)
        found = str(labels.media.uuid) if labels.media is not None else "an unlabelled tape"
        if found != media:
            worker.session.label_text = None
            self._fail_tape(
                media,
                lambda job: MountReadError(
                    f"{job.where}: the tape in the slot of {label} is {found}, the catalog names media {media}"
                ),
            )
            return None
        error = self._give_drive_key(device, labels)
        if error is not None:
            self._fail_tape(media, lambda job: KeyUnavailable(f"{job.where}: {error}"))
            return None
        worker.media = media
        worker.chunks = ChunkRunReader(device)
        return worker.chunks

    def _drive_busy(self, worker: _Worker, media: str, error: DriveBusy) -> None:
        """Another tapefs process (a backup) holds the drive: leave the tape to another drive,
        try again in a while; reads that have waited `read_timeout` for a drive fail."""
        reason = str(error)
        if worker.busy != reason:
            log.warning("%s: reads wait for it up to %gs", reason, self.read_timeout)
            self._emit("drive-busy", drive=worker.setup.name, reason=reason)
        worker.busy = reason
        worker.state = f"busy: {reason}"
        now = time.monotonic()
        worker.busy_until = now + RETRY_INTERVAL
        expired_before = now - self.read_timeout
        self._fail_tape(
            media,
            lambda job: MountReadError(f"{job.where}: no drive free within {self.read_timeout:g}s ({reason})"),
            expired_before,
        )

    @staticmethod
    def _give_drive_key(device, labels: TapeLabels) -> str | None:
        """The drive gets the set's key when its label names one, no key otherwise; an error text
        when the key is not in the key store."""
        try:
            set_drive_key_for_set(device.drive, labels)
        except KeyNotFound as error:
            log.error("%s", error)
            return str(error)
        return None

    # -- reading -----------------------------------------------------------------------------

    def _read_jobs(self, chunks: ChunkRunReader, jobs: list[_ChunkJob]) -> None:
        """One tape's jobs in tape order; the chunks of one archive as one run."""
        by_file: dict[int, list[_ChunkJob]] = {}
        for job in jobs:
            by_file.setdefault(job.place.file_number, []).append(job)
        for file_number in sorted(by_file):
            if self._closed.is_set():
                return
            located = [
                job
                for job in by_file[file_number]
                if job.place.offset is not None and job.place.first_block is not None
            ]
            unlocated = [job for job in by_file[file_number] if job not in located]
            if located:
                self._read_run(chunks, file_number, located)
            if unlocated:
                chunks.forget()
                self._scan_archive(chunks.device, file_number, unlocated)

    def _read_run(self, chunks: ChunkRunReader, file_number: int, jobs: list[_ChunkJob]) -> None:
        for job in sorted(jobs, key=lambda job: job.place.offset):
            if self._closed.is_set():
                return
            before, locates = chunks.bytes_read, chunks.locates
            try:
                blob = chunks.read(file_number, job.place.first_block, job.place.location())
            except TapeFormatError as error:
                self._damaged(job, str(error))
                continue
            finally:
                self._count(bytes_from_tape=chunks.bytes_read - before, locates=chunks.locates - locates)
            self._check_later(job, blob)

    def _scan_archive(self, device: BlockDevice, file_number: int, jobs: list[_ChunkJob]) -> None:
        """Chunks whose offset the catalog lacks (imported from a .log): read their archive from
        its start until all of them passed by."""
        wanted = {job.digest: job for job in jobs}
        label = jobs[0].label_text
        try:
            device.locate_file(file_number)
            self._count(locates=1)
            tape_file = open_tape_file(device)
            if not isinstance(tape_file, TapeFile) or tape_file.header.content_magic != CHUNK_ARCHIVE_1_1:
                raise TapeFormatError("no chunk archive here, although the catalog names one", file_number)
            archive = ChunkArchiveReader(tape_file)
            for digest, blob in archive:
                self._count(bytes_from_tape=ENTRY_HEADER_SIZE + len(blob))
                job = wanted.pop(digest, None)
                if job is not None:
                    self._check_later(job, blob)
                if not wanted or self._closed.is_set():
                    return
        except TapeFormatError as error:
            for job in wanted.values():
                self._damaged(job, str(error))
            return
        for job in wanted.values():
            self._finish(
                job,
                error=ChunkNotOnTape(
                    f"tape {label} file {file_number}: chunk {job.digest.hex()} is not in the archive the catalog names"
                ),
            )

    def _check_later(self, job: _ChunkJob, blob: bytes) -> None:
        """Check and decode on another thread while the drive reads on (hashing and zstd release
        the GIL)."""
        job.handed_over = True
        self._check_slots.acquire()
        try:
            self._checks.submit(self._check, job, blob)
        except RuntimeError:  # shut down by close
            self._check_slots.release()

    def _check(self, job: _ChunkJob, blob: bytes) -> None:
        try:
            kind = blob_kind(blob)
            if kind is not None and kind.encrypted:
                self._finish(
                    job,
                    error=KeyUnavailable(
                        f"{job.where}: chunk {job.digest.hex()} is encrypted with a datastore encryption key, "
                        "which the mount does not have"
                    ),
                )
                return
            try:
                data = decode_blob(blob, source=job.where)
            except DatastoreError as error:
                self._damaged(job, str(error))
                return
            if hashlib.sha256(data).digest() != job.digest:
                self._damaged(job, "the chunk does not match its digest")
                return
            self._count(chunks_from_tape=1)
            self._finish(job, data=data)
        finally:
            self._check_slots.release()

    def _damaged(self, job: _ChunkJob, reason: str) -> None:
        log.error("%s: chunk %s damaged: %s", job.where, job.digest.hex(), reason)
        self._count(damaged=1)
        self._emit(
            "chunk-damaged",
            tape=job.label_text,
            file=job.place.file_number,
            offset=job.place.offset,
            digest=job.digest.hex(),
            error=reason,
        )
        self._finish(job, error=ChunkDamaged(f"{job.where}: chunk {job.digest.hex()} damaged: {reason}"))

    def _finish(self, job: _ChunkJob, data: bytes | None = None, error: MountReadError | None = None) -> None:
        job.handed_over = True
        if data is not None:
            self.cache.put(job.digest, data)  # before the job goes: a new fetch then finds the data
        with self._cond:
            if self._jobs.get(job.key) is job:
                del self._jobs[job.key]
        _settle(job.future, data, error)


def _settle(future: Future, data: bytes | None = None, error: Exception | None = None) -> None:
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(data)
    except InvalidStateError:  # close() answered it first
        pass


class TapeChunkReader:
    """`read_chunk` over one store of one media set, through the planner (for tools that read
    indexes and pxar archives from tape, like the datastore's ChunkReader)."""

    def __init__(self, planner: ReadPlanner, set_uuid: str, store: str):
        self.planner = planner
        self.set_uuid = set_uuid
        self.store = store

    def read_chunk(self, digest: bytes, expected_size: int | None = None) -> bytes:
        data = self.planner.fetch(self.set_uuid, self.store, [digest])[digest]
        if expected_size is not None and len(data) != expected_size:
            raise ChunkDamaged(
                f"chunk {digest.hex()} of store {self.store} has {len(data)} bytes, the index expects {expected_size}"
            )
        return data
