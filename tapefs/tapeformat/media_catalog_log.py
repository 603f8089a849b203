"""PBS's binary media catalog, `<media-uuid>.log`, and its commit protocol
(docs/catalog-formats.md, "The binary `.log`").

The file is the magic and then records: a type byte and a C-layout struct (padding written as
zeros, ignored when read), some followed by names. It says which tape file holds which
snapshot and which chunks; the same bytes go on tape as the body of a catalog archive.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import uuid as uuidlib
from pathlib import Path

from construct import Bytes, Int8ul, Int16ul, Int64ul, Padding, Struct

from tapefs.config.private_files import open_private_file
from tapefs.tapeformat import magic
from tapefs.tapeformat.errors import MediaCatalogError
from tapefs.tapeformat.snapshot_archive import SnapshotPath, check_store_name

log = logging.getLogger(__name__)

LABEL, CHUNK_ARCHIVE_START, CHUNK, CHUNK_ARCHIVE_END, SNAPSHOT = b"L", b"A", b"C", b"E", b"S"

LABEL_ENTRY = Struct("file_number" / Int64ul, "uuid" / Bytes(16), "seq_nr" / Int64ul).compile()
CHUNK_ARCHIVE_START_ENTRY = Struct(
    "file_number" / Int64ul, "uuid" / Bytes(16), "store_name_len" / Int8ul, Padding(7)
).compile()
CHUNK_ARCHIVE_END_ENTRY = Struct("file_number" / Int64ul, "uuid" / Bytes(16)).compile()
SNAPSHOT_ENTRY = Struct(
    "file_number" / Int64ul, "uuid" / Bytes(16), "store_name_len" / Int8ul, Padding(1), "name_len" / Int16ul, Padding(4)
).compile()
ENTRY_SIZES = {LABEL: 32, CHUNK_ARCHIVE_START: 32, CHUNK: 32, CHUNK_ARCHIVE_END: 24, SNAPSHOT: 32}

#: PBS commits a catalog while restoring or scanning once this much is pending.
COMMIT_THRESHOLD = 1024 * 1024


def encode_label(file_number: int, uuid: uuidlib.UUID, seq_nr: int) -> bytes:
    return LABEL + LABEL_ENTRY.build({"file_number": file_number, "uuid": uuid.bytes, "seq_nr": seq_nr})


def encode_chunk_archive_start(file_number: int, uuid: uuidlib.UUID, store: str) -> bytes:
    name = _name(store, 255, "store name")
    return (
        CHUNK_ARCHIVE_START
        + CHUNK_ARCHIVE_START_ENTRY.build({"file_number": file_number, "uuid": uuid.bytes, "store_name_len": len(name)})
        + name
    )


def encode_chunk(digest: bytes) -> bytes:
    if len(digest) != 32:
        raise ValueError(f"chunk digest of {len(digest)} bytes, expected 32")
    return CHUNK + digest


def encode_chunk_archive_end(file_number: int, uuid: uuidlib.UUID) -> bytes:
    return CHUNK_ARCHIVE_END + CHUNK_ARCHIVE_END_ENTRY.build({"file_number": file_number, "uuid": uuid.bytes})


def encode_snapshot(file_number: int, uuid: uuidlib.UUID, store: str, snapshot: str) -> bytes:
    SnapshotPath.parse(snapshot)
    store_name, name = _name(store, 255, "store name"), _name(snapshot, 65535, "snapshot path")
    return (
        SNAPSHOT
        + SNAPSHOT_ENTRY.build(
            {"file_number": file_number, "uuid": uuid.bytes, "store_name_len": len(store_name), "name_len": len(name)}
        )
        + store_name
        + b":"
        + name
    )


def _name(text: str, limit: int, what: str) -> bytes:
    data = text.encode()
    if len(data) > limit:
        raise ValueError(f"{what} of {len(data)} bytes exceeds {limit}")
    return data


@dataclasses.dataclass
class CatalogContent:
    """What a catalog says: per store, snapshot path → file number and digest → file number."""

    media_uuid: uuidlib.UUID | None = None
    media_set_uuid: uuidlib.UUID | None = None
    seq_nr: int | None = None
    snapshots: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    chunks: dict[str, dict[bytes, int]] = dataclasses.field(default_factory=dict)
    #: Content UUID of every chunk and snapshot archive, by file number.
    content_uuids: dict[int, uuidlib.UUID] = dataclasses.field(default_factory=dict)


class _Checker:
    """The validation rules of the format, shared by loading and writing, so a writer cannot produce a
    catalog that PBS (or we) would refuse to load."""

    def __init__(self, content: CatalogContent):
        self.content = content
        self.last_file: int | None = None
        self.labels = 0
        self.open_archive: tuple[int, uuidlib.UUID, str] | None = None
        #: Bytes up to the end of the last entry that left no chunk archive open.
        self.consistent_end = 0

    def label(self, file_number: int, uuid: uuidlib.UUID, seq_nr: int) -> None:
        if self.open_archive:
            raise MediaCatalogError("label entry inside a chunk archive")
        if file_number != self.labels or (self.last_file is not None and file_number != self.last_file + 1):
            raise MediaCatalogError(f"label for file {file_number} out of order")
        if file_number == 0:
            if seq_nr != 0:
                raise MediaCatalogError(f"media label entry with seq_nr {seq_nr}")
            if self.content.media_uuid is not None and uuid != self.content.media_uuid:
                raise MediaCatalogError(f"catalog of media {uuid} where {self.content.media_uuid} was expected")
            self.content.media_uuid = uuid
        elif file_number == 1:
            if self.content.media_set_uuid is not None and (uuid, seq_nr) != (
                self.content.media_set_uuid,
                self.content.seq_nr,
            ):
                raise MediaCatalogError(f"got unexpected media set {uuid} seq {seq_nr}")
            self.content.media_set_uuid, self.content.seq_nr = uuid, seq_nr
        else:
            raise MediaCatalogError(f"label entry for file {file_number}")
        self.labels += 1
        self.last_file = file_number

    def _data_file(self, file_number: int, what: str) -> None:
        if self.open_archive:
            raise MediaCatalogError(f"{what} inside a chunk archive")
        if file_number < 2 or (self.last_file is not None and file_number <= self.last_file):
            raise MediaCatalogError(f"{what} for file {file_number} after file {self.last_file}")

    def start_archive(self, file_number: int, uuid: uuidlib.UUID, store: str) -> None:
        self._data_file(file_number, "chunk archive")
        self._store_name(store)
        self.open_archive = (file_number, uuid, store)
        self.last_file = file_number
        self.content.content_uuids[file_number] = uuid

    @staticmethod
    def _store_name(store: str) -> None:
        try:
            check_store_name(store)
        except ValueError as error:
            raise MediaCatalogError(str(error)) from None

    def chunk(self, digest: bytes) -> None:
        if not self.open_archive:
            raise MediaCatalogError("chunk entry outside a chunk archive")
        file_number, _, store = self.open_archive
        self.content.chunks.setdefault(store, {})[digest] = file_number

    def end_archive(self, file_number: int, uuid: uuidlib.UUID) -> None:
        if not self.open_archive or self.open_archive[:2] != (file_number, uuid):
            raise MediaCatalogError(f"chunk archive end for file {file_number} does not match its start")
        self.open_archive = None

    def snapshot(self, file_number: int, uuid: uuidlib.UUID, store: str, snapshot: str) -> None:
        self._data_file(file_number, "snapshot")
        self._store_name(store)
        try:
            SnapshotPath.parse(snapshot)
        except ValueError as error:
            raise MediaCatalogError(str(error)) from None
        self.last_file = file_number
        self.content.snapshots.setdefault(store, {})[snapshot] = file_number
        self.content.content_uuids[file_number] = uuid


class _TornEntry(MediaCatalogError):
    """The data ends inside an entry."""


def parse_catalog(
    data: bytes, content: CatalogContent | None = None, tolerate_torn_tail: bool = False
) -> tuple[CatalogContent, _Checker]:
    """Check and decode `.log` bytes; `content` may carry the expected media and set. With
    `tolerate_torn_tail`, an entry cut short at the end (a commit interrupted by a crash) ends the
    parse instead of failing it; `consistent_end` then tells where the intact part ends."""
    content = content or CatalogContent()
    checker = _Checker(content)
    if not data:
        return content, checker
    if data[:8] == magic.MEDIA_CATALOG_1_0:
        raise MediaCatalogError("media catalog v1.0 is no longer supported")
    if data[:8] != magic.MEDIA_CATALOG_1_1:
        raise MediaCatalogError("wrong magic number - not a media catalog")
    view, pos = memoryview(data), 8
    checker.consistent_end = pos
    while pos < len(view):
        try:
            pos = _parse_entry(view, pos, checker)
        except _TornEntry:
            if not tolerate_torn_tail:
                raise
            break
        if checker.open_archive is None:
            checker.consistent_end = pos
    return content, checker


def _parse_entry(view: memoryview, pos: int, checker: _Checker) -> int:
    """Check and apply the entry at `pos`; the position after it."""
    kind = bytes(view[pos : pos + 1])
    size = ENTRY_SIZES.get(kind)
    if size is None:
        raise MediaCatalogError(f"unknown entry type {kind!r} at byte {pos}")
    body = view[pos + 1 : pos + 1 + size]
    if len(body) != size:
        raise _TornEntry(f"truncated {kind.decode()} entry at byte {pos}")
    start, pos = pos, pos + 1 + size
    if kind == CHUNK:
        checker.chunk(bytes(body))
    elif kind == LABEL:
        entry = LABEL_ENTRY.parse(body)
        checker.label(entry.file_number, uuidlib.UUID(bytes=entry.uuid), entry.seq_nr)
    elif kind == CHUNK_ARCHIVE_END:
        entry = CHUNK_ARCHIVE_END_ENTRY.parse(body)
        checker.end_archive(entry.file_number, uuidlib.UUID(bytes=entry.uuid))
    elif kind == CHUNK_ARCHIVE_START:
        entry = CHUNK_ARCHIVE_START_ENTRY.parse(body)
        store, pos = _take(view, pos, entry.store_name_len, start), pos + entry.store_name_len
        checker.start_archive(entry.file_number, uuidlib.UUID(bytes=entry.uuid), _text(store, "store name", start))
    else:
        entry = SNAPSHOT_ENTRY.parse(body)
        store = _take(view, pos, entry.store_name_len, start)
        pos += entry.store_name_len
        if _take(view, pos, 1, start) != b":":
            raise MediaCatalogError(f"snapshot entry at byte {start} lacks the ':' separator")
        name = _take(view, pos + 1, entry.name_len, start)
        pos += 1 + entry.name_len
        checker.snapshot(
            entry.file_number,
            uuidlib.UUID(bytes=entry.uuid),
            _text(store, "store name", start),
            _text(name, "snapshot path", start),
        )
    return pos


def _text(data: bytes, what: str, entry_start: int) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise MediaCatalogError(f"{what} of the entry at byte {entry_start} is not UTF-8") from None


def _take(view: memoryview, pos: int, size: int, entry_start: int) -> bytes:
    data = bytes(view[pos : pos + size])
    if len(data) != size:
        raise _TornEntry(f"truncated entry at byte {entry_start}")
    return data


class MediaCatalogLog:
    """A `.log` file: entries go to `pending` first and reach the disk on `commit` (append under
    an exclusive flock, then fdatasync). Use `create` for a new or reassigned tape (atomic
    temp file + rename) and `load` for an existing one."""

    def __init__(self, path: Path, content: CatalogContent, checker: _Checker, file_size: int):
        self.path = Path(path)
        self.content = content
        self._checker = checker
        self._has_magic = file_size > 0
        self.pending = bytearray()

    @classmethod
    def create(
        cls, directory: Path, media_uuid: uuidlib.UUID, media_set: tuple[uuidlib.UUID, int] | None = None
    ) -> MediaCatalogLog:
        """Write `<uuid>.log` holding only the label entries (file 0, and file 1 with a set)."""
        path = Path(directory) / f"{media_uuid}.log"
        temp = path.with_suffix(".tmp")
        data = magic.MEDIA_CATALOG_1_1 + encode_label(0, media_uuid, 0)
        if media_set is not None:
            data += encode_label(1, media_set[0], media_set[1])
        with os.fdopen(open_private_file(temp, os.O_WRONLY | os.O_TRUNC), "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
        return cls.load(path, media_uuid)

    @classmethod
    def load(
        cls,
        path: Path,
        media_uuid: uuidlib.UUID | None = None,
        media_set: tuple[uuidlib.UUID, int] | None = None,
        repair: bool = False,
    ) -> MediaCatalogLog:
        """Read and check a catalog; the expected media and set, when given, must match.

        `repair` cuts off what a commit interrupted by a crash left behind (a torn last entry,
        a chunk archive without its end), which PBS would refuse or could not append to. Those
        archives are then simply not registered; the tape still holds them."""

        def expected() -> CatalogContent:
            return CatalogContent(media_uuid, *(media_set or (None, None)))

        with open(path, "r+b" if repair else "rb") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            data = file.read()
            try:
                content, checker = parse_catalog(data, expected(), tolerate_torn_tail=repair)
                if repair and data and checker.consistent_end < len(data):
                    log.warning(
                        "%s: dropping %d bytes of an interrupted commit", path, len(data) - checker.consistent_end
                    )
                    data = data[: checker.consistent_end]
                    file.truncate(len(data))
                    os.fsync(file.fileno())
                    content, checker = parse_catalog(data, expected())
            except MediaCatalogError as error:
                raise MediaCatalogError(f"{path}: {error}") from None
        return cls(path, content, checker, len(data))

    def register_label(self, file_number: int, uuid: uuidlib.UUID, seq_nr: int) -> None:
        self._checker.label(file_number, uuid, seq_nr)
        self.pending += encode_label(file_number, uuid, seq_nr)

    def start_chunk_archive(self, file_number: int, uuid: uuidlib.UUID, store: str) -> None:
        entry = encode_chunk_archive_start(file_number, uuid, store)
        self._checker.start_archive(file_number, uuid, store)
        self.pending += entry

    def register_chunk(self, digest: bytes) -> None:
        entry = encode_chunk(digest)
        self._checker.chunk(digest)
        self.pending += entry

    def end_chunk_archive(self, file_number: int, uuid: uuidlib.UUID) -> None:
        self._checker.end_archive(file_number, uuid)
        self.pending += encode_chunk_archive_end(file_number, uuid)

    def register_chunk_archive(self, file_number: int, uuid: uuidlib.UUID, store: str, digests: list[bytes]) -> None:
        """A whole chunk archive (or one part of it) that is closed on tape."""
        self.start_chunk_archive(file_number, uuid, store)
        for digest in digests:
            self.register_chunk(digest)
        self.end_chunk_archive(file_number, uuid)

    def register_snapshot(self, file_number: int, uuid: uuidlib.UUID, store: str, snapshot: str) -> None:
        entry = encode_snapshot(file_number, uuid, store, snapshot)
        self._checker.snapshot(file_number, uuid, store, snapshot)
        self.pending += entry

    def commit(self) -> None:
        """Append the pending entries and fdatasync. Not atomic, as in PBS: a crash can leave a
        torn last entry, which `load` reports."""
        if not self.pending:
            return
        with open(self.path, "ab") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            try:
                if not self._has_magic:
                    file.write(magic.MEDIA_CATALOG_1_1)
                file.write(self.pending)
                file.flush()
                os.fdatasync(file.fileno())
            finally:
                fcntl.flock(file, fcntl.LOCK_UN)
        self._has_magic = True
        self.pending.clear()

    def commit_if_large(self) -> None:
        if len(self.pending) > COMMIT_THRESHOLD:
            if self._checker.open_archive:
                raise MediaCatalogError("cannot commit inside an open chunk archive")
            self.commit()

    def contents(self) -> bytes:
        """The committed file, as it goes into a catalog archive."""
        return self.path.read_bytes()
