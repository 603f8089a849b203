"""The content of a snapshot archive (docs/tape-format.md): a pxar v1 archive of one root directory and
the snapshot's files, and its extraction back into a datastore."""

from __future__ import annotations

import io
import logging
import os
import stat
from collections.abc import Collection
from pathlib import Path

from tapefs.config.private_files import restrict_file
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.manifest import MANIFEST_BLOB_NAME, Manifest
from tapefs.datastore.naming import BackupNamespace, BackupSnapshot
from tapefs.datastore.snapshot_reader import load_index
from tapefs.jobs.errors import ArchiveDamaged, JobError
from tapefs.pxar import format as fmt
from tapefs.pxar.decoder import Decoder
from tapefs.pxar.encoder import Encoder
from tapefs.pxar.entry import Kind, Metadata
from tapefs.pxar.source import BytesSource
from tapefs.tapeformat.snapshot_archive import SnapshotPath

log = logging.getLogger(__name__)

CLIENT_LOG_NAME = "client.log.blob"
#: PBS's root directory mode (sic: no x bit).
ROOT_MODE = fmt.S_IFDIR | 0o664


def tape_snapshot_path(snapshot: BackupSnapshot) -> str:
    """`ns/a/ns/b/type/id/time` as written in snapshot archives and catalogs."""
    prefix = "".join(f"ns/{name}/" for name in snapshot.group.namespace.components)
    return f"{prefix}{snapshot}"


def parse_tape_snapshot_path(path: str) -> BackupSnapshot:
    parsed = SnapshotPath.parse(path)
    namespace = BackupNamespace(tuple(parsed.namespace.split("/")[1::2])) if parsed.namespace else BackupNamespace()
    return BackupSnapshot.parse(f"{parsed.backup_type}/{parsed.backup_id}/{parsed.backup_time}", namespace)


def snapshot_file_names(datastore: Datastore, snapshot: BackupSnapshot) -> list[str]:
    """Manifest first, then the manifest's files in manifest order, then the client log."""
    manifest = datastore.load_manifest(snapshot)
    names = [MANIFEST_BLOB_NAME] + [info.filename for info in manifest.files]
    if (datastore.snapshot_path(snapshot) / CLIENT_LOG_NAME).exists():
        names.append(CLIENT_LOG_NAME)
    return names


#: Where a chunk whose file cannot be stat'ed sorts (PBS puts it last).
_NO_INODE = 2**64 - 1


def snapshot_digests(
    datastore: Datastore,
    snapshot: BackupSnapshot,
    chunk_order: str = "inode",
    skip: Collection[bytes] = frozenset(),
) -> list[bytes]:
    """The chunks a snapshot references that are not in `skip`, in PBS's tape order: indexes in
    reverse manifest order, each index's chunks in `chunk_order` (tape_config.CHUNK_ORDERS),
    every chunk once."""
    manifest = datastore.load_manifest(snapshot)
    digests: list[bytes] = []
    directory = datastore.snapshot_path(snapshot)
    for info in reversed(manifest.files):
        if info.filename.endswith((".didx", ".fidx")):
            wanted = [d for d in load_index(directory / info.filename, info.filename).digests if d not in skip]
            if chunk_order == "inode":
                wanted.sort(key=lambda digest: _chunk_inode(datastore, digest))
            digests.extend(wanted)
    return list(dict.fromkeys(digests))


def _chunk_inode(datastore: Datastore, digest: bytes) -> int:
    try:
        return os.stat(datastore.chunk_store.chunk_path(digest)).st_ino
    except OSError:
        return _NO_INODE


def encode_snapshot_pxar(datastore: Datastore, snapshot: BackupSnapshot) -> bytes:
    directory = datastore.snapshot_path(snapshot)
    out = io.BytesIO()
    encoder = Encoder(out, Metadata(mode=ROOT_MODE))
    for name in snapshot_file_names(datastore, snapshot):
        path = directory / name
        content = path.read_bytes()
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise JobError(f"{path}: not a regular file")
        # PBS takes the whole stat timestamp: seconds floored, nanoseconds 0..999999999.
        mtime_secs, mtime_nanos = divmod(info.st_mtime_ns, 1_000_000_000)
        encoder.add_file(
            name,
            Metadata(
                mode=info.st_mode, uid=info.st_uid, gid=info.st_gid, mtime_secs=mtime_secs, mtime_nanos=mtime_nanos
            ),
            len(content),
            content,
        )
    encoder.finish()
    return out.getvalue()


def decode_snapshot_pxar(data: bytes, source: str) -> dict[str, tuple[bytes, Metadata]]:
    """File name → (content, metadata); only a root directory of regular files is accepted, among
    them the manifest and every file it names (so no name taken from it leaves the directory)."""
    decoder = Decoder(BytesSource(data, source))
    files: dict[str, tuple[bytes, Metadata]] = {}
    for entry in decoder:
        if entry.path == b"":
            continue
        if entry.kind is not Kind.FILE or b"/" in entry.path:
            raise ArchiveDamaged(f"{source}: unexpected entry {entry.path!r} in a snapshot archive")
        try:
            name = entry.path.decode()
        except UnicodeDecodeError:
            raise ArchiveDamaged(f"{source}: entry {entry.path!r} of a snapshot archive is not UTF-8") from None
        files[name] = (decoder.read_content(entry), entry.metadata)
    if MANIFEST_BLOB_NAME not in files:
        raise ArchiveDamaged(f"{source}: snapshot archive without {MANIFEST_BLOB_NAME}")
    manifest = Manifest.decode(files[MANIFEST_BLOB_NAME][0], f"{source}: {MANIFEST_BLOB_NAME}")
    for info in manifest.files:
        if info.filename not in files:
            raise ArchiveDamaged(
                f"{source}: the manifest names {info.filename!r}, which the snapshot archive does not hold"
            )
    return files


def write_snapshot_files(directory: Path, files: dict[str, tuple[bytes, Metadata]]) -> None:
    """Write the files into an existing, empty snapshot directory, the manifest last (a snapshot
    without manifest is unfinished, so a crash leaves nothing that looks complete)."""
    names = [name for name in files if name != MANIFEST_BLOB_NAME] + [MANIFEST_BLOB_NAME]
    for name in names:
        content, metadata = files[name]
        temp = directory / f"{name}.tmp"
        with open(temp, "wb") as file:
            # a datastore's files are private whatever mode they had where the tape was written
            restrict_file(file.fileno())
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.utime(temp, ns=(metadata.mtime_ns, metadata.mtime_ns))
        os.replace(temp, directory / name)


def manifest_digests(directory: Path, files: dict[str, tuple[bytes, Metadata]]) -> list[bytes]:
    """Chunks referenced by the indexes of extracted snapshot files (written in `directory`)."""
    manifest = Manifest.decode(files[MANIFEST_BLOB_NAME][0])
    digests: list[bytes] = []
    for info in manifest.files:
        if info.filename.endswith((".didx", ".fidx")):
            digests.extend(load_index(directory / info.filename, info.filename).digests)
    return list(dict.fromkeys(digests))
