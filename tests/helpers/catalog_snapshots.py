"""Snapshots for file catalog tests: directory trees and split (v2) archives encoded the way the
client does, stored in a datastore; and helpers that read the catalog back."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tapefs.catalog.file_catalog import EntryRow, FileCatalog
from tapefs.datastore.archive_reader import ArchiveReader
from tapefs.datastore.chunk_reader import ChunkReader
from tapefs.datastore.chunk_uploader import ChunkUploader
from tapefs.datastore.chunker import PXAR_AVERAGE_CHUNK_SIZE
from tapefs.datastore.chunking_writer import ChunkingWriter
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.manifest import Manifest
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.pxar.encoder import encode_tree

# Small chunks, so that a tree of a few hundred KiB spans several and a damaged one hits a part.
SMALL_CHUNKS = 64 << 10


def store_streams(datastore: Datastore, snapshot: BackupSnapshot, write, names: list[str], chunk_size: int) -> None:
    """A finished snapshot whose indexes `names` are filled by `write(*writers)`."""
    directory = datastore.create_snapshot_dir(snapshot)
    manifest = Manifest(snapshot.group.backup_type, snapshot.group.backup_id, snapshot.backup_time)
    with ChunkUploader(datastore.chunk_store) as uploader:
        writers = [ChunkingWriter(uploader, directory / name, chunk_size, sync=False) for name in names]
        write(*writers)
        for name, writer in zip(names, writers):
            result = writer.finish()
            manifest.add_file(name, result.size, result.index_csum)
    manifest.save(directory)


def new_snapshot(backup_id: str = "test") -> BackupSnapshot:
    return BackupSnapshot(BackupGroup(BackupNamespace(), "host", backup_id), int(time.time()))


def backup_v2(
    datastore: Datastore, source: Path, backup_id: str = "v2", chunk_size: int = SMALL_CHUNKS
) -> BackupSnapshot:
    """`source` as a split archive: root.mpxar.didx + root.ppxar.didx."""
    snapshot = new_snapshot(backup_id)
    store_streams(
        datastore,
        snapshot,
        lambda meta, payload: encode_tree(source, meta, payload_out=payload),
        ["root.mpxar.didx", "root.ppxar.didx"],
        chunk_size,
    )
    return snapshot


def store_archive_bytes(
    datastore: Datastore, backup_id: str, streams: dict[str, bytes], chunk_size: int = PXAR_AVERAGE_CHUNK_SIZE
) -> BackupSnapshot:
    """A snapshot holding given stream bytes (e.g. the reference fixtures) under index names."""
    snapshot = new_snapshot(backup_id)

    def write(*writers):
        for writer, data in zip(writers, streams.values()):
            writer.write(data)

    store_streams(datastore, snapshot, write, list(streams), chunk_size)
    return snapshot


def open_stream(datastore: Datastore, snapshot: BackupSnapshot, index_name: str) -> ArchiveReader:
    index = DynamicIndex.load(datastore.snapshot_path(snapshot) / index_name)
    return ArchiveReader(index, ChunkReader(datastore.chunk_store))


def resolve(catalog: FileCatalog, root: EntryRow, path: bytes) -> EntryRow | None:
    entry = root
    for name in [part for part in path.split(b"/") if part]:
        entry = catalog.lookup(entry.id, name)
        if entry is None:
            return None
    return entry


def all_children(catalog: FileCatalog, parent_id: int, page: int = 1000) -> list[EntryRow]:
    rows, after = [], 0
    while batch := catalog.children(parent_id, after, page):
        rows += batch
        after = batch[-1].id
    return rows


def make_tree(root: Path) -> dict[str, bool]:
    """Files, nested dirs, a symlink, hardlinks, a fifo and, where the file system lets us,
    xattrs and a device node. Returns which of the optional parts exist."""
    root.mkdir()
    (root / "empty").write_bytes(b"")
    (root / "hello.txt").write_bytes(b"hello\n")
    (root / "big.bin").write_bytes(os.urandom(300_000))
    (root / "sub" / "deeper" / "deepest").mkdir(parents=True)
    (root / "sub" / "a").write_bytes(b"a" * 1000)
    (root / "sub" / "deeper" / "b").write_bytes(os.urandom(70_000))
    (root / "sub" / "deeper" / "deepest" / "c").write_bytes(b"c")
    (root / "sub" / "empty-dir").mkdir()
    (root / "many").mkdir()
    for index in range(40):
        if index % 10 == 0:
            (root / "many" / f"n{index:02d}").mkdir()
        (root / "many" / f"f{index:02d}").write_bytes(os.urandom(index * 37))
    os.symlink("hello.txt", root / "link-to-hello")
    os.symlink("/nowhere/at/all", root / "sub" / "dangling")
    os.link(root / "sub" / "a", root / "hard-a")
    os.link(root / "sub" / "a", root / "sub" / "deeper" / "hard-a-too")
    os.mkfifo(root / "fifo")
    os.chmod(root / "hello.txt", 0o640)
    os.utime(root / "hello.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    optional = {"xattrs": True, "device": True}
    try:
        os.setxattr(root / "hello.txt", "user.comment", b"greetings")
        os.setxattr(root / "sub", "user.dir", b"\x00\x01binary")
    except OSError:
        optional["xattrs"] = False
    try:
        os.mknod(root / "null", 0o620 | 0o020000, os.makedev(1, 3))
    except OSError:
        optional["device"] = False
    return optional
