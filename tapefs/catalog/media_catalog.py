"""The media catalog: what is on every tape, in SQLite in the tape status directory
(docs/catalog-formats.md, "Media catalog").

Per tape it records the labels (file 0, file 1), every chunk archive part with the byte offset
of each chunk inside it and the logical block of the part's block 0, and every snapshot archive.
With the offset a single chunk is read after one LOCATE (`read_chunk_at`), which PBS's `.log`
cannot do.

Invariant: the catalog never names anything that is not complete on tape. A job registers an
archive only after its writer returned (end block and filemark on tape) and each registration
is one SQLite transaction, so a `kill -9` at any moment leaves a catalog that is a true, possibly
shorter, description of the tape. Archives on tape that the catalog does not name are harmless:
the next job appends after them and a scan can find them.

PBS's binary `<media-uuid>.log` is produced from these rows (`log_bytes`, `export_log`) for the
catalog archives on tape and for PBS, and read back with `import_log`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import uuid as uuidlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tapefs.config.paths import tape_status_dir
from tapefs.config.private_files import open_private_file
from tapefs.config.state_database import StateDatabase
from tapefs.errors import TapefsError
from tapefs.tapeformat import magic
from tapefs.tapeformat.archive_part import ArchivePart, ChunkLocation
from tapefs.tapeformat.media_catalog_log import (
    encode_chunk,
    encode_chunk_archive_end,
    encode_chunk_archive_start,
    encode_label,
    encode_snapshot,
    parse_catalog,
)

log = logging.getLogger(__name__)

CATALOG_DB_NAME = "catalog.sqlite"
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS media (
    uuid TEXT PRIMARY KEY,
    set_uuid TEXT,              -- NULL: labelled, in no set yet
    seq_nr INTEGER
);
CREATE INDEX IF NOT EXISTS media_by_set ON media (set_uuid);
-- One row per tape file the catalog names: a chunk archive part or a snapshot archive.
CREATE TABLE IF NOT EXISTS archive (
    id INTEGER PRIMARY KEY,
    media_uuid TEXT NOT NULL REFERENCES media (uuid) ON DELETE CASCADE,
    file_number INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('chunk', 'snapshot')),
    content_uuid TEXT NOT NULL,
    store TEXT NOT NULL,
    snapshot TEXT,              -- snapshot archives only
    first_block INTEGER,        -- logical object number of block 0; NULL when imported from a .log
    UNIQUE (media_uuid, file_number)
);
CREATE INDEX IF NOT EXISTS snapshot_by_name ON archive (store, snapshot);
CREATE TABLE IF NOT EXISTS chunk (
    archive_id INTEGER NOT NULL REFERENCES archive (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,       -- order inside the archive, as in the .log
    digest BLOB NOT NULL,
    offset INTEGER,             -- stream offset of the entry header; NULL when imported from a .log
    size INTEGER,
    PRIMARY KEY (archive_id, seq)
);
CREATE INDEX IF NOT EXISTS chunk_by_digest ON chunk (digest);
"""


class CatalogError(TapefsError):
    pass


@dataclass(frozen=True)
class ChunkPlace:
    """Where one chunk lies: enough for `read_chunk_at` when `offset` and `first_block` are known."""

    media_uuid: str
    seq_nr: int
    file_number: int
    first_block: int | None
    offset: int | None
    size: int | None
    digest: bytes

    def location(self) -> ChunkLocation:
        return ChunkLocation(self.digest, self.offset, self.size)


@dataclass(frozen=True)
class SnapshotPlace:
    media_uuid: str
    seq_nr: int
    file_number: int
    store: str
    snapshot: str


class MediaCatalog(StateDatabase):
    """The catalog database; open with :meth:`open`, usable as a context manager."""

    schema = _SCHEMA
    schema_version = _SCHEMA_VERSION
    kind = "catalog"

    def version_error(self, message: str) -> Exception:
        return CatalogError(message)

    @classmethod
    def open(cls, status_dir: str | Path | None = None) -> MediaCatalog:
        if status_dir is None:
            status_dir = tape_status_dir()
        return cls(Path(status_dir) / CATALOG_DB_NAME)

    # -- writing ---------------------------------------------------------------------------

    def reset_media(self, media_uuid: str, set_uuid: str | None, seq_nr: int | None) -> None:
        """A tape that was (re)labelled or got a new set label: it holds only its labels now
        (PBS's `overwrite`)."""
        with self._transaction() as db:
            db.execute("DELETE FROM media WHERE uuid = ?", (media_uuid,))
            db.execute("INSERT INTO media (uuid, set_uuid, seq_nr) VALUES (?, ?, ?)", (media_uuid, set_uuid, seq_nr))
        log.debug("catalog of %s reset (set %s, seq %s)", media_uuid, set_uuid, seq_nr)

    def forget_media(self, media_uuid: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM media WHERE uuid = ?", (media_uuid,))

    def register_chunk_archive(self, media_uuid: str, part: ArchivePart, store: str) -> None:
        """One chunk archive part, closed on tape, with every chunk's offset."""
        self._register_chunks(
            media_uuid,
            part.file_number,
            str(part.content_uuid),
            store,
            part.first_block,
            [(c.digest, c.offset, c.size) for c in part.chunks],
        )

    def _register_chunks(
        self,
        media_uuid: str,
        file_number: int,
        content_uuid: str,
        store: str,
        first_block: int | None,
        chunks: Iterable[tuple[bytes, int | None, int | None]],
    ) -> None:
        with self._transaction() as db:
            self._check_data_file(db, media_uuid, file_number)
            cursor = db.execute(
                "INSERT INTO archive (media_uuid, file_number, kind, content_uuid, store, first_block)"
                " VALUES (?, ?, 'chunk', ?, ?, ?)",
                (media_uuid, file_number, content_uuid, store, first_block),
            )
            archive_id = cursor.lastrowid
            db.executemany(
                "INSERT INTO chunk (archive_id, seq, digest, offset, size) VALUES (?, ?, ?, ?, ?)",
                ((archive_id, seq, digest, offset, size) for seq, (digest, offset, size) in enumerate(chunks)),
            )

    def register_snapshot(
        self, media_uuid: str, file_number: int, content_uuid: uuidlib.UUID | str, store: str, snapshot: str
    ) -> None:
        with self._transaction() as db:
            self._check_data_file(db, media_uuid, file_number)
            db.execute(
                "INSERT INTO archive (media_uuid, file_number, kind, content_uuid, store, snapshot)"
                " VALUES (?, ?, 'snapshot', ?, ?, ?)",
                (media_uuid, file_number, str(content_uuid), store, snapshot),
            )

    @staticmethod
    def _check_data_file(db: sqlite3.Connection, media_uuid: str, file_number: int) -> None:
        # The same rules as the .log (docs/catalog-formats.md): data files from 2 on, ascending.
        row = db.execute("SELECT set_uuid FROM media WHERE uuid = ?", (media_uuid,)).fetchone()
        if row is None:
            raise CatalogError(f"no catalog for media {media_uuid}")
        last = db.execute("SELECT MAX(file_number) FROM archive WHERE media_uuid = ?", (media_uuid,)).fetchone()[0]
        if file_number < 2 or (last is not None and file_number <= last):
            raise CatalogError(f"media {media_uuid}: file number {file_number} after {last} is out of order")

    # -- queries ---------------------------------------------------------------------------

    def has_media(self, media_uuid: str) -> bool:
        return bool(self._query("SELECT 1 FROM media WHERE uuid = ?", (media_uuid,)))

    def media_set_of(self, media_uuid: str) -> tuple[str | None, int | None] | None:
        rows = self._query("SELECT set_uuid, seq_nr FROM media WHERE uuid = ?", (media_uuid,))
        return rows[0] if rows else None

    def snapshot_in_set(self, set_uuid: str, store: str, snapshot: str) -> bool:
        return bool(
            self._query(
                "SELECT 1 FROM archive JOIN media ON media.uuid = archive.media_uuid"
                " WHERE media.set_uuid = ? AND archive.store = ? AND archive.snapshot = ? LIMIT 1",
                (set_uuid, store, snapshot),
            )
        )

    def chunks_in_set(self, set_uuid: str, store: str) -> set[bytes]:
        """Digests of the store already on the set: a backup does not write them again."""
        rows = self._query(
            "SELECT chunk.digest FROM chunk JOIN archive ON archive.id = chunk.archive_id"
            " JOIN media ON media.uuid = archive.media_uuid WHERE media.set_uuid = ? AND archive.store = ?",
            (set_uuid, store),
        )
        return {bytes(row[0]) for row in rows}

    def snapshots_in_set(self, set_uuid: str) -> list[SnapshotPlace]:
        rows = self._query(
            "SELECT archive.media_uuid, media.seq_nr, archive.file_number, archive.store, archive.snapshot"
            " FROM archive JOIN media ON media.uuid = archive.media_uuid"
            " WHERE media.set_uuid = ? AND archive.kind = 'snapshot' ORDER BY media.seq_nr, archive.file_number",
            (set_uuid,),
        )
        return [SnapshotPlace(*row) for row in rows]

    def chunk_places(self, set_uuid: str, store: str, digests: Iterable[bytes]) -> dict[bytes, ChunkPlace]:
        """Where each digest lies on the set (the first copy in tape order)."""
        places: dict[bytes, ChunkPlace] = {}
        wanted = list(dict.fromkeys(digests))
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            rows = self._query(
                "SELECT archive.media_uuid, media.seq_nr, archive.file_number, archive.first_block,"
                " chunk.offset, chunk.size, chunk.digest FROM chunk"
                " JOIN archive ON archive.id = chunk.archive_id JOIN media ON media.uuid = archive.media_uuid"
                f" WHERE media.set_uuid = ? AND archive.store = ? AND chunk.digest IN ({','.join('?' * len(batch))})"
                " ORDER BY media.seq_nr DESC, archive.file_number DESC",
                (set_uuid, store, *batch),
            )
            for row in rows:
                places[bytes(row[6])] = ChunkPlace(*row[:6], bytes(row[6]))
        return places

    def media_archives(self, media_uuid: str) -> dict[int, tuple[str, str, str | list[bytes]]]:
        """File number → ("snapshot", content uuid, path) or ("chunk", content uuid, digests)."""
        archives: dict[int, tuple[str, str, str | list[bytes]]] = {}
        rows = self._query(
            "SELECT id, file_number, kind, content_uuid, snapshot FROM archive WHERE media_uuid = ?", (media_uuid,)
        )
        for archive_id, file_number, kind, content_uuid, snapshot in rows:
            if kind == "snapshot":
                archives[file_number] = (kind, content_uuid, snapshot)
            else:
                digests = [
                    bytes(row[0])
                    for row in self._query("SELECT digest FROM chunk WHERE archive_id = ? ORDER BY seq", (archive_id,))
                ]
                archives[file_number] = (kind, content_uuid, digests)
        return archives

    def media_content(self, media_uuid: str) -> list[tuple]:
        """(file_number, kind, store, snapshot, chunk count) of every file named, for listings."""
        return self._query(
            "SELECT file_number, kind, store, snapshot, (SELECT COUNT(*) FROM chunk WHERE archive_id = archive.id)"
            " FROM archive WHERE media_uuid = ? ORDER BY file_number",
            (media_uuid,),
        )

    # -- PBS .log --------------------------------------------------------------------------

    def log_bytes(self, media_uuid: str) -> bytes:
        """The tape's catalog as PBS's binary `.log`, checked by the same parser PBS
        rules are implemented in before it leaves."""
        with self._lock:
            row = self._db.execute("SELECT set_uuid, seq_nr FROM media WHERE uuid = ?", (media_uuid,)).fetchone()
            if row is None:
                raise CatalogError(f"no catalog for media {media_uuid}")
            set_uuid, seq_nr = row
            media = uuidlib.UUID(media_uuid)
            out = bytearray(magic.MEDIA_CATALOG_1_1 + encode_label(0, media, 0))
            if set_uuid is not None:
                out += encode_label(1, uuidlib.UUID(set_uuid), seq_nr)
            archives = self._db.execute(
                "SELECT id, file_number, kind, content_uuid, store, snapshot FROM archive WHERE media_uuid = ?"
                " ORDER BY file_number",
                (media_uuid,),
            ).fetchall()
            for archive_id, file_number, kind, content_uuid, store, snapshot in archives:
                content = uuidlib.UUID(content_uuid)
                if kind == "snapshot":
                    out += encode_snapshot(file_number, content, store, snapshot)
                    continue
                out += encode_chunk_archive_start(file_number, content, store)
                for (digest,) in self._db.execute(
                    "SELECT digest FROM chunk WHERE archive_id = ? ORDER BY seq", (archive_id,)
                ):
                    out += encode_chunk(bytes(digest))
                out += encode_chunk_archive_end(file_number, content)
        parse_catalog(bytes(out))
        return bytes(out)

    def export_log(self, media_uuid: str, directory: str | Path) -> Path:
        """Write `<media-uuid>.log` into `directory` (temp file + rename)."""
        path = Path(directory) / f"{media_uuid}.log"
        temp = path.with_suffix(".tmp")
        data = self.log_bytes(media_uuid)
        with os.fdopen(open_private_file(temp, os.O_WRONLY | os.O_TRUNC), "wb") as file:
            file.write(data)
        temp.replace(path)
        return path

    def import_log(self, data: bytes, source: str = "<.log>") -> str:
        """Replace a tape's catalog by the content of a PBS `.log`; the media UUID. Chunk offsets
        are unknown afterwards (a scan of the tape recovers them)."""
        content, checker = parse_catalog(data)
        if checker.open_archive is not None:
            raise CatalogError(f"{source}: ends inside a chunk archive")
        if content.media_uuid is None:
            raise CatalogError(f"{source}: no media label entry")
        media_uuid = str(content.media_uuid)
        set_uuid = str(content.media_set_uuid) if content.media_set_uuid is not None else None
        chunk_files: dict[int, tuple[str, list[bytes]]] = {}
        for store, digests in content.chunks.items():
            for digest, file_number in digests.items():
                chunk_files.setdefault(file_number, (store, []))[1].append(digest)
        snapshot_files = {
            file_number: (store, snapshot)
            for store, snapshots in content.snapshots.items()
            for snapshot, file_number in snapshots.items()
        }
        with self._transaction() as db:
            db.execute("DELETE FROM media WHERE uuid = ?", (media_uuid,))
            db.execute(
                "INSERT INTO media (uuid, set_uuid, seq_nr) VALUES (?, ?, ?)", (media_uuid, set_uuid, content.seq_nr)
            )
            for file_number in sorted(content.content_uuids):
                content_uuid = str(content.content_uuids[file_number])
                if file_number in snapshot_files:
                    store, snapshot = snapshot_files[file_number]
                    db.execute(
                        "INSERT INTO archive (media_uuid, file_number, kind, content_uuid, store, snapshot)"
                        " VALUES (?, ?, 'snapshot', ?, ?, ?)",
                        (media_uuid, file_number, content_uuid, store, snapshot),
                    )
                    continue
                # A chunk archive whose chunks all appear again later has no digest left here.
                store, digests = chunk_files.get(file_number, (None, []))
                if store is None:
                    continue
                archive_id = db.execute(
                    "INSERT INTO archive (media_uuid, file_number, kind, content_uuid, store)"
                    " VALUES (?, ?, 'chunk', ?, ?)",
                    (media_uuid, file_number, content_uuid, store),
                ).lastrowid
                db.executemany(
                    "INSERT INTO chunk (archive_id, seq, digest) VALUES (?, ?, ?)",
                    ((archive_id, seq, digest) for seq, digest in enumerate(digests)),
                )
        log.info("imported the catalog of media %s from %s", media_uuid, source)
        return media_uuid
