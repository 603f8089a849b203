"""Snapshots made directly on disk: a manifest and optionally one dynamic index over small
chunks. Fast histories for prune, garbage collection and sync tests."""

import hashlib

from tapefs.datastore.blob import encode_blob
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.dynamic_index import DynamicIndexWriter
from tapefs.datastore.manifest import MANIFEST_BLOB_NAME, Manifest
from tapefs.datastore.naming import BackupSnapshot

ARCHIVE_NAME = "data.pxar.didx"


def store_chunks(datastore: Datastore, pieces: list[bytes]) -> list[bytes]:
    """Insert each piece as an uncompressed chunk; returns the digests."""
    digests = []
    for piece in pieces:
        digest = hashlib.sha256(piece).digest()
        datastore.chunk_store.insert(digest, encode_blob(piece, compress=False))
        digests.append(digest)
    return digests


def make_snapshot(
    datastore: Datastore,
    snapshot: BackupSnapshot,
    finished: bool = True,
    protected: bool = False,
    pieces: list[bytes] = (),
) -> list[bytes]:
    """A snapshot; with ``pieces``, their chunks and ``data.pxar.didx`` over them. Returns the digests."""
    path = datastore.create_snapshot_dir(snapshot)
    group = snapshot.group
    manifest = Manifest(group.backup_type, group.backup_id, snapshot.backup_time)
    digests = store_chunks(datastore, list(pieces))
    if pieces:
        with DynamicIndexWriter(path / ARCHIVE_NAME, sync=False) as index:
            end = 0
            for piece, digest in zip(pieces, digests):
                end += len(piece)
                index.add_chunk(end, digest)
            csum = index.close()
        manifest.add_file(ARCHIVE_NAME, end, csum)
    if finished:
        (path / MANIFEST_BLOB_NAME).write_bytes(manifest.encode())
    if protected:
        (path / ".protected").touch()
    return digests
