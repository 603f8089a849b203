"""Restore one archive of a snapshot: a pxar archive into a directory, an image into a file.

A pxar archive is either one ``NAME.pxar.didx`` (v1) or, as PBS's ``data``/``metadata``
change-detection modes write it, the pair ``NAME.mpxar.didx`` + ``NAME.ppxar.didx`` (v2);
``NAME.pxar`` names either form, as with proxmox-backup-client.

Extraction itself is the pxar layer's (it never writes outside the target); this job module
connects it to the datastore's random-access reader.

Nothing that exists in the target is replaced unless ``overwrite`` allows it: a pxar restore
into an existing directory first looks up the names already there in the archive and refuses,
before writing anything, if one would be replaced; an image is never written over an existing
file (a block device excepted) unless ``Overwrite.FILES`` is given.
"""

import logging
import os
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tapefs.datastore.archive_reader import ArchiveReader
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.naming import BackupSnapshot
from tapefs.datastore.snapshot_reader import SnapshotReader, server_archive_name
from tapefs.pxar.accessor import Accessor
from tapefs.pxar.decoder import Decoder
from tapefs.pxar.extract import Overwrite, check_conflicts, extract
from tapefs.s3.errors import S3ColdObject

log = logging.getLogger(__name__)

#: readahead for a pxar pass: both cores decode while the extractor consumes
RESTORE_READAHEAD_CHUNKS = 4
#: image chunks are decoded and written in parallel, each with pwrite at its offset
IMAGE_RESTORE_WORKERS = 2


@dataclass
class RestoreResult:
    #: the index file restored from ("A + B" for a split pxar archive)
    archive: str
    target: Path
    #: archive bytes read (pxar stream(s) or image size)
    size: int
    entries: int = 0
    skipped: int = 0


def restore(
    datastore: Datastore,
    snapshot: BackupSnapshot,
    archive_name: str,
    target: str | os.PathLike,
    crypt_config: CryptConfig | None = None,
    sync: bool = False,
    overwrite: Overwrite = Overwrite.NONE,
) -> RestoreResult:
    """Restore one archive. Files appear under their final name only when complete; ``sync``
    also fsyncs a restored image before that (off by default, as for tar or cp).

    An existing entry in the way raises ``ExistingEntryError`` (a ``PxarError``) naming it, or
    for an image a ``DatastoreError``, unless ``overwrite`` allows replacing it.
    """
    filename = server_archive_name(archive_name)
    try:
        return _restore_archive(datastore, snapshot, filename, target, crypt_config, sync, overwrite)
    except S3ColdObject as error:
        raise S3ColdObject(f"snapshot {snapshot}, archive {filename}: {error}") from None


def _restore_archive(
    datastore: Datastore,
    snapshot: BackupSnapshot,
    filename: str,
    target: str | os.PathLike,
    crypt_config: CryptConfig | None,
    sync: bool,
    overwrite: Overwrite,
) -> RestoreResult:
    reader = SnapshotReader(datastore, snapshot, crypt_config)
    if filename.endswith((".pxar.didx", ".mpxar.didx", ".ppxar.didx")):
        metadata_name, payload_name = pxar_archive_names(reader, filename)
        if payload_name is not None:
            return _restore_split_pxar(reader, metadata_name, payload_name, Path(target), overwrite)
        return _restore_pxar(reader, filename, Path(target), overwrite)
    if filename.endswith(".img.fidx"):
        return _restore_image(reader, filename, Path(target), sync, overwrite)
    raise DatastoreError(f"cannot restore {filename}: only .pxar and .img archives can be restored")


def pxar_archive_names(reader: SnapshotReader, filename: str) -> tuple[str, str | None]:
    """(archive, payload archive or None) that hold the pxar archive ``filename`` names.

    ``NAME.pxar.didx`` is the v1 archive if the snapshot has it, else the split pair; a
    ``.mpxar``/``.ppxar`` name means the pair.
    """
    label = filename.rsplit(".", 2)[0]
    if filename.endswith(".pxar.didx") and reader.manifest.lookup(filename) is not None:
        return filename, None
    metadata_name, payload_name = f"{label}.mpxar.didx", f"{label}.ppxar.didx"
    has_metadata = reader.manifest.lookup(metadata_name) is not None
    has_payload = reader.manifest.lookup(payload_name) is not None
    if has_metadata and has_payload:
        return metadata_name, payload_name
    if has_metadata or has_payload:
        present, missing = (metadata_name, payload_name) if has_metadata else (payload_name, metadata_name)
        raise DatastoreError(
            f"snapshot {reader.snapshot} has {present} but not {missing}; a split pxar archive needs both"
        )
    # neither form: opening it reports the archives the snapshot does have
    return filename, None


def _check_directory_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise DatastoreError(f"restore target {target} exists and is not a directory")


def _check_pxar_conflicts(reader: SnapshotReader, filename: str, target: Path, overwrite: Overwrite) -> None:
    """Refuse before writing anything if an existing entry of ``target`` would be replaced
    (the extractor refuses again, at the entry, should one appear meanwhile).

    With everything allowed only a directory meeting a non-directory is left to refuse, which
    the extractor does at that entry; a check would cost a second pass over an archive whose
    names are all in the target already.
    """
    if target.is_dir() and overwrite != Overwrite.ALL:
        with reader.open_archive(filename, readahead_chunks=0) as archive:
            check_conflicts(Accessor(archive), target, overwrite)


def _restore_pxar(reader: SnapshotReader, filename: str, target: Path, overwrite: Overwrite) -> RestoreResult:
    _check_directory_target(target)
    _check_pxar_conflicts(reader, filename, target, overwrite)
    with reader.open_archive(filename, readahead_chunks=RESTORE_READAHEAD_CHUNKS) as archive:
        stats = extract(Decoder(archive), target, overwrite=overwrite)
        return RestoreResult(filename, target, archive.size, stats.entries, stats.skipped)


def _restore_split_pxar(
    reader: SnapshotReader, metadata_name: str, payload_name: str, target: Path, overwrite: Overwrite
) -> RestoreResult:
    _check_directory_target(target)
    # file contents live in the payload stream; names and types are all in the metadata one
    _check_pxar_conflicts(reader, metadata_name, target, overwrite)
    with (
        reader.open_archive(metadata_name, readahead_chunks=RESTORE_READAHEAD_CHUNKS) as metadata,
        reader.open_archive(payload_name, readahead_chunks=RESTORE_READAHEAD_CHUNKS) as payload,
    ):
        stats = extract(Decoder(metadata, payload), target, overwrite=overwrite)
        return RestoreResult(
            f"{metadata_name} + {payload_name}", target, metadata.size + payload.size, stats.entries, stats.skipped
        )


def _restore_image(
    reader: SnapshotReader, filename: str, target: Path, sync: bool, overwrite: Overwrite
) -> RestoreResult:
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    with reader.open_archive(filename, readahead_chunks=0) as archive:
        if mode is not None and stat.S_ISBLK(mode):
            fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC)
            try:
                _write_chunks(archive, fd, sparse=False)
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            return RestoreResult(filename, target, archive.size)
        if mode is not None and (Overwrite.FILES not in overwrite or not stat.S_ISREG(mode)):
            raise DatastoreError(f"restore target {target} already exists")
        # a temp name until complete, so an interrupted restore never looks like a whole image
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            try:
                _write_chunks(archive, fd, sparse=True)
                os.ftruncate(fd, archive.size)
                os.fchmod(fd, 0o644 & ~_umask())
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp_name, target)
        except BaseException:
            try:
                os.unlink(temp_name)
            except FileNotFoundError:
                pass
            raise
        return RestoreResult(filename, target, archive.size)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_chunks(archive: ArchiveReader, fd: int, sparse: bool) -> None:
    """Decode and write chunks on worker threads, each at its own offset; with ``sparse`` an
    all-zero chunk is skipped and stays a hole (the caller sets the final size)."""

    zeros = bytes(archive.index.chunk_size)  # .img archives always have a fixed index

    def write_chunk(i: int) -> None:
        start, _ = archive.index.chunk_range(i)
        data = archive.load_chunk(i)
        if sparse and data == zeros[: len(data)]:
            return
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, start)
            view = view[written:]
            start += written

    with ThreadPoolExecutor(max_workers=IMAGE_RESTORE_WORKERS, thread_name_prefix="image-restore") as pool:
        for _ in pool.map(write_chunk, range(archive.index.chunk_count)):
            pass
