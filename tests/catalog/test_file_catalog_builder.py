"""Recording real datastore snapshots in the file catalog, checked against the source trees."""
from __future__ import annotations

import itertools
import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from tapefs.catalog.file_catalog import ArchiveUnreadable, FileCatalog, FileCatalogError
from tapefs.catalog.file_catalog_builder import (
    produced_ahead,
    record_backed_up_snapshot,
    record_datastore_snapshot,
    record_snapshot,
)
from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.chunk_reader import ChunkReader
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.manifest import MANIFEST_BLOB_NAME, Manifest
from tapefs.datastore.naming import BackupGroup
from tapefs.pxar.encoder import encode_tree
from tests.helpers.catalog_snapshots import (
    SMALL_CHUNKS,
    all_children,
    backup_v2,
    make_tree,
    new_snapshot,
    open_stream,
    resolve,
    store_streams,
)

KIND_OF_FORMAT = {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo",
                  stat.S_IFCHR: "chardev", stat.S_IFBLK: "blockdev", stat.S_IFSOCK: "socket"}


def backup_v1(datastore, *specs: str, backup_id: str = "v1", crypt_config=None):
    return backup(datastore, BackupGroup.parse(f"host/{backup_id}"), parse_sources(list(specs)),
                  crypt_config=crypt_config, sync=False).snapshot


def entry_path(catalog: FileCatalog, row) -> bytes:
    names = []
    while row.parent is not None:
        names.append(row.name)
        row = catalog.entry(row.parent)
    return b"/".join(reversed(names))


def only_archive(catalog: FileCatalog, path: str):
    archives = catalog.archives(catalog.snapshot_id("store", path))
    assert len(archives) == 1
    return archives[0]


def assert_matches_source(catalog: FileCatalog, archive, source: Path, stream) -> None:
    """Every file of `source` is in the archive's entries with its lstat attributes, directory
    listings are the sorted names in id order, and each file's content is at its offset."""
    root = catalog.entry(archive.root_entry)
    assert (root.parent, root.name, root.kind, root.archive_id) == (None, b"", "dir", archive.id)
    walked = 1
    for directory, dirnames, filenames in os.walk(source):
        relative = os.fsencode(os.path.relpath(directory, source))
        directory_row = resolve(catalog, root, b"" if relative == b"." else relative)
        children = all_children(catalog, directory_row.id, page=7)
        assert [child.name for child in children] == sorted(os.fsencode(name) for name in dirnames + filenames)
        assert [child.id for child in children] == sorted(child.id for child in children)
        assert directory_row.nlink == 2 + sum(child.kind == "dir" for child in children)
        walked += len(children)
        for child in children:
            path = Path(directory) / os.fsdecode(child.name)
            info = os.lstat(path)
            assert catalog.lookup(directory_row.id, child.name) == child
            assert catalog.entry(child.id) == child
            assert (child.parent, child.archive_id) == (directory_row.id, archive.id)
            assert (child.mode, child.uid, child.gid, child.mtime_ns) == \
                   (info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns), path
            kind = KIND_OF_FORMAT[stat.S_IFMT(info.st_mode)]
            if child.kind == "hardlink":
                target = catalog.entry(child.link)
                assert kind == "file" and target.kind == "file"
                assert os.lstat(source / os.fsdecode(entry_path(catalog, target))).st_ino == info.st_ino
                assert (child.size, child.content_offset, child.nlink) == (target.size, target.content_offset,
                                                                          target.nlink)
            else:
                assert child.kind == kind, path
                assert child.link is None
            if kind == "file":
                assert (child.size, child.nlink) == (info.st_size, info.st_nlink)
                assert stream.read_at(child.content_offset, child.size) == path.read_bytes()
            else:
                assert (child.size, child.content_offset) == (0, None)
            assert child.target == (os.readlink(os.fsencode(path)) if kind == "symlink" else None)
            assert child.rdev == (info.st_rdev if kind in ("chardev", "blockdev") else None)
            if kind != "symlink":
                assert dict(child.xattrs) == {name.encode(): os.getxattr(path, name, follow_symlinks=False)
                                              for name in os.listxattr(path, follow_symlinks=False)
                                              if name.startswith("user.")}
    assert catalog.entry_count() == walked


def test_v1_archive_lists_every_file_of_the_source_tree(datastore, catalog, tmp_path):
    optional = make_tree(tmp_path / "src")
    snapshot = backup_v1(datastore, f"root.pxar:{tmp_path / 'src'}")
    assert record_datastore_snapshot(catalog, datastore, snapshot, str(snapshot))
    archive = only_archive(catalog, str(snapshot))
    assert (archive.name, archive.metadata_index, archive.payload_index, archive.error) == \
           ("root.pxar", "root.pxar.didx", None, None)
    with open_stream(datastore, snapshot, "root.pxar.didx") as stream:
        assert_matches_source(catalog, archive, tmp_path / "src", stream)
    root = catalog.entry(archive.root_entry)
    if optional["xattrs"]:
        assert catalog.lookup(root.id, b"hello.txt").xattrs == [(b"user.comment", b"greetings")]
    if optional["device"]:
        assert catalog.lookup(root.id, b"null").rdev == os.makedev(1, 3)


def test_v2_archive_has_content_offsets_into_the_payload_stream(datastore, catalog, tmp_path):
    make_tree(tmp_path / "src")
    snapshot = backup_v2(datastore, tmp_path / "src")
    assert record_datastore_snapshot(catalog, datastore, snapshot, str(snapshot))
    archive = only_archive(catalog, str(snapshot))
    assert (archive.name, archive.metadata_index, archive.payload_index, archive.error) == \
           ("root.pxar", "root.mpxar.didx", "root.ppxar.didx", None)
    with open_stream(datastore, snapshot, "root.ppxar.didx") as stream:
        assert_matches_source(catalog, archive, tmp_path / "src", stream)


def test_hardlinks_name_their_file_and_share_its_link_count(datastore, catalog, tmp_path):
    make_tree(tmp_path / "src")
    snapshot = backup_v1(datastore, str(tmp_path / "src"))
    record_datastore_snapshot(catalog, datastore, snapshot, str(snapshot))
    root = catalog.entry(only_archive(catalog, str(snapshot)).root_entry)
    stored = resolve(catalog, root, b"hard-a")  # first in pxar order: the file itself
    links = [resolve(catalog, root, b"sub/a"), resolve(catalog, root, b"sub/deeper/hard-a-too")]
    assert stored.kind == "file" and stored.link is None and stored.nlink == 3
    for link in links:
        assert (link.kind, link.link, link.nlink, link.mode, link.size) == \
               ("hardlink", stored.id, 3, stored.mode, stored.size)


def test_snapshot_files_are_recorded_with_their_bytes_mode_and_mtime(datastore, catalog, tmp_path):
    make_tree(tmp_path / "src")
    (tmp_path / "disk.raw").write_bytes(os.urandom(5000))
    snapshot = backup_v1(datastore, f"root.pxar:{tmp_path / 'src'}", f"disk.img:{tmp_path / 'disk.raw'}")
    directory = datastore.snapshot_path(snapshot)
    (directory / "client.log.blob").write_bytes(b"not checked here")
    record_datastore_snapshot(catalog, datastore, snapshot, "ns/a/host/v1/" + snapshot.time_text)
    snapshot_id = catalog.snapshot_id("store", "ns/a/host/v1/" + snapshot.time_text)
    rows = catalog.snapshot_files(snapshot_id)
    assert [row.name for row in rows] == sorted(["index.json.blob", "root.pxar.didx", "disk.img.fidx",
                                                 "catalog.pcat1.didx", "client.log.blob"])
    for row in rows:
        info = (directory / row.name).stat()
        assert (row.mode, row.mtime, row.size) == (info.st_mode, int(info.st_mtime), info.st_size)
        assert catalog.snapshot_file(snapshot_id, row.name) == (directory / row.name).read_bytes()
    assert [archive.name for archive in catalog.archives(snapshot_id)] == ["root.pxar"]


def test_image_only_snapshot_has_its_files_and_no_archive(datastore, catalog, tmp_path):
    (tmp_path / "disk.raw").write_bytes(os.urandom(10000))
    snapshot = backup_v1(datastore, str(tmp_path / "disk.raw"), backup_id="vm")
    assert record_datastore_snapshot(catalog, datastore, snapshot, str(snapshot))
    snapshot_id = catalog.snapshot_id("store", str(snapshot))
    assert [row.name for row in catalog.snapshot_files(snapshot_id)] == ["disk.img.fidx", "index.json.blob"]
    assert catalog.archives(snapshot_id) == []
    assert catalog.entry_count() == 0


def test_corrupt_chunk_gives_the_archive_an_error_and_no_entries(datastore, catalog, tmp_path, caplog):
    source = tmp_path / "src"
    for directory in range(30):
        (source / f"d{directory:02d}").mkdir(parents=True)
        for index in range(100):
            (source / f"d{directory:02d}" / f"f{index:03d}").write_bytes(b"x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file").write_bytes(b"fine")
    snapshot = new_snapshot()
    store_streams(datastore, snapshot,
                  lambda meta, payload, other: (encode_tree(source, meta, payload_out=payload),
                                                encode_tree(tmp_path / "other", other)),
                  ["root.mpxar.didx", "root.ppxar.didx", "other.pxar.didx"], SMALL_CHUNKS)
    # The last chunk: thousands of entries are decoded (and inserted) before the damage is met.
    index = DynamicIndex.load(datastore.snapshot_path(snapshot) / "root.mpxar.didx")
    assert len(index.digests) > 2
    path = datastore.chunk_store.chunk_path(index.digests[-1])
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        assert record_datastore_snapshot(catalog, datastore, snapshot, str(snapshot))
    archives = {archive.name: archive for archive in catalog.archives(catalog.snapshot_id("store", str(snapshot)))}
    damaged = archives["root.pxar"]
    assert damaged.root_entry is None and damaged.error.startswith("damaged: ")
    assert str(path) in damaged.error
    assert "root.pxar" in caplog.text and damaged.error in caplog.text
    # The intact archive of the same snapshot is listed in full: its root and one file.
    intact = archives["other.pxar"]
    assert intact.error is None
    assert [row.name for row in catalog.children(intact.root_entry)] == [b"file"]
    assert catalog.entry_count() == 2


def test_missing_chunk_gives_the_archive_an_error(datastore, catalog, tmp_path):
    make_tree(tmp_path / "src")
    snapshot = backup_v2(datastore, tmp_path / "src")
    index = DynamicIndex.load(datastore.snapshot_path(snapshot) / "root.mpxar.didx")
    datastore.chunk_store.chunk_path(index.digests[-1]).unlink()
    record_datastore_snapshot(catalog, datastore, snapshot, str(snapshot))
    archive = only_archive(catalog, str(snapshot))
    assert archive.root_entry is None and "missing" in archive.error
    assert catalog.entry_count() == 0


def test_encrypted_archive_gets_an_error_naming_its_key(datastore, catalog, tmp_path, caplog):
    make_tree(tmp_path / "src")
    key = CryptConfig(b"\x07" * 32)
    snapshot = backup_v1(datastore, str(tmp_path / "src"), crypt_config=key)
    with caplog.at_level(logging.INFO):
        assert record_datastore_snapshot(catalog, datastore, snapshot, str(snapshot))
    # Expected for an encrypted backup: said, but not as a warning.
    assert [record.levelname for record in caplog.records if "entries not listed" in record.message] == ["INFO"]
    archive = only_archive(catalog, str(snapshot))
    assert archive.root_entry is None
    assert archive.error == f"encrypted with key {key.fingerprint_text()}"
    assert catalog.entry_count() == 0
    assert len(catalog.snapshot_files(catalog.snapshot_id("store", str(snapshot)))) == 3


def test_v2_archive_without_its_payload_index_gets_an_error(datastore, catalog, tmp_path):
    make_tree(tmp_path / "src")
    snapshot = backup_v2(datastore, tmp_path / "src")
    directory = datastore.snapshot_path(snapshot)
    manifest = Manifest.load(directory)
    manifest.files = [info for info in manifest.files if info.filename != "root.ppxar.didx"]
    manifest.save(directory)
    record_datastore_snapshot(catalog, datastore, snapshot, str(snapshot))
    assert only_archive(catalog, str(snapshot)).error == \
        "damaged: the manifest lists no payload index root.ppxar.didx"


def test_recording_a_snapshot_again_changes_nothing(datastore, catalog, tmp_path):
    make_tree(tmp_path / "src")
    snapshot = backup_v1(datastore, str(tmp_path / "src"))
    assert record_datastore_snapshot(catalog, datastore, snapshot, str(snapshot))
    before = (catalog.snapshots(), catalog.entry_count(), catalog.archives(catalog.snapshot_id("store", str(snapshot))))
    assert not record_datastore_snapshot(catalog, datastore, snapshot, str(snapshot))
    files = {MANIFEST_BLOB_NAME: (datastore.snapshot_path(snapshot) / MANIFEST_BLOB_NAME).read_bytes()}
    assert not record_snapshot(catalog, "store", str(snapshot), files, ChunkReader(datastore.chunk_store))
    assert (catalog.snapshots(), catalog.entry_count(),
            catalog.archives(catalog.snapshot_id("store", str(snapshot)))) == before
    # The same snapshot under another store or path is another record.
    assert record_datastore_snapshot(catalog, datastore, snapshot, "ns/x/" + str(snapshot))
    assert catalog.entry_count() == 2 * before[1]


def test_forgetting_a_snapshot_removes_its_files_archives_and_entries(datastore, catalog, tmp_path):
    make_tree(tmp_path / "src")
    first = backup_v1(datastore, str(tmp_path / "src"), backup_id="one")
    second = backup_v2(datastore, tmp_path / "src", backup_id="two")
    record_datastore_snapshot(catalog, datastore, first, str(first))
    record_datastore_snapshot(catalog, datastore, second, str(second))
    kept = catalog.entry_count() // 2
    first_id = catalog.snapshot_id("store", str(first))
    assert catalog.forget_snapshot("store", str(first))
    assert not catalog.forget_snapshot("store", str(first))
    assert [row.path for row in catalog.snapshots()] == [str(second)]
    assert catalog.entry_count() == kept
    assert catalog.snapshot_files(first_id) == [] and catalog.archives(first_id) == []
    with open_stream(datastore, second, "root.ppxar.didx") as stream:
        assert_matches_source(catalog, only_archive(catalog, str(second)), tmp_path / "src", stream)


def test_snapshot_without_a_manifest_is_refused(catalog):
    with pytest.raises(FileCatalogError, match="no index.json.blob among its files"):
        record_snapshot(catalog, "store", "host/x/2024-01-01T00:00:00Z", {"root.pxar.didx": b""}, None)
    assert catalog.snapshots() == []


def test_damaged_manifest_is_refused_with_its_name(catalog):
    with pytest.raises(DatastoreError, match="host/x/2024-01-01T00:00:00Z/index.json.blob"):
        record_snapshot(catalog, "store", "host/x/2024-01-01T00:00:00Z", {MANIFEST_BLOB_NAME: b"garbage"}, None)
    assert catalog.snapshots() == []


def test_tape_backup_hook_warns_instead_of_failing(datastore, tmp_path, caplog):
    make_tree(tmp_path / "src")
    snapshot = backup_v1(datastore, str(tmp_path / "src"))
    (datastore.snapshot_path(snapshot) / "root.pxar.didx").unlink()
    with caplog.at_level(logging.WARNING):
        record_backed_up_snapshot(tmp_path / "status", datastore, snapshot, str(snapshot))
    assert f"snapshot {snapshot}: not recorded in the file catalog" in caplog.text
    with FileCatalog.open(tmp_path / "status") as catalog:
        assert catalog.snapshots() == []


def test_rows_produced_ahead_arrive_complete_and_in_order():
    assert list(produced_ahead(iter(range(10007)), batch_size=100)) == list(range(10007))


def test_a_decoding_error_reaches_the_inserting_thread():
    def items():
        yield from range(5)
        raise ArchiveUnreadable("damaged: boom")

    received = []
    with pytest.raises(ArchiveUnreadable, match="boom"):
        for item in produced_ahead(items(), batch_size=2):
            received.append(item)
    assert received == [0, 1, 2, 3]


def test_an_inserting_thread_that_stops_early_stops_the_decoding_thread():
    threads_before = threading.active_count()
    rows = produced_ahead(itertools.count(), batch_size=10, batches=2)
    assert next(rows) == 0
    rows.close()
    assert threading.active_count() == threads_before
