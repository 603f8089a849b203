"""What a tape backup takes from a snapshot, as PBS takes it: the pxar of a snapshot archive
carries each file's stat timestamp (seconds floored, nanoseconds 0..999999999 in the ENTRY item)
and extraction puts it back; the chunks go to tape in PBS's order (`chunk-order`)."""
import io
import os
import stat
import struct

import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.manifest import MANIFEST_BLOB_NAME, Manifest
from tapefs.datastore.naming import BackupSnapshot
from tapefs.errors import DataDamaged
from tapefs.jobs.snapshot_files import (
    decode_snapshot_pxar,
    encode_snapshot_pxar,
    snapshot_digests,
    write_snapshot_files,
)
from tapefs.pxar import format as fmt
from tapefs.pxar.encoder import Encoder
from tapefs.pxar.entry import Metadata
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


def test_a_snapshot_archive_is_only_the_snapshot_files_the_manifest_names(tmp_path):
    """R5: what a restore writes comes from a snapshot archive read from tape. Only plain files
    are taken, with UTF-8 names, and every file the manifest names must be one of them (a name
    like `../../x.fidx` would be read from outside the snapshot); anything else is damaged data
    (exit status 6) naming where it was read."""

    def archive(manifest_files=(), extra=None, name=b"f"):
        manifest = Manifest("host", "a", 1704067200)
        for filename in manifest_files:
            manifest.add_file(filename, 0, bytes(32))
        out = io.BytesIO()
        encoder = Encoder(out, Metadata(mode=stat.S_IFDIR | 0o755))
        blob = manifest.encode()
        encoder.add_file(MANIFEST_BLOB_NAME.encode(), Metadata(mode=stat.S_IFREG | 0o644), len(blob), blob)
        encoder.add_file(name, Metadata(mode=stat.S_IFREG | 0o644), 1, b"x")
        if extra:
            extra(encoder)
        encoder.finish()
        return out.getvalue()

    assert set(decode_snapshot_pxar(archive(["f"]), "here")) == {MANIFEST_BLOB_NAME, "f"}
    link = Metadata(mode=stat.S_IFLNK | 0o777)
    for data, words in [
        (archive(["../../x.fidx"]), "the manifest names '../../x.fidx', which the snapshot archive does not hold"),
        (archive(["missing.fidx"]), "the manifest names 'missing.fidx'"),
        (archive(extra=lambda e: e.add_symlink(b"l", link, b"/tmp")), "unexpected entry b'l'"),
        (archive(name=b"\xff"), "is not UTF-8"),
    ]:
        with pytest.raises(DataDamaged, match="^here: ") as error:
            decode_snapshot_pxar(data, "here")
        assert words in str(error.value)
