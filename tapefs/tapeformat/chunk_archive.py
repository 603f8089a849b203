"""Chunk archive v1.1 (docs/tape-format.md): header JSON {"store": ...}, then entries of a 48-byte header
(magic, digest, blob size) and the blob, packed.

Early warning, better than PBS: the writer never cuts a chunk. It finishes the entry
that met early warning, closes the part INCOMPLETE and, given a `next_volume` callback, goes
on with part_number + 1 (same content UUID) on the next tape. Every part is a valid chunk archive
on its own, so PBS reads each tape independently. Each entry's stream offset is recorded so that
a catalog can fetch one chunk with a single LOCATE (`read_chunk_at`).
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections.abc import Callable, Iterator
from typing import NoReturn

from construct import Bytes, Int64ul, Struct

from tapefs.tapeformat import magic
from tapefs.tapeformat.archive_part import ArchivePart, ChunkLocation
from tapefs.tapeformat.block import (
    BLOCK_SIZE,
    PAYLOAD_SIZE,
    BlockedReader,
    BlockedWriter,
    open_at_block,
)
from tapefs.tapeformat.block_device import BlockDevice
from tapefs.tapeformat.content_header import pretty_json, write_content_start
from tapefs.tapeformat.errors import (
    ArchiveAborted,
    BadMagic,
    HeaderError,
    PhysicalEndOfTape,
    TapeFormatError,
    TruncatedData,
)
from tapefs.tapeformat.snapshot_archive import check_store_name
from tapefs.tapeformat.tape_file import TapeFile

log = logging.getLogger(__name__)

ENTRY_HEADER_SIZE = 48
#: PBS starts a new chunk archive once one has used 4 GiB of tape.
MAX_CHUNK_ARCHIVE_SIZE = 4 * 1024**3
#: PBS's largest DataBlob; a bigger size field is damage.
MAX_BLOB_SIZE = 128 * 1024**2

ENTRY_HEADER = Struct(
    "magic" / Bytes(8),
    "digest" / Bytes(32),
    "size" / Int64ul,
).compile()

#: Called with the finished part when the tape is at early warning; returns the device of the
#: next tape, positioned where the continuation is to be written (normally end of data).
NextVolume = Callable[[ArchivePart], BlockDevice]


def build_entry_header(digest: bytes, size: int) -> bytes:
    if len(digest) != 32:
        raise ValueError(f"chunk digest of {len(digest)} bytes, expected 32")
    return ENTRY_HEADER.build({"magic": magic.CHUNK_ARCHIVE_ENTRY, "digest": digest, "size": size})


class ChunkArchiveWriter:
    """Appends chunks to a new chunk archive at the device's position.

    Without `next_volume`, the caller watches `tape_full` and then finishes the archive, which is
    closed as PBS does (not INCOMPLETE), and goes on with a new archive on the next tape.
    """

    def __init__(
        self,
        device: BlockDevice,
        store: str,
        next_volume: NextVolume | None = None,
        content_uuid: uuidlib.UUID | None = None,
        ctime: int | None = None,
        max_size: int = MAX_CHUNK_ARCHIVE_SIZE,
    ):
        self.store = store
        self.next_volume = next_volume
        self.max_size = max_size
        self.content_uuid = content_uuid or uuidlib.uuid4()
        self.ctime = ctime
        self.parts: list[ArchivePart] = []
        self._start_part(device, 0)

    def _start_part(self, device: BlockDevice, part_number: int) -> None:
        position = device.position()
        self._writer = BlockedWriter(device)
        self._part = ArchivePart("chunk", self.content_uuid, part_number, position.file_number, position.block_number)
        self.parts.append(self._part)
        try:
            header = write_content_start(
                self._writer,
                magic.CHUNK_ARCHIVE_1_1,
                pretty_json({"store": self.store}),
                self.content_uuid,
                self.ctime,
                part_number,
            )
        except PhysicalEndOfTape:
            self._abort()
        self.ctime = header.ctime  # every part repeats the first part's header

    @property
    def part(self) -> ArchivePart:
        """The part being written."""
        return self._part

    @property
    def size_limit_reached(self) -> bool:
        """True once the blocks this part has sent to the drive exceed `max_size` (counted as PBS
        counts them, the block being filled not included): finish, then start a new archive."""
        return self._writer.seq_nr * BLOCK_SIZE > self.max_size

    @property
    def tape_full(self) -> bool:
        """The tape of the current part is in the early-warning zone. Without `next_volume`,
        finish the archive then; with it, the next chunk starts a new part on the next tape."""
        return self._writer.leom

    def add_chunk(self, digest: bytes, blob: bytes | memoryview) -> ChunkLocation:
        """Append one entry; its location, listed in the `chunks` of the part it went into.

        ArchiveAborted (physical end): the chunks of the aborted part, this one included, are
        not on tape and go to the next tape; earlier parts stay valid."""
        if self._writer.closed:
            raise RuntimeError("chunk archive is already finished")
        if self._writer.leom:
            try:
                self._continue_on_next_volume()
            except ArchiveAborted as aborted:
                # Closing the part met the physical end: the part is lost, and this chunk, which
                # was to open the next one, is not on tape either.
                aborted.part.chunks.append(ChunkLocation(digest, aborted.part.size, len(blob)))
                raise
        location = ChunkLocation(digest, self._writer.bytes_written, len(blob))
        part = self._part
        part.chunks.append(location)
        try:
            self._writer.write(build_entry_header(digest, len(blob)))
            self._writer.write(blob)
        except PhysicalEndOfTape:
            self._abort()
        return location

    def _abort(self) -> NoReturn:
        self._writer.abort()
        log.warning(
            "physical end of tape in chunk archive part %d, tape file %d: %d chunks to rewrite",
            self._part.part_number,
            self._part.file_number,
            len(self._part.chunks),
        )
        raise ArchiveAborted(self._part)

    def _close_part(self, continued: bool) -> None:
        self._part.continued = continued
        self._part.size = self._writer.bytes_written
        try:
            self._writer.finish(incomplete=continued)
        except PhysicalEndOfTape:
            self._abort()

    def _continue_on_next_volume(self) -> None:
        # Cut between entries, only once another chunk is to be written: an archive that ends
        # in the early-warning zone is simply finished there.
        if self.next_volume is None:
            raise RuntimeError("tape is at early warning: finish this archive, go on with a new one on the next tape")
        self._close_part(continued=True)
        log.info("early warning: chunk archive %s continues in part %d", self.content_uuid, self._part.part_number + 1)
        device = self.next_volume(self._part)
        self._start_part(device, self._part.part_number + 1)

    def finish(self) -> list[ArchivePart]:
        """Close the archive; all its parts, in order."""
        if not self._writer.closed:
            self._close_part(continued=False)
        return self.parts


class ChunkArchiveReader:
    """Iterates over (digest, blob) of one chunk archive file. Blobs are returned as stored; the
    caller checks their CRC and digest. A stream without end marker raises MissingEndMarker at
    the end of the iteration: register none of its chunks then, the writer was aborted."""

    def __init__(self, tape_file: TapeFile):
        tape_file.require(magic.CHUNK_ARCHIVE_1_1)
        self.tape_file = tape_file
        store = tape_file.header_json.get("store")
        if store is None:
            raise HeaderError("chunk archive header has no store name", tape_file.file_number)
        try:
            self.store = check_store_name(store)
        except ValueError as error:
            raise HeaderError(f"chunk archive header: {error}", tape_file.file_number) from None
        #: Digest of an entry cut short at the end of the stream (PBS does that at early warning).
        self.truncated_entry: bytes | None = None
        #: Where each entry read so far lies, as the writer reports it: a scan of a tape
        #: rebuilds the per-chunk offsets of the catalog from these.
        self.locations: list[ChunkLocation] = []

    @property
    def file_number(self) -> int:
        return self.tape_file.file_number

    @property
    def first_block(self) -> int:
        """Logical object number of the archive's block 0, for `read_chunk_at`."""
        return self.tape_file.reader.file_first_block

    @property
    def incomplete(self) -> bool:
        """The archive goes on in the next part (valid once the iteration is over)."""
        return self.tape_file.reader.incomplete

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        reader = self.tape_file.reader
        while True:
            offset = reader.offset
            offset_block = offset // PAYLOAD_SIZE
            raw = reader.read(ENTRY_HEADER_SIZE)
            if not raw:
                return
            if len(raw) != ENTRY_HEADER_SIZE:
                raise TruncatedData("stream ends inside a chunk entry header", reader.file_number, offset_block)
            entry = ENTRY_HEADER.parse(raw)
            _check_entry(entry, reader.file_number, offset_block)
            blob = reader.read(entry.size)
            if len(blob) != entry.size:
                # PBS closes an archive at early warning even inside a blob and calls that a
                # normal end; say so instead of hiding it.
                self.truncated_entry = entry.digest
                log.warning(
                    "tape file %d: last chunk %s cut short (%d of %d bytes); it is on another tape",
                    reader.file_number,
                    entry.digest.hex(),
                    len(blob),
                    entry.size,
                )
                return
            self.locations.append(ChunkLocation(entry.digest, offset, entry.size))
            yield entry.digest, blob


def _check_entry(entry, file_number: int, block: int) -> None:
    if entry.magic != magic.CHUNK_ARCHIVE_ENTRY:
        raise BadMagic("wrong chunk entry magic", file_number, block)
    if entry.size > MAX_BLOB_SIZE:
        raise HeaderError(f"chunk entry of {entry.size} bytes exceeds {MAX_BLOB_SIZE}", file_number, block)


def read_chunk_at(device: BlockDevice, file_number: int, first_block: int, location: ChunkLocation) -> bytes:
    """The blob of one chunk, after a single LOCATE to the block holding its entry header."""
    reader = open_at_block(device, file_number, first_block, location.block_index)
    if reader.skip(location.offset % PAYLOAD_SIZE) != location.offset % PAYLOAD_SIZE:
        raise TruncatedData("stream ends before the chunk entry", file_number, location.block_index)
    return _read_entry(reader, location, file_number)


#: A blob's magic and CRC, all the header an unencrypted blob has.
BLOB_HEAD_SIZE = 12

#: Between two wanted chunks of an archive, up to this many stream bytes are read and passed
#: over rather than located past: a drive streams through a few MiB faster than it repositions.
RUN_MAX_GAP = 16 * 1024**2


class ChunkRunReader:
    """Reads chunks of the archives of one tape with as few LOCATEs as possible: the stream stays
    open where the last chunk ended, and a later chunk of the same archive at most RUN_MAX_GAP
    further on is reached by reading on. So chunks asked for one by one in tape order (a
    sequential copy) stream like one read. Call `forget` when the tape was moved by other means."""

    def __init__(self, device: BlockDevice):
        self.device = device
        self._reader: BlockedReader | None = None
        #: Stream bytes read: the entries asked for and the gaps passed over.
        self.bytes_read = 0
        #: Of those, the gaps: bytes read only to reach the next chunk without a LOCATE.
        self.bytes_passed_over = 0
        self.locates = 0

    def forget(self) -> None:
        self._reader = None

    def read(self, file_number: int, first_block: int, location: ChunkLocation) -> tuple[bytes, bytes]:
        """The blob of one chunk as its first BLOB_HEAD_SIZE bytes (magic and CRC) and the rest,
        read apart so the data of an uncompressed chunk is the rest as it is, not a copy out of
        the blob; TapeFormatError when its entry is damaged or not there."""
        reader, self._reader = self._reader, None
        if (
            reader is None
            or reader.file_number != file_number
            or not 0 <= location.offset - reader.offset <= RUN_MAX_GAP
        ):
            self.locates += 1
            reader = open_at_block(self.device, file_number, first_block, location.block_index)
        gap = location.offset - reader.offset
        passed = reader.skip(gap)
        self.bytes_read += passed
        self.bytes_passed_over += passed
        if passed != gap:
            raise TruncatedData("stream ends before the chunk entry", file_number, reader.block_index)
        head, rest = _read_entry_split(reader, location, file_number)
        self.bytes_read += ENTRY_HEADER_SIZE + len(head) + len(rest)
        self._reader = reader
        return head, rest


def _read_entry(reader: BlockedReader, location: ChunkLocation, file_number: int) -> bytes:
    entry = _enter_entry(reader, location, file_number)
    blob = reader.read(entry.size)
    if len(blob) != entry.size:
        raise TruncatedData(f"chunk {entry.digest.hex()} cut short", file_number, reader.block_index)
    return blob


def _read_entry_split(reader: BlockedReader, location: ChunkLocation, file_number: int) -> tuple[bytes, bytes]:
    """The blob of the entry at the reader's position as its first BLOB_HEAD_SIZE bytes and the
    rest (see `ChunkRunReader.read`)."""
    entry = _enter_entry(reader, location, file_number)
    head = reader.read(min(BLOB_HEAD_SIZE, entry.size))
    rest = reader.read(entry.size - len(head))
    if len(head) + len(rest) != entry.size:
        raise TruncatedData(f"chunk {entry.digest.hex()} cut short", file_number, reader.block_index)
    return head, rest


def _enter_entry(reader: BlockedReader, location: ChunkLocation, file_number: int):
    """The checked header of the entry at the reader's position, which must hold `location`'s
    chunk; the reader is left at its blob."""
    raw = reader.read(ENTRY_HEADER_SIZE)
    if len(raw) != ENTRY_HEADER_SIZE:
        raise TruncatedData("stream ends inside a chunk entry header", file_number, location.block_index)
    entry = ENTRY_HEADER.parse(raw)
    _check_entry(entry, file_number, location.block_index)
    if entry.digest != location.digest:
        raise TapeFormatError(
            f"entry holds chunk {entry.digest.hex()}, catalog says {location.digest.hex()}",
            file_number,
            location.block_index,
        )
    reader.expect(entry.size)
    return entry
