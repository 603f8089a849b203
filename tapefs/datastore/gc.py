"""Garbage collection: remove the chunks no index refers to, in PBS's two phases.

1. Mark: every ``.fidx``/``.didx`` anywhere in the datastore, and every ``.tmp_fidx``/
   ``.tmp_didx`` of a backup still being written, has the atime of each chunk it names set to
   now (utimensat, mtime untouched).
2. Sweep: every chunk whose atime is older than the cut-off is removed. The cut-off is 24 h
   5 min before the collection started (the grace a relatime mount needs), or 5 min before the
   start of the oldest process holding the datastore lock if that is earlier: a running
   backup may rely on chunks it touched when it started. Chunks older than that writer but
   newer than the cut-off are "pending": a later run removes them. Also removed: ``.bad``
   copies of chunks that are good again or that nothing refers to, and chunk temp files
   (``*.tmp_*``) older than the cut-off.

A chunk is taken out of the way by renaming it to ``<digest>.removing``, checked once more and
only then deleted: a backup that touched it in between keeps it (its touch shows, or, coming
after the rename, finds no file and writes the chunk again). A collection killed midway is
simply run again: a ``.removing`` file a snapshot still needs is renamed back when the mark
phase misses its chunk.

The last result is written to ``.gc-status`` in PBS's format (PBS shows it), and appended to
``.gc-history`` (JSON lines, the last 100 runs), both in the datastore's root.
"""

import json
import logging
import os
import stat
import struct
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tapefs.config.atomic_file import atomic_write
from tapefs.datastore.chunk_store import CHUNK_DIR_NAME, CHUNK_FILE_NAME, MAX_BAD_COPIES, touch_atime
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.datastore_lock import garbage_collection_lock, lock_holders
from tapefs.datastore.dynamic_index import DYNAMIC_INDEX_MAGIC
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.fixed_index import FIXED_INDEX_MAGIC
from tapefs.datastore.index_file import DIGEST_SIZE, INDEX_HEADER_SIZE
from tapefs.tasks.worker import check_stop

log = logging.getLogger(__name__)

GC_STATUS_FILE_NAME = ".gc-status"
GC_HISTORY_FILE_NAME = ".gc-history"
HISTORY_LENGTH = 100
#: PBS's default: a day for relatime, plus 5 minutes
DEFAULT_ATIME_CUTOFF_MINUTES = 24 * 60 + 5
WRITER_SAFETY_GAP = 5 * 60
#: the kernel stamps atimes from a coarse clock that may lag time.time() by a tick: a chunk
#: marked right after the start must not look older than the start
CLOCK_MARGIN = 1.0
REMOVING_SUFFIX = ".removing"
INDEX_SUFFIXES = (".fidx", ".didx", ".tmp_fidx", ".tmp_didx")
DYNAMIC_ENTRY_SIZE = 8 + DIGEST_SIZE
#: digests marked recently, so chunks shared by consecutive snapshots are touched once; bounded
#: (cleared when full) so that memory stays flat however many chunks the datastore has
TOUCHED_CACHE_SIZE = 1 << 17
#: objects a bucket refused to delete named in the log
LOCKED_EXAMPLES = 10
MISSING_LISTED = 10
_FIXED_SIZE = struct.Struct("<Q")


@dataclass
class GcResult:
    started: float = 0.0
    seconds: float = 0.0
    #: of ``seconds``, the mark phase
    mark_seconds: float = 0.0
    cutoff: float = 0.0
    #: processes holding the datastore lock when the collection started
    writers: int = 0
    index_file_count: int = 0
    index_data_bytes: int = 0
    disk_chunks: int = 0
    disk_bytes: int = 0
    removed_chunks: int = 0
    removed_bytes: int = 0
    pending_chunks: int = 0
    pending_bytes: int = 0
    removed_bad: int = 0
    still_bad: int = 0
    removed_temp: int = 0
    #: snapshot directories of killed backups (no manifest, no writer) removed before marking
    removed_unfinished: list[str] = field(default_factory=list)
    missing_chunks: int = 0
    #: the first few missing digests (hex), for the report
    missing_examples: list[str] = field(default_factory=list)
    #: an S3 datastore's bucket: unused chunk objects deleted, and those the bucket kept (object lock)
    backend_removed_chunks: int = 0
    backend_removed_bytes: int = 0
    backend_locked: list[str] = field(default_factory=list)

    @property
    def dedup_factor(self) -> float:
        return self.index_data_bytes / self.disk_bytes if self.disk_bytes else 1.0

    def pbs_status(self) -> dict:
        """The fields of PBS's GarbageCollectionStatus."""
        return {
            key: getattr(self, key.replace("-", "_"))
            for key in (
                "index-file-count",
                "index-data-bytes",
                "disk-bytes",
                "disk-chunks",
                "removed-bytes",
                "removed-chunks",
                "pending-bytes",
                "pending-chunks",
                "removed-bad",
                "still-bad",
            )
        }

    def to_json(self) -> dict:
        value = {key.replace("_", "-"): item for key, item in asdict(self).items()}
        value["dedup-factor"] = round(self.dedup_factor, 3)
        return value

    @classmethod
    def from_json(cls, value: dict) -> "GcResult":
        known = {f.replace("_", "-") for f in cls.__dataclass_fields__}
        return cls(**{key.replace("-", "_"): item for key, item in value.items() if key in known})


class _Marker:
    def __init__(self, chunk_dir: Path, result: GcResult):
        self.chunk_dir = str(chunk_dir)
        self.result = result
        self.touched: set[bytes] = set()

    def mark_index(self, path: str, temporary: bool) -> None:
        with open(path, "rb") as index:
            raw = index.read()
        dynamic = path.endswith("didx")
        if not temporary:
            self._check_header(path, raw, dynamic)
            self.result.index_file_count += 1
        entry_size = DYNAMIC_ENTRY_SIZE if dynamic else DIGEST_SIZE
        digest_offset = 8 if dynamic else 0
        # an index being written may end in a partial entry: only whole ones count
        count = max(0, len(raw) - INDEX_HEADER_SIZE) // entry_size
        if not temporary and count:
            if dynamic:
                self.result.index_data_bytes += _FIXED_SIZE.unpack_from(
                    raw, INDEX_HEADER_SIZE + (count - 1) * entry_size
                )[0]
            else:
                self.result.index_data_bytes += _FIXED_SIZE.unpack_from(raw, 64)[0]
        view = memoryview(raw)
        start = INDEX_HEADER_SIZE + digest_offset
        for offset in range(start, start + count * entry_size, entry_size):
            digest = bytes(view[offset : offset + DIGEST_SIZE])
            if digest in self.touched:
                continue
            if len(self.touched) >= TOUCHED_CACHE_SIZE:
                self.touched.clear()
            self.touched.add(digest)
            self._touch(digest, report_missing=not temporary)

    @staticmethod
    def _check_header(path: str, raw: bytes, dynamic: bool) -> None:
        magic = DYNAMIC_INDEX_MAGIC if dynamic else FIXED_INDEX_MAGIC
        entry_size = DYNAMIC_ENTRY_SIZE if dynamic else DIGEST_SIZE
        if len(raw) < INDEX_HEADER_SIZE or raw[:8] != magic or (len(raw) - INDEX_HEADER_SIZE) % entry_size:
            raise DatastoreError(
                f"{path}: not a readable index; garbage collection stopped before removing anything "
                "(move the file away if it is damaged)"
            )

    def _touch(self, digest: bytes, report_missing: bool) -> None:
        hex_digest = digest.hex()
        path = f"{self.chunk_dir}/{hex_digest[:4]}/{hex_digest}"
        try:
            touch_atime(path)
            return
        except FileNotFoundError:
            pass
        # a collection killed between its rename and its check left the chunk aside
        try:
            os.rename(path + REMOVING_SUFFIX, path)
            touch_atime(path)
            log.info("restored chunk %s set aside by an interrupted garbage collection", hex_digest)
            return
        except FileNotFoundError:
            pass
        if not report_missing:
            return  # a backup still running may not have written it yet
        self.result.missing_chunks += 1
        if len(self.result.missing_examples) < MISSING_LISTED:
            self.result.missing_examples.append(hex_digest)
        log.warning("chunk %s is missing", hex_digest)
        for number in range(MAX_BAD_COPIES):
            try:
                touch_atime(f"{path}.{number}.bad")
            except FileNotFoundError:
                pass


def _index_files(root: Path):
    """(path, is a temp file) of every index below ``root``, ``.chunks`` excepted; hidden
    directories too, so that nothing a writer is making is missed."""
    pending = [str(root)]
    chunk_dir = str(root / CHUNK_DIR_NAME)
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed while we walked: a forgotten snapshot
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.path != chunk_dir:
                    pending.append(entry.path)
            elif entry.name.endswith(INDEX_SUFFIXES) and entry.is_file(follow_symlinks=False):
                yield entry.path, ".tmp_" in entry.name


def _is_bad_copy(name: str) -> bool:
    # <digest>.<n>.bad
    return len(name) == 70 and name.endswith(".bad") and name[65].isdigit() and name[64] == "."


class _Sweeper:
    def __init__(self, chunk_dir: Path, result: GcResult, cutoff: float, pending_before: float):
        self.chunk_dir = chunk_dir
        self.result = result
        self.cutoff_ns = int(cutoff * 1e9)
        self.pending_before_ns = int(pending_before * 1e9)

    def sweep(self) -> None:
        for prefix in sorted(os.listdir(self.chunk_dir)):
            directory = f"{self.chunk_dir}/{prefix}"
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                continue
            names = {entry.name for entry in entries}
            for entry in entries:
                try:
                    self._sweep_entry(directory, entry, names)
                except FileNotFoundError:
                    pass  # gone meanwhile (a writer's temp file renamed into place)

    def _sweep_entry(self, directory: str, entry: os.DirEntry, names: set[str]) -> None:
        name = entry.name
        info = entry.stat(follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode):
            return
        if CHUNK_FILE_NAME.fullmatch(name):
            if info.st_atime_ns < self.cutoff_ns:
                if self._remove_chunk(f"{directory}/{name}"):
                    self.result.removed_chunks += 1
                    self.result.removed_bytes += info.st_size
                    return
                info = os.lstat(f"{directory}/{name}")
            if info.st_atime_ns < self.pending_before_ns:
                self.result.pending_chunks += 1
                self.result.pending_bytes += info.st_size
            else:
                self.result.disk_chunks += 1
                self.result.disk_bytes += info.st_size
        elif _is_bad_copy(name):
            good_again = name[:64] in names
            if good_again or info.st_atime_ns < self.cutoff_ns:
                os.unlink(f"{directory}/{name}")
                self.result.removed_bad += 1
            else:
                self.result.still_bad += 1
        elif name.endswith(REMOVING_SUFFIX) and CHUNK_FILE_NAME.fullmatch(name[: -len(REMOVING_SUFFIX)]):
            # left by an interrupted collection, and the mark phase did not need it
            os.unlink(f"{directory}/{name}")
            self.result.removed_chunks += 1
            self.result.removed_bytes += info.st_size
        elif ".tmp_" in name and max(info.st_atime_ns, info.st_mtime_ns) < self.cutoff_ns:
            os.unlink(f"{directory}/{name}")
            self.result.removed_temp += 1

    def _remove_chunk(self, path: str) -> bool:
        """Remove a chunk unless someone touched it since we looked; False if it stays."""
        aside = path + REMOVING_SUFFIX
        os.rename(path, aside)
        if os.lstat(aside).st_atime_ns >= self.cutoff_ns:
            os.rename(aside, path)
            return False
        os.unlink(aside)
        return True


def garbage_collect(datastore: Datastore, atime_cutoff_minutes: int = DEFAULT_ATIME_CUTOFF_MINUTES) -> GcResult:
    """Mark and sweep (see the module docstring); refuses to start while another collection
    (tapefs or PBS) runs."""
    if atime_cutoff_minutes < 0:
        raise DatastoreError(f"the atime cut-off must not be negative, got {atime_cutoff_minutes} minutes")
    if not datastore.chunk_store.exists():
        raise DatastoreError(f"{datastore.root}: not a datastore (no .chunks directory)")
    with garbage_collection_lock(datastore.root):
        result = GcResult(started=time.time() - CLOCK_MARGIN)
        writers = lock_holders(datastore.root)
        oldest_writer = min([result.started] + [writer.started for writer in writers])
        result.writers = len(writers)
        result.cutoff = result.started - atime_cutoff_minutes * 60
        if writers:
            result.cutoff = min(result.cutoff, oldest_writer - WRITER_SAFETY_GAP)
        if writers:
            log.info("%d writers running, the oldest since %s", len(writers), time.ctime(oldest_writer))
        # Leftovers of killed backups go first, so their chunks count as unused; a snapshot a
        # backup still writes keeps its lock and stays, its indexes marked below.
        for unfinished in datastore.unfinished_snapshots():
            if not unfinished.in_progress and datastore.remove_abandoned_snapshot(unfinished.snapshot):
                result.removed_unfinished.append(str(unfinished.snapshot))
        log.info("phase 1: marking chunks in use")
        marker = _Marker(datastore.chunk_store.chunk_dir, result)
        for path, temporary in _index_files(datastore.root):
            check_stop()  # marking only touches chunks: stopping here removes nothing
            try:
                marker.mark_index(path, temporary)
            except FileNotFoundError:
                continue  # a temp index renamed into place, or a forgotten snapshot: seen under its new name or not needed
        result.mark_seconds = time.time() - result.started
        log.info("phase 2: removing chunks last used before %s", time.ctime(result.cutoff))
        pending_before = oldest_writer if writers else result.started
        # an S3 datastore's bucket first, judged by the cache's markers (PBS's S3 phase 2)
        sweep = datastore.sweep_backend_chunks(result.cutoff)
        result.backend_removed_chunks, result.backend_removed_bytes, result.backend_locked = sweep
        for key in result.backend_locked[:LOCKED_EXAMPLES]:
            log.warning("garbage collection: the bucket keeps %s (object lock?)", key)
        _Sweeper(datastore.chunk_store.chunk_dir, result, result.cutoff, pending_before).sweep()
        result.seconds = time.time() - result.started
        _save_result(datastore.root, result)
    return result


def _save_result(root: Path, result: GcResult) -> None:
    atomic_write(root / GC_STATUS_FILE_NAME, json.dumps(result.pbs_status(), indent=2).encode())
    history = load_gc_history(root)[-(HISTORY_LENGTH - 1) :] + [result]
    atomic_write(root / GC_HISTORY_FILE_NAME, "".join(json.dumps(entry.to_json()) + "\n" for entry in history).encode())


def load_gc_history(root: str | os.PathLike) -> list[GcResult]:
    """Earlier collections, oldest first; unreadable lines are skipped."""
    try:
        lines = (Path(root) / GC_HISTORY_FILE_NAME).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    history = []
    for line in lines:
        try:
            history.append(GcResult.from_json(json.loads(line)))
        except (ValueError, TypeError):
            log.warning("%s: skipping an unreadable line", Path(root) / GC_HISTORY_FILE_NAME)
    return history
