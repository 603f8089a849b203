"""Back up directories and image files into a new snapshot (docs/datastore-format.md, "Writing a snapshot").

A directory becomes, in PBS's change-detection mode ``legacy``, ``<label>.pxar.didx`` (pxar
v1) with the file catalog ``catalog.pcat1.didx`` beside it; in mode ``data`` a split pxar v2
archive ``<label>.mpxar.didx`` (metadata) + ``<label>.ppxar.didx`` (file contents, chunks cut
where files start) and, as PBS does, no catalog. A file or block device becomes
``<label>.img.fidx`` in 4 MiB chunks. The manifest is written last, so a snapshot without one
is visibly unfinished; on failure the snapshot directory is removed again. A backup that is killed
cannot do that: the next backup of the group removes what it left (see
``Datastore.remove_abandoned_snapshots``), recognising it by its free lock.

This job module sits above both the datastore and the pxar layer.
"""

import logging
import re
import shutil
import stat
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from tapefs.datastore.chunk_uploader import ChunkUploader, UploadStats
from tapefs.datastore.chunker import CATALOG_AVERAGE_CHUNK_SIZE, IMAGE_CHUNK_SIZE, PXAR_AVERAGE_CHUNK_SIZE
from tapefs.datastore.chunking_writer import ArchiveResult, ChunkingWriter
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.datastore_lock import datastore_lock
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.fixed_index import FixedIndexWriter
from tapefs.datastore.manifest import Manifest
from tapefs.datastore.naming import BackupGroup, BackupSnapshot
from tapefs.progress import ProgressCallback, ProgressMeter
from tapefs.pxar.catalog import CatalogWriter
from tapefs.pxar.encoder import encode_tree

log = logging.getLogger(__name__)

CATALOG_NAME = "catalog.pcat1.didx"
#: PBS's ``--change-detection-mode`` values tapefs writes: v1 archives, or split v2 archives
#: re-reading every file (``metadata``, which reuses unchanged files' chunks, is not offered)
CHANGE_DETECTION_MODES = ("legacy", "data")
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


def _backup_split_directories(
    uploader: ChunkUploader, sources: list[BackupSource], snapshot_dir: Path, sync: bool
) -> dict[str, ArchiveResult]:
    results = {}
    for source in sources:
        metadata_name, payload_name = source.split_filenames
        with (
            ChunkingWriter(uploader, snapshot_dir / metadata_name, PXAR_AVERAGE_CHUNK_SIZE, sync) as metadata,
            ChunkingWriter(uploader, snapshot_dir / payload_name, PXAR_AVERAGE_CHUNK_SIZE, sync) as payload,
        ):
            encode_tree(source.path, metadata, payload_out=payload, payload_boundary=payload.suggest_boundary)
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
    ``data`` split archives (see the module docstring). ``progress`` gets the bytes read;
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
                    if directories and change_detection_mode == "data":
                        archives.update(_backup_split_directories(uploader, directories, snapshot_dir, sync))
                    elif directories:
                        archives.update(_backup_directories(uploader, directories, snapshot_dir, sync))
                manifest = Manifest(group.backup_type, group.backup_id, backup_time)
                for source in sources:
                    if source.kind == "pxar" and change_detection_mode == "data":
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
    return BackupResult(snapshot, manifest, uploader.stats, time.monotonic() - started, archives, removed)
