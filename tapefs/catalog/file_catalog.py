"""The file catalog: every snapshot written to tape, down to each pxar entry, in SQLite
(`files.sqlite` in the tape status directory), so `tapefs mount` can list them with no tape loaded.

Per snapshot it holds the snapshot's files as they lie in the datastore (manifest, indexes,
blobs) and, per pxar archive, its whole entry tree with the stream offset of every file's
content: enough to stat, list and look up anything, and to know which bytes of which stream
to read when a file is opened.

Invariants:
- A snapshot is recorded in one transaction: it is there completely or not at all.
- An archive has either `root_entry` and all its entries, or `error` and none (an archive
  that fails half way is rolled back to a savepoint, never left half listed).
- Entry ids are assigned in pxar order (depth first, children sorted by name), so within a
  directory id order is name order, and an archive's entries are one contiguous id range
  starting at its root.
- Hardlink rows carry the attributes of the file they link to (`link`), so a stat needs no
  second query; the file and its links share `nlink`.

Queries are short indexed reads behind the connection lock; the mount calls them per request.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tapefs.config.paths import tape_status_dir
from tapefs.config.state_database import StateDatabase
from tapefs.errors import TapefsError

log = logging.getLogger(__name__)

FILE_CATALOG_DB_NAME = "files.sqlite"
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshot (
    id INTEGER PRIMARY KEY,
    store TEXT NOT NULL,
    path TEXT NOT NULL,             -- tape snapshot path: [ns/a/...]type/id/time
    UNIQUE (store, path)
);
-- The snapshot's files as in the datastore (manifest index.json.blob, *.didx, *.fidx, other blobs,
-- client.log.blob).
CREATE TABLE IF NOT EXISTS snapshot_file (
    snapshot_id INTEGER NOT NULL REFERENCES snapshot (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    mode INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY (snapshot_id, name)
);
-- One row per pxar archive of the snapshot (v1: NAME.pxar.didx; v2: NAME.mpxar.didx + NAME.ppxar.didx).
CREATE TABLE IF NOT EXISTS archive (
    id INTEGER PRIMARY KEY,
    snapshot_id INTEGER NOT NULL REFERENCES snapshot (id) ON DELETE CASCADE,
    name TEXT NOT NULL,             -- 'root.pxar' for both versions
    metadata_index TEXT NOT NULL,   -- 'root.pxar.didx' (v1) or 'root.mpxar.didx' (v2)
    payload_index TEXT,             -- 'root.ppxar.didx' (v2) or NULL (v1: contents are in the metadata stream)
    root_entry INTEGER,             -- entry id of the archive's root directory; NULL when error is set
    error TEXT,                     -- why the entries are not listed
    UNIQUE (snapshot_id, name)
);
CREATE TABLE IF NOT EXISTS entry (
    id INTEGER PRIMARY KEY,
    archive_id INTEGER NOT NULL REFERENCES archive (id) ON DELETE CASCADE,
    parent INTEGER,                 -- entry id of its directory; NULL for the archive root
    name BLOB NOT NULL,
    kind TEXT NOT NULL,             -- tapefs.pxar.entry.Kind values
    mode INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    gid INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,          -- regular files; 0 otherwise
    content_offset INTEGER,         -- regular files: first content byte in the stream holding it
    target BLOB,                    -- symlink target
    link INTEGER,                   -- hardlink entries: entry id of the file they link to
    rdev INTEGER,                   -- device nodes: os.makedev(major, minor)
    nlink INTEGER NOT NULL DEFAULT 1,  -- files: 1 + hardlinks to it; directories: 2 + subdirectories
    xattrs BLOB                     -- NULL or encode_xattrs(...)
);
CREATE INDEX IF NOT EXISTS entry_children ON entry (parent);
CREATE INDEX IF NOT EXISTS entry_by_name ON entry (parent, name);
"""

ENTRY_COLUMNS = (
    "id, archive_id, parent, name, kind, mode, uid, gid, mtime_ns, size, content_offset, target,"
    " link, rdev, nlink, xattrs"
)
# Entry rows arrive out of id order (a directory after its subtree, once its nlink is known).
_INSERT_ENTRY = f"INSERT INTO entry ({ENTRY_COLUMNS}) VALUES ({', '.join('?' * 16)})"
# The mount's per-request queries: index searches only (no scan, no sort), pinned to their index.
LOOKUP_SQL = f"SELECT {ENTRY_COLUMNS} FROM entry INDEXED BY entry_by_name WHERE parent = ? AND name = ?"
CHILDREN_SQL = (
    f"SELECT {ENTRY_COLUMNS} FROM entry INDEXED BY entry_children WHERE parent = ? AND id > ? ORDER BY id LIMIT ?"
)
_XATTR_HEADER = struct.Struct("<II")


class FileCatalogError(TapefsError):
    pass


class SnapshotAlreadyRecorded(FileCatalogError):
    pass


class ArchiveUnreadable(FileCatalogError):
    """Raised while an archive is recorded: its entries cannot be listed; the message is kept
    as the archive's `error`."""


def encode_xattrs(xattrs: Iterable[tuple[bytes, bytes]]) -> bytes:
    """(name, value) pairs as one blob: per pair two little-endian u32 lengths, name, value."""
    out = bytearray()
    for name, value in xattrs:
        out += _XATTR_HEADER.pack(len(name), len(value))
        out += name
        out += value
    return bytes(out)


def decode_xattrs(data: bytes) -> list[tuple[bytes, bytes]]:
    xattrs = []
    pos = 0
    view = memoryview(data)
    while pos < len(data):
        if pos + _XATTR_HEADER.size > len(data):
            raise FileCatalogError(f"xattr blob truncated at byte {pos}")
        name_length, value_length = _XATTR_HEADER.unpack_from(data, pos)
        pos += _XATTR_HEADER.size
        end = pos + name_length + value_length
        if end > len(data):
            raise FileCatalogError(f"xattr blob truncated at byte {pos}")
        xattrs.append((bytes(view[pos : pos + name_length]), bytes(view[pos + name_length : end])))
        pos = end
    return xattrs


@dataclass(frozen=True)
class SnapshotRow:
    id: int
    store: str
    path: str


@dataclass(frozen=True)
class SnapshotFileRow:
    name: str
    mode: int
    mtime: int
    size: int


@dataclass(frozen=True)
class ArchiveRow:
    id: int
    name: str
    metadata_index: str
    payload_index: str | None
    root_entry: int | None
    error: str | None


class EntryRow(NamedTuple):
    """One entry of an archive. A named tuple, not a frozen dataclass: `find` over a mount makes
    one per name, and building a tuple costs a fifth of setting 16 frozen fields."""

    id: int
    archive_id: int
    parent: int | None
    name: bytes
    kind: str
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    size: int
    content_offset: int | None
    target: bytes | None
    link: int | None
    rdev: int | None
    nlink: int
    xattrs: list[tuple[bytes, bytes]]


def _entry_row(row: tuple) -> EntryRow:
    xattrs = row[-1]
    # tuple.__new__ over the named tuple's own constructor: half the cost, once per listed name
    return tuple.__new__(EntryRow, row[:-1] + (decode_xattrs(xattrs) if xattrs is not None else [],))


class ArchiveRecorder:
    """One archive being recorded: insert its entries (ids from `first_entry_id` on, the root
    first), then link its hardlinks."""

    def __init__(self, db: sqlite3.Connection, archive_id: int, first_entry_id: int):
        self._db = db
        self.archive_id = archive_id
        self.first_entry_id = first_entry_id

    def insert_entries(self, rows: Iterable[tuple]) -> None:
        """Rows in `ENTRY_COLUMNS` order, `xattrs` already encoded; consumed as they come."""
        self._db.executemany(_INSERT_ENTRY, rows)

    def link_hardlinks(self, links: Iterable[tuple[int, int]]) -> None:
        """(hardlink entry id, target entry id) pairs: copy the target's attributes, count nlink."""
        targets: dict[int, list[int]] = {}
        for link_id, target_id in links:
            targets.setdefault(target_id, []).append(link_id)
        for target_id, link_ids in targets.items():
            row = self._db.execute(
                "SELECT kind, name FROM entry WHERE id = ? AND archive_id = ?", (target_id, self.archive_id)
            ).fetchone()
            if row is None or row[0] != "file":
                what = "no entry" if row is None else f"{row[0]} {bytes(row[1])!r}"
                raise ArchiveUnreadable(f"a hardlink points at {what}, not a regular file")
            nlink = 1 + len(link_ids)
            self._db.execute("UPDATE entry SET nlink = ? WHERE id = ?", (nlink, target_id))
            self._db.executemany(
                "UPDATE entry SET (mode, uid, gid, mtime_ns, size, content_offset, xattrs)"
                " = (SELECT mode, uid, gid, mtime_ns, size, content_offset, xattrs FROM entry WHERE id = ?),"
                " link = ?, nlink = ? WHERE id = ?",
                ((target_id, target_id, nlink, link_id) for link_id in link_ids),
            )


class SnapshotRecorder:
    """Adds the files and archives of one snapshot inside the transaction that records it."""

    def __init__(self, db: sqlite3.Connection, snapshot_id: int):
        self._db = db
        self.snapshot_id = snapshot_id

    def add_file(self, name: str, mode: int, mtime: int, content: bytes) -> None:
        self._db.execute(
            "INSERT INTO snapshot_file (snapshot_id, name, mode, mtime, content) VALUES (?, ?, ?, ?, ?)",
            (self.snapshot_id, name, mode, mtime, content),
        )

    @contextmanager
    def archive(self, name: str, metadata_index: str, payload_index: str | None) -> Iterator[ArchiveRecorder]:
        """Record an archive; ArchiveUnreadable raised in the block undoes its entries, keeps the
        message as its error and is not propagated. Other exceptions abort the whole snapshot."""
        archive_id = self._db.execute(
            "INSERT INTO archive (snapshot_id, name, metadata_index, payload_index) VALUES (?, ?, ?, ?)",
            (self.snapshot_id, name, metadata_index, payload_index),
        ).lastrowid
        first_entry_id = self._db.execute("SELECT IFNULL(MAX(id), 0) + 1 FROM entry").fetchone()[0]
        self._db.execute("SAVEPOINT archive_entries")
        try:
            yield ArchiveRecorder(self._db, archive_id, first_entry_id)
        except ArchiveUnreadable as error:
            self._db.execute("ROLLBACK TO archive_entries")
            self._db.execute("RELEASE archive_entries")
            self._db.execute("UPDATE archive SET error = ? WHERE id = ?", (str(error), archive_id))
            return
        self._db.execute("RELEASE archive_entries")
        root = self._db.execute(
            "SELECT id FROM entry WHERE id = ? AND archive_id = ? AND parent IS NULL", (first_entry_id, archive_id)
        ).fetchone()
        if root is None:
            raise FileCatalogError(f"archive {name}: no root entry recorded")
        self._db.execute("UPDATE archive SET root_entry = ? WHERE id = ?", (first_entry_id, archive_id))


class FileCatalog(StateDatabase):
    """The file catalog database; open with :meth:`open`, usable as a context manager."""

    schema = _SCHEMA
    schema_version = _SCHEMA_VERSION
    kind = "file catalog"

    def version_error(self, message: str) -> Exception:
        return FileCatalogError(message)

    @classmethod
    def open(cls, status_dir: str | Path | None = None) -> FileCatalog:
        if status_dir is None:
            status_dir = tape_status_dir()
        return cls(Path(status_dir) / FILE_CATALOG_DB_NAME)

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def recording(self, store: str, path: str) -> Iterator[SnapshotRecorder]:
        """One transaction that records a snapshot; SnapshotAlreadyRecorded if it is there."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM snapshot WHERE store = ? AND path = ?", (store, path)).fetchone():
                raise SnapshotAlreadyRecorded(f"snapshot {store}:{path} is already in the file catalog")
            snapshot_id = db.execute("INSERT INTO snapshot (store, path) VALUES (?, ?)", (store, path)).lastrowid
            yield SnapshotRecorder(db, snapshot_id)

    def forget_snapshot(self, store: str, path: str) -> bool:
        """Remove a snapshot and everything recorded for it; False if it was not there."""
        with self._transaction() as db:
            return db.execute("DELETE FROM snapshot WHERE store = ? AND path = ?", (store, path)).rowcount > 0

    # -- queries ---------------------------------------------------------------------------

    def snapshots(self) -> list[SnapshotRow]:
        return [SnapshotRow(*row) for row in self._query("SELECT id, store, path FROM snapshot ORDER BY store, path")]

    def snapshot_id(self, store: str, path: str) -> int | None:
        rows = self._query("SELECT id FROM snapshot WHERE store = ? AND path = ?", (store, path))
        return rows[0][0] if rows else None

    def has_snapshot(self, store: str, path: str) -> bool:
        return self.snapshot_id(store, path) is not None

    def snapshot_files(self, snapshot_id: int) -> list[SnapshotFileRow]:
        return [
            SnapshotFileRow(*row)
            for row in self._query(
                "SELECT name, mode, mtime, length(content) FROM snapshot_file WHERE snapshot_id = ? ORDER BY name",
                (snapshot_id,),
            )
        ]

    def snapshot_file(self, snapshot_id: int, name: str) -> bytes:
        rows = self._query("SELECT content FROM snapshot_file WHERE snapshot_id = ? AND name = ?", (snapshot_id, name))
        if not rows:
            raise KeyError(f"snapshot {snapshot_id} has no file {name!r} in the file catalog")
        return rows[0][0]

    def archives(self, snapshot_id: int) -> list[ArchiveRow]:
        return [
            ArchiveRow(*row)
            for row in self._query(
                "SELECT id, name, metadata_index, payload_index, root_entry, error FROM archive"
                " WHERE snapshot_id = ? ORDER BY name",
                (snapshot_id,),
            )
        ]

    def entry(self, entry_id: int) -> EntryRow | None:
        rows = self._query(f"SELECT {ENTRY_COLUMNS} FROM entry WHERE id = ?", (entry_id,))
        return _entry_row(rows[0]) if rows else None

    def lookup(self, parent_id: int, name: bytes) -> EntryRow | None:
        rows = self._query(LOOKUP_SQL, (parent_id, name))
        return _entry_row(rows[0]) if rows else None

    def children(self, parent_id: int, after_id: int = 0, limit: int = 1000) -> list[EntryRow]:
        """A directory's entries in id (= name) order, from the first id above `after_id` on."""
        return [_entry_row(row) for row in self._query(CHILDREN_SQL, (parent_id, after_id, limit))]

    def entry_count(self) -> int:
        return self._query("SELECT COUNT(*) FROM entry")[0][0]
