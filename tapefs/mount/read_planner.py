"""The read planner behind `tapefs mount`: turns chunk reads into tape loads and LOCATEs.

It is trio-native: `serve` runs in the mount's nursery with one task per drive and one task that
watches for tapes outside the library; every planner structure is touched only from that trio
loop, so no lock guards them. Blocking device I/O runs in `trio.to_thread` under the drive's own
CapacityLimiter (one thread per drive at a time), so a drive that waits holds nothing the others
need. FUSE handlers (threads started by `trio.to_thread`) call the blocking `fetch`, which answers
cache hits in the calling thread without touching the loop or any drive, and hands the misses to
`fetch_async` on the loop; `start`/`close` run the same loop in a thread of its own for callers
outside a mount (tools, benchmarks, tests).

Chunks not in the cache become jobs queued per tape, found through the media catalog (tape, file
number, offset) and the inventory (label text, location). A drive task takes a tape: the one in
its drive if it has work, else the tape whose oldest urgent request waits longest, never one
another drive serves or holds and never one known to be outside the library. It reads that tape's
jobs in (file number, offset) order, the chunks of one archive as one run after a single LOCATE
and in one call of the drive's thread, which hands each chunk to its check without waiting for the
loop. Checks of every chunk (CRC; SHA-256 = digest, the chunks being unencrypted) run in worker
threads while the drive reads on; they fill the cache and answer every caller waiting for it. Readahead jobs ride
along at low priority: they fill the cache and nobody waits for them.

A tape that is not in the library is found out before anything is unloaded (a look at the
changer's slots), asked for once ("insert tape X"), shown in `stats`, and left alone by the drives:
the watcher looks for it in the changer every RETRY_INTERVAL seconds. Its reads fail with
MediaUnavailable once they have waited `read_timeout`; later reads of that tape fail at once until
its location changes (it shows up in the changer, or the inventory moves it), so a program that
retries waits once, not once per retry. A drive another tapefs process holds (a backup) leaves its
tapes to the other drives and is tried again every RETRY_INTERVAL; reads that find no drive within
`read_timeout` fail naming the holder.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from tapefs.catalog.media_catalog import ChunkPlace, MediaCatalog
from tapefs.datastore.blob import blob_kind, decode_blob_parts
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
from tapefs.tapeformat.chunk_archive import BLOB_HEAD_SIZE, ENTRY_HEADER_SIZE, ChunkArchiveReader, ChunkRunReader
from tapefs.tapeformat.errors import TapeFormatError
from tapefs.tapeformat.labels import TapeLabels, read_labels
from tapefs.tapeformat.magic import CHUNK_ARCHIVE_1_1
from tapefs.tapeformat.tape_file import TapeFile, open_tape_file

log = logging.getLogger(__name__)

#: A chunk's blob as read from tape: its magic and CRC, and the rest (`ChunkRunReader.read`).
BlobParts = tuple[bytes, bytes | memoryview]

#: Seconds between two looks for a tape that is not in the library.
RETRY_INTERVAL = 1.5
#: Chunks read from tape and waiting for their check: bounds memory while the drive reads on.
CHECKS_IN_FLIGHT = 4
#: Digests of the chunks read from tape last (32 bytes each), to notice a chunk read again.
REMEMBERED_READS = 100_000
#: A drive without reads for this long is released for other tapefs processes.
DRIVE_IDLE_RELEASE = 10.0
#: What a read still waiting when the mount stops is told (docs/mount.md names its errno, EIO).
CLOSED = "the tape reader was closed"

#: `events(kind, details)`: "insert-tape" {tape, location}, "tape-loaded" {tape, drive},
#: "media-unavailable" {tape, location}, "chunk-damaged" {tape, file, offset, digest, error},
#: "drive-busy" {drive, reason}.
EventCallback = Callable[[str, dict], None]

_Key = tuple[str, str, bytes]  # (media set, store, digest)


@dataclass(eq=False)
class _Job:
    """A request answered once: `done` is set when `result` or `error` is."""

    urgent: bool
    queued: float = field(default_factory=time.monotonic, kw_only=True)
    #: Read from tape and passed to a check, or answered: a drive failure no longer concerns it.
    handed_over: bool = field(default=False, kw_only=True)
    done: trio.Event = field(default_factory=trio.Event, kw_only=True)
    result: bytes | None = field(default=None, kw_only=True)
    error: MountReadError | None = field(default=None, kw_only=True)

    def settle(self, data: bytes | None = None, error: MountReadError | None = None) -> None:
        if self.done.is_set():  # answered first by close
            return
        self.result, self.error = data, error
        self.done.set()

    async def outcome(self) -> bytes:
        await self.done.wait()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@dataclass(eq=False)
class _ChunkJob(_Job):
    key: _Key = field(kw_only=True)
    place: ChunkPlace = field(kw_only=True)
    label_text: str = field(kw_only=True)

    @property
    def digest(self) -> bytes:
        return self.key[2]

    @property
    def where(self) -> str:
        offset = "unknown" if self.place.offset is None else self.place.offset
        return f"tape {self.label_text} file {self.place.file_number} offset {offset}"


@dataclass(eq=False)
class _TapeTask(_Job):
    """Work on one tape other than reading chunks (the mount's raw tape files), queued with the
    tape's chunk jobs so the same drive serves it."""

    key: tuple[str, int] = field(kw_only=True)
    label_text: str = field(kw_only=True)
    what: str = field(kw_only=True)
    work: Callable[[BlockDevice], bytes] = field(kw_only=True)

    @property
    def where(self) -> str:
        return f"tape {self.label_text} {self.what}"


@dataclass(eq=False)
class _Absent:
    """A tape reads wait for that is not in the library."""

    label: str
    location: str
    #: Wall-clock time the reads started waiting, for `stats`.
    since: float
    #: The drive that found it missing.
    drive: str


@dataclass(eq=False)
class _Worker:
    setup: DriveSetup
    session: DriveSession
    #: One blocking device call of this drive at a time, in a thread of its own.
    limiter: trio.CapacityLimiter = field(default_factory=lambda: trio.CapacityLimiter(1))
    #: Media UUID of the tape in the drive, labels checked and key given; None when unknown.
    media: str | None = None
    #: Media UUID of the tape this worker has taken, loaded or not.
    serving: str | None = None
    state: str = "idle"
    loads: int = 0
    #: Reads the loaded tape's chunks, keeping the stream open between batches.
    chunks: ChunkRunReader | None = None
    #: Another tapefs process holds the drive: why, and until when this worker leaves tapes alone.
    busy: str | None = None
    busy_until: float = 0.0
    #: The tapes loaded last, newest at the end.
    tapes_loaded: deque[str] = field(default_factory=lambda: deque(maxlen=16))
    #: Where the checks of the chunks this drive read run (see `_drive_task`).
    checks: trio.Nursery | None = None

    async def run(self, function: Callable, *args):
        """`function(*args)` on this drive, in a thread; a cancelled caller waits for it to end
        (a tape operation is never left running behind the planner's back)."""
        return await trio.to_thread.run_sync(function, *args, limiter=self.limiter)


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
        self._closed = False
        self._serving = False
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel_scope: trio.CancelScope | None = None
        self._own_loop: threading.Thread | None = None
        self._workers = [_Worker(setup, DriveSession(setup)) for setup in drives]
        #: media UUID → jobs not yet taken by a drive.
        self._queues: dict[str, dict] = {}
        #: every job not answered yet, queued or being read.
        self._jobs: dict = {}
        self._labels: dict[str, str] = {}
        #: media UUID → a tape outside the library that reads wait for.
        self._absent: dict[str, _Absent] = {}
        #: media UUID → (label, location) of a tape whose reads timed out: later reads fail at
        #: once until it is found in the changer or the inventory gives it another location.
        self._given_up: dict[str, tuple[str, str]] = {}
        #: (media UUID, file number, offset) → why the chunk there is damaged: answered at once,
        #: not read again, until the media catalog changes (`_damaged_version`).
        self._damaged_places: dict[tuple[str, int, int | None], str] = {}
        self._read_from_tape: OrderedDict[bytes, None] = OrderedDict()
        self._damaged_version: int | None = None
        #: label → what reads asked of a tape outside the library: it must be brought back (from
        #: its vault) before they can be answered. Kept after the reads failed, until it is loaded.
        self._retrievals: dict[str, dict] = {}
        #: Set and replaced whenever the queues or the drives change: what idle drives wait on.
        self._changed = trio.Event()
        # Two drives moving tapes through one changer at once could both pick the same slot state.
        self._changer_lock = threading.Lock()
        #: Taken by a drive thread per blob it hands to a check, given back when the check ends.
        self._check_slots = threading.Semaphore(CHECKS_IN_FLIGHT)
        self._counters = {
            "loads": 0,
            "locates": 0,
            "cache_hits": 0,
            "cache_misses": 0,
            "chunks_from_tape": 0,
            "chunks_read_again": 0,
            "bytes_from_tape": 0,
            "bytes_passed_over": 0,
            "bytes_delivered": 0,
            "damaged": 0,
            "damaged_answered": 0,
            "unavailable": 0,
        }
        self._reading_seconds = 0.0
        self._task_numbers = itertools.count()
        self._catalog: MediaCatalog | None = None
        self._inventory: Inventory | None = None

    # -- life cycle --------------------------------------------------------------------------

    async def serve(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Run the drive tasks until cancelled or `shutdown`; every read still waiting then fails."""
        if self._serving or self._closed:
            raise RuntimeError("read planner already started")
        self._serving = True
        self._catalog = MediaCatalog.open(self.status_dir)
        self._inventory = Inventory.open(self.status_dir)
        self._token = trio.lowlevel.current_trio_token()
        try:
            async with trio.open_nursery() as nursery:
                self._cancel_scope = nursery.cancel_scope
                for worker in self._workers:
                    nursery.start_soon(self._drive_task, worker, name=f"tape-read-{worker.setup.name}")
                nursery.start_soon(self._watch_absent_tapes, name="tape-watch")
                task_status.started()
        finally:
            self.shutdown()
            with trio.CancelScope(shield=True):
                for worker in self._workers:
                    await worker.run(worker.session.close)
            for database in (self._catalog, self._inventory):
                database.close()

    def shutdown(self) -> None:
        """Fail every request not answered yet and stop the drive tasks (one in the middle of a
        tape operation finishes it first). Call on the planner's trio loop."""
        if self._closed:
            return
        self._closed = True
        pending = list(self._jobs.values())
        self._jobs.clear()
        self._queues.clear()
        for job in pending:
            job.settle(error=MountReadError(f"{job.where}: {CLOSED}"))
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()
        self._notify()

    def start(self) -> None:
        """Serve in a thread of its own (outside a mount: tools, benchmarks, tests)."""
        if self._own_loop is not None or self._serving:
            raise RuntimeError("read planner already started")
        started = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.serve)
                started.set()

        def run() -> None:
            try:
                trio.run(main)
            except BaseException as error:
                failure.append(error)
                log.exception("read planner stopped")
            finally:
                started.set()

        self._own_loop = threading.Thread(target=run, name="tape-read-planner", daemon=True)
        self._own_loop.start()
        started.wait()
        if failure:
            raise failure[0]

    def close(self) -> None:
        """Stop the loop `start` runs (blocking); reads still waiting fail."""
        if self._own_loop is None:
            return
        if self._own_loop.is_alive() and self._token is not None:
            try:
                trio.from_thread.run_sync(self.shutdown, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._own_loop.join()
        self._own_loop = None

    def __enter__(self) -> ReadPlanner:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- requests ----------------------------------------------------------------------------

    def _on_loop(self, function, *args):
        """Run `fetch_async` and friends on the planner's loop from a thread (blocking)."""
        if self._closed or self._token is None:
            raise MountReadError("the tape reader is not running")
        try:
            return trio.from_thread.run(function, *args, trio_token=self._token)
        except trio.RunFinishedError:
            raise MountReadError("the tape reader is not running") from None

    def fetch(
        self, set_uuid: str, store: str, digests: list[bytes], readahead: Iterable[bytes] = ()
    ) -> dict[bytes, bytes]:
        """Decoded data of `digests` (blocking, from any thread but the planner's loop); `readahead`
        digests are queued, not waited for. Raises a MountReadError for the first digest that cannot
        be read. Chunks in the cache are read here, without waiting for the loop or a drive."""
        if self._closed or self._token is None:
            raise MountReadError("the tape reader is not running")
        results: dict[bytes, bytes] = {}
        missing = []
        for digest in dict.fromkeys(digests):
            data = self.cache.get(digest)
            if data is None:
                missing.append(digest)
            else:
                results[digest] = data
        # Cached readahead needs nothing from the loop: looked up here, off the loop.
        ahead = [d for d in dict.fromkeys(readahead) if d not in results and d not in missing and d not in self.cache]
        if missing or ahead:
            results.update(self._on_loop(self.fetch_async, set_uuid, store, missing, ahead, len(results)))
        else:
            self._on_loop_soon(self._count, {"cache_hits": len(results), "bytes_delivered": _size(results)})
        return results

    def _on_loop_soon(self, function, *args) -> None:
        try:
            self._token.run_sync_soon(function, *args)
        except trio.RunFinishedError:
            pass

    async def fetch_async(
        self, set_uuid: str, store: str, digests: list[bytes], readahead: Iterable[bytes] = (), hits: int = 0
    ) -> dict[bytes, bytes]:
        """`fetch` on the planner's loop: waits for the chunks not in the cache (`hits` counts those
        the caller found there already)."""
        if self._closed:
            raise MountReadError("the tape reader is not running")
        results: dict[bytes, bytes] = {}
        wanted = list(dict.fromkeys(digests))
        jobs: dict[bytes, _ChunkJob] = {}
        self._count({"cache_hits": hits, "cache_misses": len(wanted)})
        while wanted:
            attached, wanted = self._submit(set_uuid, store, wanted, urgent=True)
            jobs.update(attached)
            for digest in wanted:  # reached the cache meanwhile
                data = await trio.to_thread.run_sync(self.cache.get, digest)
                if data is not None:
                    results[digest] = data
            wanted = [digest for digest in wanted if digest not in results]
        ahead = [d for d in dict.fromkeys(readahead) if d not in results and d not in jobs]
        if ahead:
            self._submit(set_uuid, store, ahead, urgent=False)
        for digest, job in jobs.items():
            results[digest] = await job.outcome()
        self._count({"bytes_delivered": _size(results)})
        return results

    def _submit(
        self, set_uuid: str, store: str, digests: list[bytes], urgent: bool
    ) -> tuple[dict[bytes, _ChunkJob], list[bytes]]:
        """Jobs for `digests`, joining those already queued; also the digests that reached the
        cache meanwhile (read them from there). Readahead digests not on tape are left out."""
        attached: dict[bytes, _ChunkJob] = {}
        need = []
        for digest in digests:
            job = self._jobs.get((set_uuid, store, digest))
            if job is None:
                need.append(digest)
                continue
            job.urgent = job.urgent or urgent
            attached[digest] = job
        if not need:
            return attached, []
        places = self._catalog.chunk_places(set_uuid, store, need)
        unknown = [digest for digest in need if digest not in places]
        if unknown and urgent:
            raise ChunkNotOnTape(
                f"chunk {unknown[0].hex()} of store {store} is not on media set {set_uuid} according to the catalog"
            )
        for media in {place.media_uuid for place in places.values()}:
            self._refuse_if_given_up(media, urgent)
        self._forget_damage_if_catalog_changed()
        in_cache = []
        for digest, place in places.items():
            if place.media_uuid in self._given_up:  # readahead of a tape given up: left out
                continue
            damage = self._damaged_places.get(_place_key(place))
            if damage is not None:
                if urgent:
                    self._count({"damaged_answered": 1})
                    raise ChunkDamaged(damage)
                continue
            key = (set_uuid, store, digest)
            if digest in self.cache:  # a job finished since the caller looked
                in_cache.append(digest)
                continue
            job = _ChunkJob(urgent, key=key, place=place, label_text=self._label_text(place.media_uuid))
            self._jobs[key] = job
            self._queues.setdefault(place.media_uuid, {})[key] = job
            attached[digest] = job
        self._notify()
        return attached, (in_cache if urgent else [])

    def _forget_damage_if_catalog_changed(self) -> None:
        """A catalog command (a new scan of the tape, a new copy) may place the chunks elsewhere."""
        version = self._catalog.data_version()
        if version != self._damaged_version:
            self._damaged_places.clear()
            self._damaged_version = version

    def _refuse_if_given_up(self, media: str, urgent: bool) -> None:
        """Reads of a tape whose reads timed out fail at once while it is still where it was."""
        if media not in self._given_up:
            return
        label, location = self._given_up[media]
        if self._location(media) != location:
            del self._given_up[media]
            return
        if urgent:
            self._count({"unavailable": 1})
            raise MediaUnavailable(
                f"tape {label} is not in the library (location {location}); reads waited "
                f"{self.read_timeout:g}s for it already and fail until it is inserted"
            )

    def run_on_tape(self, media_uuid: str, what: str, work: Callable[[BlockDevice], bytes]) -> bytes:
        """`work(device)` with tape `media_uuid` loaded (blocking), e.g. reading one of its files
        raw; `what` names it in errors. Fails like a chunk read (offline tape, missing key)."""
        return self._on_loop(self.run_on_tape_async, media_uuid, what, work)

    async def run_on_tape_async(self, media_uuid: str, what: str, work: Callable[[BlockDevice], bytes]) -> bytes:
        if self._closed:
            raise MountReadError("the tape reader is not running")
        self._refuse_if_given_up(media_uuid, True)
        key = ("task", next(self._task_numbers))
        task = _TapeTask(True, key=key, label_text=self._label_text(media_uuid), what=what, work=work)
        self._jobs[task.key] = task
        self._queues.setdefault(media_uuid, {})[task.key] = task
        self._notify()
        return await task.outcome()

    async def _run_task(self, worker: _Worker, chunks: ChunkRunReader, task: _TapeTask) -> None:
        chunks.forget()  # the task moves the tape: the next chunk run locates afresh
        try:
            result = await worker.run(task.work, chunks.device)
        except (TapeFormatError, ScsiError, OSError) as error:
            self._finish(task, error=MountReadError(f"{task.where}: {error}"))
            return
        self._finish(task, data=result)

    def chunk_reader(self, set_uuid: str, store: str) -> TapeChunkReader:
        return TapeChunkReader(self, set_uuid, store)

    # -- status ------------------------------------------------------------------------------

    def stats(self) -> dict:
        """Counters, drives, waits (from any thread: read on the planner's loop while it runs)."""
        if self._token is not None and not self._closed and not _on_trio_thread():
            try:
                return trio.from_thread.run_sync(self._stats, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        return self._stats()

    def _stats(self) -> dict:
        counters = dict(self._counters)
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
        queues = [
            {
                "tape": self._labels.get(media, media),
                "queued": len(queue),
                "urgent": sum(1 for job in queue.values() if job.urgent),
                "waiting_seconds": round(time.monotonic() - min(job.queued for job in queue.values()), 1),
            }
            for media, queue in sorted(self._queues.items(), key=lambda item: self._labels.get(item[0], item[0]))
            if queue
        ]
        waiting = [
            {"tape": absent.label, "location": absent.location, "since": absent.since, "drive": absent.drive}
            for absent in self._absent.values()
        ]
        seconds = self._reading_seconds
        rate = counters["bytes_from_tape"] / seconds / 1e6 if seconds > 0 else 0.0
        return {
            **counters,
            "queued": sum(len(queue) for queue in self._queues.values()),
            "pending": len(self._jobs),
            "pending_urgent": sum(1 for job in self._jobs.values() if job.urgent),
            "reading_seconds": round(seconds, 3),
            "mb_per_s": round(rate, 1),
            "drives": drives,
            "queues": queues,
            "waiting_for": waiting,
            "given_up": [{"tape": label, "location": location} for label, location in self._given_up.values()],
            "retrieval_requests": [dict(request) for _, request in sorted(self._retrievals.items())],
            "cache": self.cache.stats(),
        }

    def _count(self, amounts: dict[str, int]) -> None:
        for name, amount in amounts.items():
            self._counters[name] += amount

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

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
        request = self._retrievals.setdefault(label, {"tape": label, "since": time.time(), "reads_failed": 0})
        request["location"] = location
        request["vault_note"] = note if vault is not None and location == f"vault-{vault}" else None

    # -- tapes outside the library -------------------------------------------------------------

    def _found_missing(self, worker: _Worker, media: str) -> None:
        """`worker` found no `media` in the changer: reads wait, the drives go on with other tapes."""
        label = self._labels.get(media, media)
        location = self._location(media)
        self._absent[media] = _Absent(label, location, time.time(), worker.setup.name)
        self._request_retrieval(media, label, location)
        log.warning(
            "insert tape %s (location %s) into the library: reads wait for it up to %gs",
            label,
            location,
            self.read_timeout,
        )
        self._emit("insert-tape", tape=label, location=location)

    async def _watch_absent_tapes(self) -> None:
        """Every RETRY_INTERVAL: tapes found in the changer again go back to the drives; reads
        that waited `read_timeout` for one fail."""
        while True:
            await trio.sleep(RETRY_INTERVAL)
            watched = {media: absent.label for media, absent in self._absent.items()}
            watched.update({media: label for media, (label, _) in self._given_up.items()})
            if not watched:
                continue
            present = await trio.to_thread.run_sync(self._in_changer, set(watched.values()))
            for media, label in watched.items():
                if label in present:
                    log.info("tape %s is in the library again", label)
                    self._absent.pop(media, None)
                    self._given_up.pop(media, None)
                    self._notify()
                elif media in self._absent:
                    self._expire_waits(media)
                elif self._location(media) != self._given_up[media][1]:
                    del self._given_up[media]

    def _in_changer(self, labels: set[str]) -> set[str]:
        """Which of `labels` the changers of our drives hold in a storage slot or a drive."""
        found: set[str] = set()
        asked = set()
        for worker in self._workers:
            if worker.setup.changer_path not in asked:
                asked.add(worker.setup.changer_path)
                with self._changer_lock:
                    found |= worker.session.tapes_in_changer(labels)
        return found

    def _expire_waits(self, media: str) -> None:
        absent = self._absent[media]
        expired_before = time.monotonic() - self.read_timeout
        queue = self._queues.get(media, {})
        expired = sum(job.queued < expired_before for job in queue.values())
        if expired:
            if absent.label in self._retrievals:
                self._retrievals[absent.label]["reads_failed"] += expired
            log.error(
                "tape %s (location %s) not inserted within %gs: reads fail",
                absent.label,
                absent.location,
                self.read_timeout,
            )
            self._emit("media-unavailable", tape=absent.label, location=absent.location)
            self._fail_tape(
                media,
                lambda job: MediaUnavailable(
                    f"{job.where}: tape {absent.label} is not in the library (location {absent.location}); "
                    f"not inserted within {self.read_timeout:g}s"
                ),
                expired_before,
            )
        if not self._queues.get(media):
            del self._absent[media]
            self._given_up[media] = (absent.label, absent.location)

    # -- drives ------------------------------------------------------------------------------

    def _next_tape(self, worker: _Worker) -> str | None:
        """The tape `worker` serves next."""
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
            if queue and media not in others and media not in self._absent
        ]
        return min(candidates)[3] if candidates else None

    def _urgent_elsewhere(self) -> bool:
        """Someone waits for a tape in the library no worker has taken."""
        taken = {w.serving for w in self._workers}
        return any(
            job.urgent
            for media, queue in self._queues.items()
            if media not in taken and media not in self._absent
            for job in queue.values()
        )

    async def _wait_for_change(self, seconds: float) -> bool:
        """True when the queues or drives changed within `seconds`."""
        changed = self._changed
        with trio.move_on_after(seconds):
            await changed.wait()
        return changed.is_set()

    async def _drive_task(self, worker: _Worker) -> None:
        # Checks of the chunks this drive read run beside it for as long as it serves: the drive
        # reads the next run meanwhile instead of waiting for the last chunk's check.
        async with trio.open_nursery() as checks:
            worker.checks = checks
            await self._serve_drive(worker)

    async def _serve_drive(self, worker: _Worker) -> None:
        try:
            while not self._closed:
                media = self._next_tape(worker)
                if media is None:
                    busy_for = worker.busy_until - time.monotonic()
                    if busy_for > 0:
                        await self._wait_for_change(busy_for)
                        continue
                    worker.state = "idle"
                    if not await self._wait_for_change(DRIVE_IDLE_RELEASE) and worker.session.holds_drive:
                        # Other tapefs processes (a backup) may use the drive now; whatever they
                        # leave in it, the labels are checked again before the next read.
                        await worker.run(self._release, worker)
                        log.info("drive %s idle: released", worker.setup.name)
                    continue
                worker.serving = media
                attempt = time.monotonic()
                try:
                    await self._serve(worker, media)
                except Exception as error:  # a drive or changer failure: fail this tape's reads, go on
                    label = self._labels.get(media, media)
                    log.error("drive %s, tape %s: %s", worker.setup.name, label, error, exc_info=True)
                    reason = str(error)
                    # Reads queued since get an attempt of their own.
                    self._fail_tape(media, lambda job, reason=reason: MountReadError(f"{job.where}: {reason}"), attempt)
                    await worker.run(self._release, worker)
                finally:
                    worker.serving = None
                    self._notify()
        finally:
            worker.state = "stopped"

    @staticmethod
    def _release(worker: _Worker) -> None:
        worker.session.close()
        worker.session.label_text = None
        worker.media = worker.chunks = None

    async def _serve(self, worker: _Worker, media: str) -> None:
        chunks = await self._load(worker, media)
        if chunks is None:
            return
        while not self._closed:
            queue = self._queues.get(media)
            if not queue or (not any(job.urgent for job in queue.values()) and self._urgent_elsewhere()):
                return  # only readahead left here: a tape someone waits for goes first
            del self._queues[media]
            worker.state = "reading"
            started = time.monotonic()
            batch = [job for job in queue.values() if not isinstance(job, _TapeTask)]
            for task in (job for job in queue.values() if isinstance(job, _TapeTask)):
                await self._run_task(worker, chunks, task)
            try:
                await self._read_jobs(worker, chunks, batch)
            except Exception as error:
                reason = str(error)
                for job in batch:
                    if not job.handed_over:
                        self._finish(job, error=MountReadError(f"{job.where}: {reason}"))
                raise
            finally:
                self._reading_seconds += time.monotonic() - started

    def _fail_tape(
        self, media: str, error_for: Callable[[_Job], MountReadError], queued_before: float | None = None
    ) -> None:
        queue = self._queues.get(media, {})
        failed = [job for job in queue.values() if queued_before is None or job.queued < queued_before]
        for job in failed:
            del queue[job.key]
        if not queue:
            self._queues.pop(media, None)
        for job in failed:
            self._finish(job, error=error_for(job))

    def _load_in_thread(self, worker: _Worker, label: str) -> tuple[BlockDevice, TapeLabels] | None:
        """The tape in the drive and its labels; None when it is not in the changer (looked up
        before the drive is unloaded, so a missing tape costs the drive nothing)."""
        with self._changer_lock:
            if worker.session.label_text != label and not worker.session.tapes_in_changer({label}):
                return None
            try:
                device = worker.session.load(label)
            except MediaOffline:
                worker.session.label_text = None  # the session unloaded its drive before finding out
                return None
        return device, read_labels(device)

    async def _load(self, worker: _Worker, media: str) -> ChunkRunReader | None:
        """The tape in the worker's drive with its labels checked; None when it is not there (its
        reads wait for it) or its jobs were failed instead (wrong tape, no key, drive busy)."""
        if worker.media == media and worker.chunks is not None:
            return worker.chunks
        worker.media = worker.chunks = None  # whatever the drive holds is about to change
        label = self._labels.get(media, media)
        worker.state = f"loading {label}"
        try:
            loaded = await worker.run(self._load_in_thread, worker, label)
        except DriveBusy as error:
            self._drive_busy(worker, media, error)
            return None
        if loaded is None:
            self._found_missing(worker, media)
            return None
        device, labels = loaded
        self._retrievals.pop(label, None)
        if worker.busy is not None:
            log.info("drive %s is free again", worker.setup.name)
            worker.busy = None
        worker.tapes_loaded.append(label)
        worker.loads += 1
        self._count({"loads": 1})
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
        error = await worker.run(self._give_drive_key, device, labels)
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

    async def _read_jobs(self, worker: _Worker, chunks: ChunkRunReader, jobs: list[_ChunkJob]) -> None:
        """One tape's jobs in tape order; the chunks of one archive as one run. Checks run in
        worker threads while the drive reads on."""
        by_file: dict[int, list[_ChunkJob]] = {}
        for job in jobs:
            by_file.setdefault(job.place.file_number, []).append(job)
        checks = worker.checks
        for file_number in sorted(by_file):
            if self._closed:
                return
            located = [
                job
                for job in by_file[file_number]
                if job.place.offset is not None and job.place.first_block is not None
            ]
            unlocated = [job for job in by_file[file_number] if job not in located]
            if located:
                await self._read_run(worker, chunks, file_number, located, checks)
            if unlocated:
                chunks.forget()
                await self._scan_archive(worker, chunks.device, file_number, unlocated, checks)

    async def _read_run(
        self, worker: _Worker, chunks: ChunkRunReader, file_number: int, jobs: list[_ChunkJob], checks
    ) -> None:
        ordered = sorted(jobs, key=lambda job: job.place.offset)
        await worker.run(self._read_run_in_thread, chunks, file_number, ordered, checks)

    def _read_run_in_thread(
        self, chunks: ChunkRunReader, file_number: int, jobs: list[_ChunkJob], checks: trio.Nursery
    ) -> None:
        """The whole run in one drive thread: a hand-over to the loop and back per chunk left the
        drive idle while the loop thread waited for the GIL. Blobs go to their checks through
        `_hand_over`, which does not wait for the loop."""
        for job in jobs:
            if self._closed:
                return
            before = (chunks.bytes_read, chunks.bytes_passed_over, chunks.locates)
            try:
                blob = chunks.read(file_number, job.place.first_block, job.place.location())
            except TapeFormatError as error:
                self._token.run_sync_soon(self._damaged_counted, job, str(error), _run_counts(chunks, before))
                continue
            self._hand_over(job, blob, _run_counts(chunks, before), checks)

    async def _scan_archive(
        self, worker: _Worker, device: BlockDevice, file_number: int, jobs: list[_ChunkJob], checks
    ) -> None:
        """Chunks whose offset the catalog lacks (imported from a .log): read their archive from
        its start until all of them passed by."""
        wanted = {job.digest: job for job in jobs}
        label = jobs[0].label_text

        def found(digest: bytes, blob: bytes, scanned: int) -> None:
            parts = (blob[:BLOB_HEAD_SIZE], memoryview(blob)[BLOB_HEAD_SIZE:])
            self._hand_over(wanted[digest], parts, {"bytes_from_tape": scanned}, checks)

        seen, scanned_after, error = await worker.run(
            _scan_for, device, file_number, set(wanted), found, lambda: self._closed
        )
        self._count({"locates": 1, "bytes_from_tape": scanned_after})
        for digest in seen:
            del wanted[digest]
        for job in wanted.values():
            if error is not None:
                self._damaged(job, error)
            elif not self._closed:
                self._finish(
                    job,
                    error=ChunkNotOnTape(
                        f"tape {label} file {file_number}: chunk {job.digest.hex()} is not in the archive the catalog names"
                    ),
                )

    def _hand_over(self, job: _ChunkJob, blob: BlobParts, counts: dict[str, int], checks: trio.Nursery) -> None:
        """From a drive thread: pass `blob` to its check on the loop without waiting for the loop;
        waits only while CHECKS_IN_FLIGHT blobs are being checked (bounds memory)."""
        while not self._check_slots.acquire(timeout=RETRY_INTERVAL):
            if self._closed:
                return
        self._token.run_sync_soon(self._start_check, job, blob, counts, checks)

    def _start_check(self, job: _ChunkJob, blob: BlobParts, counts: dict[str, int], checks: trio.Nursery) -> None:
        """On the loop (a run_sync_soon callback, so it must not raise)."""
        self._count(counts)
        job.handed_over = True
        try:
            checks.start_soon(self._check, job, blob)
        except RuntimeError:  # the drive task ended: the mount stops, shutdown answered the job
            self._check_slots.release()

    async def _check(self, job: _ChunkJob, blob: BlobParts) -> None:
        """Check and decode in a worker thread while the drive reads on (hashing and zstd release
        the GIL)."""
        try:
            data, damage, error = await trio.to_thread.run_sync(
                _checked, job, blob, self.cache, self._counted_from_tape
            )
        finally:
            self._check_slots.release()
        if damage is not None:
            self._damaged(job, damage)
        elif error is not None:
            self._finish(job, error=error)
        else:
            self._finish(job, data=data)

    def _counted_from_tape(self, digest: bytes) -> None:
        """From a check thread, before the chunk enters the cache: a reader that finds it there
        and then asks for `stats` is answered after this count (the loop runs callbacks in the
        order they were queued)."""
        self._on_loop_soon(self._count_from_tape, digest)

    def _count_from_tape(self, digest: bytes) -> None:
        self._count({"chunks_from_tape": 1})
        if digest in self._read_from_tape:
            # The cache should have kept it: a second read costs the drive and says the cache
            # is too small or something let it go.
            self._count({"chunks_read_again": 1})
            log.warning("chunk %s read from tape again (%s)", digest.hex(), self.cache.describe(digest))
            self._read_from_tape.move_to_end(digest)
            return
        self._read_from_tape[digest] = None
        if len(self._read_from_tape) > REMEMBERED_READS:
            self._read_from_tape.popitem(last=False)

    def _damaged_counted(self, job: _ChunkJob, reason: str, counts: dict[str, int]) -> None:
        self._count(counts)
        self._damaged(job, reason)

    def _damaged(self, job: _ChunkJob, reason: str) -> None:
        log.error("%s: chunk %s damaged: %s", job.where, job.digest.hex(), reason)
        self._count({"damaged": 1})
        self._emit(
            "chunk-damaged",
            tape=job.label_text,
            file=job.place.file_number,
            offset=job.place.offset,
            digest=job.digest.hex(),
            error=reason,
        )
        message = f"{job.where}: chunk {job.digest.hex()} damaged: {reason}"
        self._damaged_places[_place_key(job.place)] = message
        self._finish(job, error=ChunkDamaged(message))

    def _finish(self, job: _Job, data: bytes | None = None, error: MountReadError | None = None) -> None:
        job.handed_over = True
        if self._jobs.get(job.key) is job:
            del self._jobs[job.key]
        job.settle(data, error)


def _checked(
    job: _ChunkJob, blob: BlobParts, cache: ChunkCache, counted: Callable[[bytes], None]
) -> tuple[bytes | None, str | None, MountReadError | None]:
    """(data, damage, error) of a blob read from tape: decoded, checked against its digest,
    `counted` and put in the cache (before the job is answered: a new fetch then finds the data
    there)."""
    head, rest = blob
    kind = blob_kind(head)
    if kind is not None and kind.encrypted:
        return (
            None,
            None,
            KeyUnavailable(
                f"{job.where}: chunk {job.digest.hex()} is encrypted with a datastore encryption key, "
                "which the mount does not have"
            ),
        )
    try:
        # The digest below covers the CRC's bytes: a second pass over 4 MiB per chunk cost 7 % of
        # the mount's CPU in a cold `cp`.
        data = decode_blob_parts(head, rest, source=job.where, check_crc=False)
    except DatastoreError as error:
        return None, str(error), None
    if hashlib.sha256(data).digest() != job.digest:
        return None, "the chunk does not match its digest", None
    counted(job.digest)
    cache.put(job.digest, data)
    return data, None, None


def _scan_for(
    device: BlockDevice,
    file_number: int,
    wanted: set[bytes],
    found: Callable[[bytes, bytes, int], None],
    stop: Callable[[], bool],
) -> tuple[set[bytes], int, str | None]:
    """Passes each blob of `wanted` in the chunk archive at `file_number` to `found` (with the
    bytes read since the one before); returns the digests found, the bytes read after the last of
    them, and why the archive could not be read to the end (None when it could)."""
    seen: set[bytes] = set()
    scanned = reported = 0
    try:
        device.locate_file(file_number)
        tape_file = open_tape_file(device)
        if not isinstance(tape_file, TapeFile) or tape_file.header.content_magic != CHUNK_ARCHIVE_1_1:
            raise TapeFormatError("no chunk archive here, although the catalog names one", file_number)
        for digest, blob in ChunkArchiveReader(tape_file):
            scanned += ENTRY_HEADER_SIZE + len(blob)
            if digest in wanted and digest not in seen:
                seen.add(digest)
                found(digest, blob, scanned - reported)
                reported = scanned
            if len(seen) == len(wanted) or stop():
                break
    except TapeFormatError as error:
        return seen, scanned - reported, str(error)
    return seen, scanned - reported, None


def _run_counts(chunks: ChunkRunReader, before: tuple[int, int, int]) -> dict[str, int]:
    """What one `chunks.read` cost: bytes, of them the gaps read through, LOCATEs."""
    read, passed_over, locates = before
    return {
        "bytes_from_tape": chunks.bytes_read - read,
        "bytes_passed_over": chunks.bytes_passed_over - passed_over,
        "locates": chunks.locates - locates,
    }


def _place_key(place: ChunkPlace) -> tuple[str, int, int | None]:
    return (place.media_uuid, place.file_number, place.offset)


def _size(results: dict[bytes, bytes]) -> int:
    return sum(len(data) for data in results.values())


def _on_trio_thread() -> bool:
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


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
