"""The file catalog database: schema, xattr blobs, queries, query plans, threads, versions."""
from __future__ import annotations

import sqlite3
import stat
import threading

import pytest

from tapefs.catalog.file_catalog import (
    CHILDREN_SQL,
    FILE_CATALOG_DB_NAME,
    LOOKUP_SQL,
    ArchiveRow,
    ArchiveUnreadable,
    EntryRow,
    FileCatalog,
    FileCatalogError,
    SnapshotAlreadyRecorded,
    SnapshotFileRow,
    SnapshotRow,
    decode_xattrs,
    encode_xattrs,
)
from tapefs.catalog.file_catalog_builder import EntryListing
from tapefs.pxar.entry import Entry, Kind, Metadata

ENTRY_COLUMNS = ["id", "archive_id", "parent", "name", "kind", "mode", "uid", "gid", "mtime_ns", "size",
                 "content_offset", "target", "link", "rdev", "nlink", "xattrs"]


def directory(path: bytes, offset: int | None) -> Entry:
    return Entry(path, Kind.DIRECTORY, Metadata(mode=stat.S_IFDIR | 0o755, mtime_secs=7), filename_offset=offset)


def file(path: bytes, offset: int, size: int = 3, xattrs=()) -> Entry:
    return Entry(path, Kind.FILE, Metadata(mode=stat.S_IFREG | 0o644, uid=5, gid=6, mtime_secs=1, mtime_nanos=2,
                                           xattrs=list(xattrs)), size=size, filename_offset=offset,
                 content_offset=offset + 100)


def record_tree(catalog: FileCatalog, path: str = "host/a/2024-01-01T00:00:00Z", files_per_dir: int = 50,
                dirs: int = 3) -> int:
    """A snapshot with one archive: the root, `dirs` directories of `files_per_dir` files each."""
    entries = [directory(b"", None)]
    offset = 1
    for d in range(dirs):
        entries.append(directory(b"d%d" % d, offset))
        offset += 10
        for f in range(files_per_dir):
            entries.append(file(b"d%d/f%03d" % (d, f), offset))
            offset += 10
    with catalog.recording("store", path) as recorder:
        recorder.add_file("index.json.blob", stat.S_IFREG | 0o644, 1700000000, b"{manifest}")
        with recorder.archive("root.pxar", "root.pxar.didx", None) as archive:
            listing = EntryListing(archive.archive_id, archive.first_entry_id)
            archive.insert_entries(listing.rows(entries))
            archive.link_hardlinks(listing.hardlinks)
    return catalog.snapshot_id("store", path)


def test_schema_is_the_agreed_one(catalog):
    db = sqlite3.connect(catalog.db_path)
    objects = db.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
    assert objects == [("table", "archive"), ("table", "entry"), ("index", "entry_by_name"),
                       ("index", "entry_children"), ("table", "snapshot"), ("table", "snapshot_file")]
    assert [row[1] for row in db.execute("PRAGMA table_info(entry)")] == ENTRY_COLUMNS
    assert [row[2] for row in db.execute("PRAGMA index_info(entry_by_name)")] == ["parent", "name"]
    assert [row[2] for row in db.execute("PRAGMA index_info(entry_children)")] == ["parent"]
    assert [row[1] for row in db.execute("PRAGMA table_info(archive)")] == \
           ["id", "snapshot_id", "name", "metadata_index", "payload_index", "root_entry", "error"]
    assert [row[1] for row in db.execute("PRAGMA table_info(snapshot_file)")] == \
           ["snapshot_id", "name", "mode", "mtime", "content"]
    assert catalog.db_path.name == FILE_CATALOG_DB_NAME
    assert stat.S_IMODE(catalog.db_path.stat().st_mode) == 0o640


def test_xattrs_round_trip_through_their_blob():
    xattrs = [(b"user.a", b""), (b"user.\xff", bytes(range(256))), (b"security.capability", b"\x01" * 20)]
    assert decode_xattrs(encode_xattrs(xattrs)) == xattrs
    assert encode_xattrs([]) == b"" and decode_xattrs(b"") == []


@pytest.mark.parametrize("cut", [3, 8, 12])
def test_truncated_xattr_blob_is_an_error(cut):
    with pytest.raises(FileCatalogError, match="xattr blob truncated"):
        decode_xattrs(encode_xattrs([(b"user.name", b"value")])[:cut])


def test_queries_return_rows_in_name_order(catalog):
    snapshot_id = record_tree(catalog)
    assert catalog.snapshots() == [SnapshotRow(snapshot_id, "store", "host/a/2024-01-01T00:00:00Z")]
    assert catalog.has_snapshot("store", "host/a/2024-01-01T00:00:00Z")
    assert not catalog.has_snapshot("other", "host/a/2024-01-01T00:00:00Z")
    assert catalog.snapshot_id("store", "nope") is None
    assert catalog.snapshot_files(snapshot_id) == [SnapshotFileRow("index.json.blob", stat.S_IFREG | 0o644,
                                                                   1700000000, 10)]
    assert catalog.snapshot_file(snapshot_id, "index.json.blob") == b"{manifest}"
    [archive] = catalog.archives(snapshot_id)
    assert archive == ArchiveRow(archive.id, "root.pxar", "root.pxar.didx", None, archive.root_entry, None)
    root = catalog.entry(archive.root_entry)
    assert (root.parent, root.name, root.kind, root.nlink) == (None, b"", "dir", 5)
    directories = catalog.children(root.id)
    assert [row.name for row in directories] == [b"d0", b"d1", b"d2"]
    files = catalog.children(directories[1].id)
    assert [row.name for row in files] == [b"f%03d" % index for index in range(50)]
    assert files[0] == EntryRow(files[0].id, archive.id, directories[1].id, b"f000", "file", stat.S_IFREG | 0o644,
                                5, 6, 1_000_000_002, 3, 621, None, None, None, 1, [])
    assert catalog.children(directories[1].id, after_id=files[9].id, limit=5) == files[10:15]
    assert catalog.children(directories[1].id, after_id=files[-1].id) == []
    assert catalog.lookup(directories[1].id, b"f042") == files[42]
    assert catalog.lookup(directories[1].id, b"f999") is None
    assert catalog.lookup(files[0].id, b"f000") is None
    assert catalog.entry(10**9) is None
    assert catalog.entry_count() == 1 + 3 + 150


def test_missing_snapshot_file_is_a_key_error(catalog):
    snapshot_id = record_tree(catalog)
    with pytest.raises(KeyError, match="no file 'client.log.blob'"):
        catalog.snapshot_file(snapshot_id, "client.log.blob")


def test_lookup_and_children_are_index_searches(catalog):
    record_tree(catalog)
    db = sqlite3.connect(catalog.db_path)
    for sql, parameters in ((LOOKUP_SQL, (1, b"x")), (CHILDREN_SQL, (1, 0, 10))):
        plan = " / ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, parameters))
        assert plan.startswith("SEARCH entry USING INDEX entry_"), plan
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan


def test_recording_a_recorded_snapshot_is_refused_and_keeps_it(catalog):
    record_tree(catalog)
    with pytest.raises(SnapshotAlreadyRecorded, match="store:host/a/2024-01-01T00:00:00Z is already"):
        with catalog.recording("store", "host/a/2024-01-01T00:00:00Z"):
            pass
    assert catalog.entry_count() == 154


def test_unreadable_archive_keeps_its_error_and_none_of_its_entries(catalog):
    with catalog.recording("store", "host/a/2024-01-01T00:00:00Z") as recorder:
        with recorder.archive("root.pxar", "root.mpxar.didx", "root.ppxar.didx") as archive:
            listing = EntryListing(archive.archive_id, archive.first_entry_id)

            def failing():
                yield from listing.rows([directory(b"", None), file(b"a", 1)])
                raise ArchiveUnreadable("damaged: test")

            archive.insert_entries(failing())
    [row] = catalog.archives(catalog.snapshot_id("store", "host/a/2024-01-01T00:00:00Z"))
    assert (row.root_entry, row.error, row.payload_index) == (None, "damaged: test", "root.ppxar.didx")
    assert catalog.entry_count() == 0


def test_a_failure_outside_an_archive_records_nothing(catalog):
    with pytest.raises(RuntimeError):
        with catalog.recording("store", "host/a/2024-01-01T00:00:00Z") as recorder:
            recorder.add_file("index.json.blob", 0o100644, 0, b"x")
            raise RuntimeError("disk on fire")
    assert catalog.snapshots() == []


def test_hardlink_to_something_else_than_a_file_is_refused(catalog):
    with catalog.recording("store", "p") as recorder:
        with recorder.archive("root.pxar", "root.pxar.didx", None) as archive:
            link = Entry(b"link", Kind.HARDLINK, None, hardlink_target=b"d", hardlink_offset=10, filename_offset=11)
            listing = EntryListing(archive.archive_id, archive.first_entry_id)
            archive.insert_entries(listing.rows([directory(b"", None), directory(b"d", 1), link]))
            archive.link_hardlinks(listing.hardlinks)
    [row] = catalog.archives(catalog.snapshot_id("store", "p"))
    assert row.error == "a hardlink points at dir b'd', not a regular file"


def test_hardlink_to_no_entry_is_refused(catalog):
    with catalog.recording("store", "p") as recorder:
        with recorder.archive("root.pxar", "root.pxar.didx", None) as archive:
            link = Entry(b"link", Kind.HARDLINK, None, hardlink_target=b"f", hardlink_offset=5, filename_offset=11)
            listing = EntryListing(archive.archive_id, archive.first_entry_id)
            archive.insert_entries(listing.rows([directory(b"", None), file(b"f", 1), link]))
    [row] = catalog.archives(catalog.snapshot_id("store", "p"))
    assert row.error == "damaged: hardlink b'link' points at no entry (offset 6)"


def test_queries_from_many_threads_at_once(catalog):
    record_tree(catalog, files_per_dir=200)
    root = catalog.entry(catalog.archives(catalog.snapshots()[0].id)[0].root_entry)
    directories = catalog.children(root.id)
    expected = {row.id: catalog.children(row.id) for row in directories}
    failures = []

    def reader(number: int) -> None:
        try:
            for round_ in range(30):
                parent = directories[(number + round_) % len(directories)]
                rows = catalog.children(parent.id)
                assert rows == expected[parent.id]
                name = rows[(number * 7 + round_) % len(rows)].name
                assert catalog.lookup(parent.id, name).name == name
        except Exception as error:  # noqa: BLE001 - reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=reader, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_newer_schema_version_is_refused(tmp_path):
    path = tmp_path / FILE_CATALOG_DB_NAME
    FileCatalog(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(FileCatalogError, match=f"{path}: file catalog schema version 99 is newer than this tapefs"):
        FileCatalog(path)


def test_open_uses_the_tape_status_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEFS_STATE_DIR", str(tmp_path / "state"))
    with FileCatalog.open() as catalog:
        assert catalog.db_path.name == FILE_CATALOG_DB_NAME
        assert catalog.db_path.is_relative_to(tmp_path / "state")
