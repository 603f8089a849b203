"""Restore one archive of a snapshot: a pxar archive into a directory, an image into a file.

Extraction itself is the pxar layer's (it never writes outside the target); this job module
connects it to the datastore's random-access reader.
"""

import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.naming import BackupSnapshot
from tapefs.datastore.snapshot_reader import SnapshotReader, server_archive_name
from tapefs.pxar.decoder import Decoder
from tapefs.pxar.extract import extract

log = logging.getLogger(__name__)

#: readahead for a whole-archive pass: both cores decode while the writer consumes
RESTORE_READAHEAD_CHUNKS = 4


@dataclass
class RestoreResult:
    archive: str
    target: Path
    #: archive bytes read (pxar stream or image size)
    size: int
    entries: int = 0
    skipped: int = 0


def restore(datastore: Datastore, snapshot: BackupSnapshot, archive_name: str, target: str | os.PathLike,
            crypt_config: CryptConfig | None = None) -> RestoreResult:
    filename = server_archive_name(archive_name)
    reader = SnapshotReader(datastore, snapshot, crypt_config)
    if filename.endswith(".pxar.didx"):
        return _restore_pxar(reader, filename, Path(target))
    if filename.endswith(".img.fidx"):
        return _restore_image(reader, filename, Path(target))
    raise DatastoreError(f"cannot restore {filename}: only .pxar and .img archives can be restored")


def _restore_pxar(reader: SnapshotReader, filename: str, target: Path) -> RestoreResult:
    if target.exists() and not target.is_dir():
        raise DatastoreError(f"restore target {target} exists and is not a directory")
    with reader.open_archive(filename, readahead_chunks=RESTORE_READAHEAD_CHUNKS) as archive:
        stats = extract(Decoder(archive), target)
        return RestoreResult(filename, target, archive.size, stats.entries, stats.skipped)


def _restore_image(reader: SnapshotReader, filename: str, target: Path) -> RestoreResult:
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    with reader.open_archive(filename, readahead_chunks=RESTORE_READAHEAD_CHUNKS) as archive:
        if mode is not None and stat.S_ISBLK(mode):
            with open(target, "r+b", buffering=0) as device:
                _copy_chunks(archive, device, sparse=False)
            return RestoreResult(filename, target, archive.size)
        if mode is not None:
            raise DatastoreError(f"restore target {target} already exists")
        # a temp name until complete, so an interrupted restore never looks like a whole image
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "r+b", buffering=0) as output:
                _copy_chunks(archive, output, sparse=True)
                output.truncate(archive.size)
                os.fsync(output.fileno())
            os.chmod(temp_name, 0o644 & ~_umask())
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


def _copy_chunks(archive, output, sparse: bool) -> None:
    zeros = b""
    for data in archive.iter_chunks():
        if sparse:
            if len(zeros) != len(data):
                zeros = bytes(len(data))
            if data == zeros:
                # leave a hole; truncate() at the end fixes the size
                output.seek(len(data), os.SEEK_CUR)
                continue
        view = memoryview(data)
        while view:
            written = output.write(view)
            view = view[written:]
