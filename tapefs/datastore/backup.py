"""Back up directories and image files into a new snapshot (docs/datastore-format.md, "Writing a snapshot").

A directory becomes, in PBS's change-detection mode ``legacy``, ``<label>.pxar.didx`` (pxar
v1) with the file catalog ``catalog.pcat1.didx`` beside it; in mode ``data`` a split pxar v2
archive ``<label>.mpxar.didx`` (metadata) + ``<label>.ppxar.didx`` (file contents, chunks cut
where files start) and, as PBS does, no catalog. Mode ``metadata`` writes the same split archive
but takes the contents of files whose metadata did not change from the group's newest snapshot
with a split archive of the same label (``tapefs.pxar.reuse``): their payload chunks are
appended to the new payload index unread. Without such a snapshot it works as ``data``. A file or block device becomes
``<label>.img.fidx`` in 4 MiB chunks. The manifest is written last, so a snapshot without one
is visibly unfinished; on failure the snapshot directory is removed again. A backup that is killed
cannot do that: the next backup of the group removes what it left (see
``Datastore.remove_abandoned_snapshots``), recognising it by its free lock.

This job module sits above both the datastore and the pxar layer.
"""

import functools
import logging
import re
import shutil
import stat
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from tapefs.datastore.archive_reader import ArchiveReader
from tapefs.datastore.chunk_uploader import ChunkUploader, UploadStats
from tapefs.datastore.chunker import CATALOG_AVERAGE_CHUNK_SIZE, IMAGE_CHUNK_SIZE, PXAR_AVERAGE_CHUNK_SIZE
from tapefs.datastore.chunking_writer import ArchiveResult, ChunkingWriter
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.datastore_lock import datastore_lock
from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.fixed_index import FixedIndexWriter
from tapefs.datastore.manifest import Manifest
from tapefs.datastore.naming import BackupGroup, BackupSnapshot
from tapefs.datastore.snapshot_reader import SnapshotReader
from tapefs.progress import ProgressCallback, ProgressMeter
from tapefs.pxar.accessor import Accessor
from tapefs.pxar.catalog import CatalogWriter
from tapefs.pxar.encoder import encode_tree
from tapefs.pxar.errors import PxarError
from tapefs.pxar.reuse import PayloadChunk, ReuseStats, ReusingTreeWalker

log = logging.getLogger(__name__)

CATALOG_NAME = "catalog.pcat1.didx"
#: PBS's ``--change-detection-mode`` values: v1 archives, split v2 archives re-reading every
#: file, or split v2 archives reusing unchanged files' payload chunks of the previous snapshot
CHANGE_DETECTION_MODES = ("legacy", "data", "metadata")
SPLIT_MODES = ("data", "metadata")
SOURCE_SPEC = re.compile(r"(?P<label>[A-Za-z0-9_-]+)\.(?P<kind>pxar|img):(?P<path>.+)", re.DOTALL)


@dataclass(frozen=True)
class BackupSource:
    label: str
    kind: str  # "pxar" or "img"
    path: Path

    @property
    def filename(self) -> str:
        return f"{self.label}.{self.kind}.{'didx' if self.kind == 'pxar' else 'fidx'}"

    @property
    def split_filenames(self) -> tuple[str, str]:
        """Metadata and payload index of a directory backed up as a split archive."""
        return f"{self.label}.mpxar.didx", f"{self.label}.ppxar.didx"


def _default_image_label(path: Path) -> str:
    stem = path.name.rsplit(".", 1)[0] if "." in path.name.lstrip(".") else path.name
    label = re.sub(r"[^A-Za-z0-9_-]", "_", stem)
    return label or "image"


def parse_sources(specs: list[str]) -> list[BackupSource]:
    """``LABEL.pxar:DIR``, ``LABEL.img:FILE`` or a bare path: a directory becomes ``root.pxar``,
    a file or block device ``<its name without extension>.img``."""
    sources = []
    for spec in specs:
        match = SOURCE_SPEC.fullmatch(spec)
        if match:
            source = BackupSource(match["label"], match["kind"], Path(match["path"]))
        else:
            path = Path(spec)
            try:
                mode = path.stat().st_mode
            except OSError as exc:
                raise DatastoreError(f"backup source {spec}: {exc.strerror}") from None
            if stat.S_ISDIR(mode):
                source = BackupSource("root", "pxar", path)
            else:
                source = BackupSource(_default_image_label(path), "img", path)
        if source.label == "catalog" and source.kind == "pxar":
            raise DatastoreError("the archive label 'catalog' is reserved for the file catalog")
        if any(other.label == source.label for other in sources):
            raise DatastoreError(
                f"two sources would both be named {source.label!r}; name them as LABEL.pxar:PATH or LABEL.img:PATH"
            )
        sources.append(source)
    if not sources:
        raise DatastoreError("nothing to back up")
    return sources


@dataclass
class BackupResult:
    snapshot: BackupSnapshot
    manifest: Manifest
    stats: UploadStats
    seconds: float
    archives: dict[str, ArchiveResult] = field(default_factory=dict)
    #: unfinished snapshots of the group, left by killed backups, that this backup removed
    removed_leftovers: list[BackupSnapshot] = field(default_factory=list)
    #: mode ``metadata``: per metadata index, what was reused and what read
    change_detection: dict[str, ReuseStats] = field(default_factory=dict)
    #: things the user should know, such as a fall back from ``metadata`` to ``data``
    notes: list[str] = field(default_factory=list)


def _next_backup_time(datastore: Datastore, group: BackupGroup) -> int:
    """Now, but later than the group's newest snapshot (PBS refuses going back in time)."""
    newest = max(
        (info.snapshot.backup_time for info in datastore.list_snapshots(group, include_unfinished=True)), default=None
    )
    now = int(time.time())
    if newest is not None and newest >= now:
        time.sleep(max(0.0, newest + 1 - time.time()))
        now = newest + 1
    return now


def _backup_image(uploader: ChunkUploader, source: Path, index_path: Path, sync: bool) -> ArchiveResult:
    pending: deque = deque()
    size = 0
    with FixedIndexWriter(index_path, IMAGE_CHUNK_SIZE, sync) as writer, open(source, "rb", buffering=0) as image:
        while True:
            block = bytearray(IMAGE_CHUNK_SIZE)
            filled = 0
            with memoryview(block) as view:
                while filled < IMAGE_CHUNK_SIZE:
                    count = image.readinto(view[filled:])
                    if not count:
                        break
                    filled += count
            if not filled:
                break
            del block[filled:]
            size += filled
            pending.append(uploader.submit(bytes(block)))
            while len(pending) > uploader.max_pending:
                writer.add_digest(pending.popleft().result())
            if filled < IMAGE_CHUNK_SIZE:
                break
        while pending:
            writer.add_digest(pending.popleft().result())
        if sync:
            uploader.chunk_store.sync()
        index_csum = writer.close(size)
    return ArchiveResult(size, index_csum, writer.chunk_count)


def _backup_directories(
    uploader: ChunkUploader, sources: list[BackupSource], snapshot_dir: Path, sync: bool
) -> dict[str, ArchiveResult]:
    results = {}
    with ChunkingWriter(uploader, snapshot_dir / CATALOG_NAME, CATALOG_AVERAGE_CHUNK_SIZE, sync) as catalog_sink:
        catalog = CatalogWriter(catalog_sink)
        for source in sources:
            with ChunkingWriter(uploader, snapshot_dir / source.filename, PXAR_AVERAGE_CHUNK_SIZE, sync) as archive:
                catalog.start_directory(source.filename)
                encode_tree(source.path, archive, catalog)
                catalog.end_directory()
                results[source.filename] = archive.finish()
                log.info(
                    "%s: %d bytes in %d chunks",
                    source.filename,
                    results[source.filename].size,
                    results[source.filename].chunk_count,
                )
        catalog.finish()
        results[CATALOG_NAME] = catalog_sink.finish()
    return results


class PreviousPayloadIndex:
    """The payload index of the previous snapshot, as ``tapefs.pxar.reuse`` asks for it."""

    def __init__(self, index: DynamicIndex):
        self.index = index
        self.size = index.size

    def chunks_covering(self, start: int, end: int) -> tuple[list[PayloadChunk], int, int]:
        index = self.index
        first, last = index.find_chunk(start), index.find_chunk(end - 1)
        chunks = []
        for position in range(first, last + 1):
            chunk_start, chunk_end = index.chunk_range(position)
            chunks.append(PayloadChunk(position, chunk_end - chunk_start, index.digests[position]))
        return chunks, start - index.chunk_range(first)[0], index.ends[last] - end


@dataclass
class PreviousSplitArchive:
    """The metadata archive (open) and payload index of a directory in the previous snapshot."""

    snapshot: BackupSnapshot
    metadata: ArchiveReader
    payload: PreviousPayloadIndex


def find_previous_split_archive(
    datastore: Datastore, group: BackupGroup, source: BackupSource, crypt_config: CryptConfig | None
) -> tuple[PreviousSplitArchive | None, str | None]:
    """``source``'s split archive in the newest finished snapshot of ``group`` (the one PBS
    compares with), if it is usable with ``crypt_config``; otherwise None and why not."""
    metadata_name, payload_name = source.split_filenames
    snapshots = datastore.list_snapshots(group)
    if not snapshots:
        return None, f"{group} has no previous snapshot"
    info = snapshots[-1]
    if metadata_name not in info.files or payload_name not in info.files:
        return None, f"the previous snapshot {info.snapshot} has no split archive {metadata_name}"
    try:
        reader = SnapshotReader(datastore, info.snapshot, crypt_config)
        wanted_mode = "encrypt" if crypt_config is not None else "none"
        if reader.file_info(metadata_name).crypt_mode != wanted_mode:
            return None, f"the previous snapshot {info.snapshot} was backed up with another crypt mode"
        payload = PreviousPayloadIndex(reader.open_index(payload_name))  # type: ignore[arg-type]
        metadata = reader.open_archive(metadata_name, readahead_chunks=0)
    except (DatastoreError, OSError) as error:
        return None, f"the previous snapshot {info.snapshot} cannot serve as the reference: {error}"
    return PreviousSplitArchive(info.snapshot, metadata, payload), None


def _backup_split_directories(
    uploader: ChunkUploader,
    sources: list[BackupSource],
    snapshot_dir: Path,
    sync: bool,
    previous: dict[str, PreviousSplitArchive],
    reuse_stats: dict[str, ReuseStats],
) -> dict[str, ArchiveResult]:
    results = {}
    for source in sources:
        metadata_name, payload_name = source.split_filenames
        with (
            ChunkingWriter(uploader, snapshot_dir / metadata_name, PXAR_AVERAGE_CHUNK_SIZE, sync) as metadata,
            ChunkingWriter(uploader, snapshot_dir / payload_name, PXAR_AVERAGE_CHUNK_SIZE, sync) as payload,
        ):
            options = {}
            reference = previous.get(source.label)
            if reference is not None:
                try:
                    accessor = Accessor(reference.metadata)
                except PxarError as error:
                    raise DatastoreError(f"{metadata_name} of {reference.snapshot}: {error}") from None
                stats = reuse_stats[metadata_name] = ReuseStats()
                options["walker"] = functools.partial(
                    ReusingTreeWalker, previous=accessor, previous_payload=reference.payload, stats=stats
                )
            encode_tree(
                source.path, metadata, payload_out=payload, payload_boundary=payload.suggest_boundary, **options
            )
            # PBS lists the payload index before the metadata index
            results[payload_name] = payload.finish()
            results[metadata_name] = metadata.finish()
        for name in source.split_filenames:
            log.info("%s: %d bytes in %d chunks", name, results[name].size, results[name].chunk_count)
    return results


def backup(
    datastore: Datastore,
    group: BackupGroup,
    sources: list[BackupSource],
    crypt_config: CryptConfig | None = None,
    backup_time: int | None = None,
    sync: bool = True,
    change_detection_mode: str = "legacy",
    progress: ProgressCallback | None = None,
    upload_concurrency: int | None = None,
) -> BackupResult:
    """``change_detection_mode`` is PBS's: ``legacy`` writes pxar v1 archives and a catalog,
    ``data`` split archives, ``metadata`` split archives reusing the previous snapshot's
    payload for unchanged files (see the module docstring). ``progress`` gets the bytes read;
    ``upload_concurrency`` chunks are stored at once (default: the datastore's)."""
    if change_detection_mode not in CHANGE_DETECTION_MODES:
        raise DatastoreError(
            f"unknown change detection mode {change_detection_mode!r} (expected {' or '.join(CHANGE_DETECTION_MODES)})"
        )
    started = time.monotonic()
    crypt_mode = "encrypt" if crypt_config is not None else "none"
    with datastore_lock(datastore.root):
        # Leftovers of this group's killed backups go first (one still being written stays).
        removed = datastore.remove_abandoned_snapshots(group)
        if backup_time is None:
            backup_time = _next_backup_time(datastore, group)
        snapshot = BackupSnapshot(group, backup_time)
        previous: dict[str, PreviousSplitArchive] = {}
        change_detection: dict[str, ReuseStats] = {}
        notes = []
        if change_detection_mode == "metadata":
            for source in sources:
                if source.kind != "pxar":
                    continue
                reference, reason = find_previous_split_archive(datastore, group, source, crypt_config)
                if reference is None:
                    notes.append(f"{source.split_filenames[0]}: {reason}; reading every file (as mode data)")
                    log.info(notes[-1])
                else:
                    previous[source.label] = reference
        with datastore.writing_snapshot(snapshot) as snapshot_dir:
            try:
                meter = ProgressMeter("backup", progress) if progress is not None else None
                with ChunkUploader(
                    datastore.chunk_store,
                    crypt_config,
                    workers=upload_concurrency or datastore.upload_concurrency,
                    progress=meter,
                ) as uploader:
                    archives = {}
                    for source in sources:
                        if source.kind == "img":
                            archives[source.filename] = _backup_image(
                                uploader, source.path, snapshot_dir / source.filename, sync
                            )
                    directories = [source for source in sources if source.kind == "pxar"]
                    if directories and change_detection_mode in SPLIT_MODES:
                        archives.update(
                            _backup_split_directories(
                                uploader, directories, snapshot_dir, sync, previous, change_detection
                            )
                        )
                    elif directories:
                        archives.update(_backup_directories(uploader, directories, snapshot_dir, sync))
                manifest = Manifest(group.backup_type, group.backup_id, backup_time)
                for source in sources:
                    if source.kind == "pxar" and change_detection_mode in SPLIT_MODES:
                        metadata_name, payload_name = source.split_filenames
                        filenames = [payload_name, metadata_name]
                    else:
                        filenames = [source.filename]
                    for filename in filenames:
                        manifest.add_file(filename, archives[filename].size, archives[filename].index_csum, crypt_mode)
                if CATALOG_NAME in archives:
                    manifest.add_file(
                        CATALOG_NAME, archives[CATALOG_NAME].size, archives[CATALOG_NAME].index_csum, crypt_mode
                    )
                if crypt_config is not None:
                    manifest.sign(crypt_config)
                manifest.save(snapshot_dir)
                datastore.publish_snapshot(snapshot)
            except BaseException:
                shutil.rmtree(snapshot_dir, ignore_errors=True)
                raise
            finally:
                for reference in previous.values():
                    reference.metadata.close()
    return BackupResult(
        snapshot, manifest, uploader.stats, time.monotonic() - started, archives, removed, change_detection, notes
    )
