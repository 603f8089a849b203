"""What a tape backup takes from a snapshot, as PBS takes it: the pxar of a snapshot archive
carries each file's stat timestamp (seconds floored, nanoseconds 0..999999999 in the ENTRY item)
and extraction puts it back; the chunks go to tape in PBS's order (`chunk-order`)."""
import os
import struct

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupSnapshot
from tapefs.jobs.snapshot_files import (
    decode_snapshot_pxar,
    encode_snapshot_pxar,
    snapshot_digests,
    write_snapshot_files,
)
from tapefs.pxar import format as fmt
from tests.helpers.synthetic_snapshots import ARCHIVE_NAME, make_snapshot, store_chunks

MTIMES = {"index.json.blob": 1_700_000_000_123_456_789, ARCHIVE_NAME: -1_500_000_001}


def pbs_entry(info: os.stat_result) -> bytes:
    """ENTRY as PBS writes it from stat: mode, flags, uid, gid, mtime secs i64, nanos u32, padding."""
    secs, nanos = divmod(info.st_mtime_ns, 1_000_000_000)
    body = struct.pack("<QQIIqII", info.st_mode, 0, info.st_uid, info.st_gid, secs, nanos, 0)
    return struct.pack("<QQ", fmt.ENTRY, 16 + len(body)) + body


def test_mtime_nanoseconds_kept_in_snapshot_archives(tmp_path):
    datastore = Datastore.create(tmp_path / "store", "store", prefix_dirs=False)
    snapshot = BackupSnapshot.parse("host/a/2024-01-01T00:00:00Z")
    make_snapshot(datastore, snapshot, pieces=[b"one", b"two"])
    directory = datastore.snapshot_path(snapshot)
    for name, mtime_ns in MTIMES.items():
        os.utime(directory / name, ns=(mtime_ns, mtime_ns))
    pxar = encode_snapshot_pxar(datastore, snapshot)
    for name in MTIMES:
        assert pbs_entry((directory / name).stat()) in pxar
    files = decode_snapshot_pxar(pxar, "test")
    assert files["index.json.blob"][1].mtime_nanos == 123_456_789
    assert (files[ARCHIVE_NAME][1].mtime_secs, files[ARCHIVE_NAME][1].mtime_nanos) == (-2, 499_999_999)
    restored = tmp_path / "restored"
    restored.mkdir()
    write_snapshot_files(restored, files)
    assert {name: (restored / name).stat().st_mtime_ns for name in MTIMES} == MTIMES


def test_chunk_order_by_inode_per_index_as_pbs_orders_them(tmp_path):
    """PBS: indexes in reverse manifest order; inside each the chunks not skipped, sorted by the
    inode of their chunk file (a chunk that cannot be stat'ed last); every chunk once."""
    datastore = Datastore.create(tmp_path / "store", "store", prefix_dirs=False)
    pieces = [n.to_bytes(2, "little") * 8 for n in range(40)]
    # Chunk files created in reverse, so inode order is not index order.
    digests = store_chunks(datastore, pieces[::-1])[::-1]
    snapshot = BackupSnapshot.parse("host/a/2024-01-01T00:00:00Z")
    make_snapshot(datastore, snapshot, pieces=pieces + pieces[:5])
    missing, skipped = digests[3], digests[7]
    datastore.chunk_store.chunk_path(missing).unlink()

    def inode(digest):
        path = datastore.chunk_store.chunk_path(digest)
        return path.stat().st_ino if path.exists() else 2**64 - 1

    index_order = [d for d in digests if d != skipped]
    assert snapshot_digests(datastore, snapshot, "none", skip={skipped}) == index_order
    by_inode = snapshot_digests(datastore, snapshot, "inode", skip={skipped})
    assert by_inode == sorted(index_order, key=inode) and by_inode[-1] == missing
    assert by_inode != index_order
