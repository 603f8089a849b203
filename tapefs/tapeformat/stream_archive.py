"""Snapshot archives, whose content is one opaque byte stream, written and read as PBS's
multi-volume streams (docs/tape-format.md, "Archives across tapes").

PBS gives up on a snapshot archive at early warning and rewrites it whole on the next tape, so a
snapshot larger than a tape can never be written. Here the part that met early warning is closed
INCOMPLETE at once (the rest of the early-warning zone stays free for that end block) and
`next_volume` supplies the next tape. There the archive is first written again whole, as PBS
does, because PBS's restore reads every tape file on its own and cannot follow parts. Only an
archive that meets early warning a second time, on a tape where it started near the front, is
bigger than a tape could ever hold: it goes on in part_number + 1, with the same content header.

Only the physical end aborts an archive: that part then has no end marker, readers ignore it,
and `ArchiveAborted` tells the caller to write the archive again. Archives finished earlier are
never touched. (Catalog archives follow PBS's own rule instead: catalog_archive.py.)
"""

from __future__ import annotations

import functools
import logging
import uuid as uuidlib
from collections.abc import Callable, Iterable
from typing import TypeVar

from tapefs.tapeformat.archive_part import ArchivePart
from tapefs.tapeformat.block import PAYLOAD_SIZE, BlockedReader, BlockedWriter
from tapefs.tapeformat.block_device import BlockDevice
from tapefs.tapeformat.content_header import ContentHeader, pretty_json, write_content_start
from tapefs.tapeformat.errors import ArchiveAborted, PhysicalEndOfTape, TapeFormatError, WrongContent
from tapefs.tapeformat.tape_file import TapeFile, open_tape_file

log = logging.getLogger(__name__)

T = TypeVar("T")
NextVolume = Callable[[ArchivePart], BlockDevice]
#: Returns the archive's content stream from its start; called again when the archive is
#: written anew on the next tape.
OpenStream = Callable[[], Iterable[bytes]]


class _WriteAgain(Exception):
    """Early warning in the first attempt: write the archive whole on `device`."""

    def __init__(self, device: BlockDevice):
        self.device = device


def write_stream_archive(
    device: BlockDevice,
    kind: str,
    content_magic: bytes,
    header_json: dict,
    open_stream: OpenStream,
    next_volume: NextVolume,
    ctime: int | None = None,
) -> list[ArchivePart]:
    """Write header and stream at the device's position; the parts of the archive as it stands
    complete on tape, one per tape. An attempt abandoned at early warning went to `next_volume`
    with `abandoned` set and is not among them."""
    header_data = pretty_json(header_json)
    try:
        return _write_parts(
            device, kind, content_magic, header_data, open_stream(), next_volume, ctime, first_attempt=True
        )
    except _WriteAgain as again:
        return _write_parts(
            again.device, kind, content_magic, header_data, open_stream(), next_volume, ctime, first_attempt=False
        )


def _write_parts(
    device: BlockDevice,
    kind: str,
    content_magic: bytes,
    header_data: bytes,
    pieces: Iterable[bytes],
    next_volume: NextVolume,
    ctime: int | None,
    first_attempt: bool,
) -> list[ArchivePart]:
    content_uuid = uuidlib.uuid4()
    parts: list[ArchivePart] = []

    def start(device: BlockDevice, part_number: int) -> tuple[BlockedWriter, ArchivePart, ContentHeader]:
        position = device.position()
        part = ArchivePart(kind, content_uuid, part_number, position.file_number, position.block_number)
        parts.append(part)
        writer = BlockedWriter(device)
        header = guarded(
            writer,
            part,
            lambda: write_content_start(writer, content_magic, header_data, content_uuid, ctime, part_number),
        )
        return writer, part, header

    writer, part, header = start(device, 0)
    ctime = header.ctime
    for piece in pieces:
        view = memoryview(piece).cast("B")
        # Block-sized slices, so the part is cut right after the block that met early warning.
        while view:
            if writer.leom:
                # Cut only when more data follows: a stream that ends in the early-warning
                # zone is simply finished there.
                close(writer, part, incomplete=True)
                if first_attempt:
                    part.abandoned = True
                    log.info("early warning: %s archive written again on the next tape", kind)
                    raise _WriteAgain(next_volume(part))
                part.continued = True
                log.info("early warning: %s archive %s continues in part %d", kind, content_uuid, part.part_number + 1)
                writer, part, _ = start(next_volume(part), part.part_number + 1)
            take = PAYLOAD_SIZE - writer.bytes_written % PAYLOAD_SIZE
            guarded(writer, part, functools.partial(writer.write, view[:take]))
            view = view[take:]
    close(writer, part, incomplete=False)
    return parts


def guarded(writer: BlockedWriter, part: ArchivePart, action: Callable[[], T]) -> T:
    """Run a write; at the physical end close the file without end marker and abort the archive."""
    try:
        return action()
    except PhysicalEndOfTape:
        writer.abort()
        log.warning(
            "physical end of tape in %s archive part %d, tape file %d", part.kind, part.part_number, part.file_number
        )
        raise ArchiveAborted(part) from None


def close(writer: BlockedWriter, part: ArchivePart, incomplete: bool) -> None:
    part.size = writer.bytes_written
    guarded(writer, part, lambda: writer.finish(incomplete=incomplete))


class StreamArchiveReader:
    """The content stream of an archive across its parts. When a part ends INCOMPLETE,
    `next_volume(header)` must return the device positioned at part header.part_number + 1;
    its content header has to repeat the content magic and UUID."""

    def __init__(self, tape_file: TapeFile, next_volume: Callable[[ContentHeader], BlockDevice] | None = None):
        if tape_file.header.part_number != 0:
            raise TapeFormatError(
                f"archive starts with part {tape_file.header.part_number}, not 0", tape_file.file_number
            )
        self.first = tape_file
        self.next_volume = next_volume
        self._file = tape_file

    @property
    def header(self) -> ContentHeader:
        return self.first.header

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all that is left for -1); b"" at the end of the last part."""
        out = bytearray()
        while size < 0 or len(out) < size:
            reader: BlockedReader = self._file.reader
            data = reader.read(PAYLOAD_SIZE * 16 if size < 0 else size - len(out))
            out += data
            if data:
                continue
            if not reader.incomplete:
                break
            self._open_next_part()
        return bytes(out)

    def _open_next_part(self) -> None:
        header = self._file.header
        if self.next_volume is None:
            raise TapeFormatError(
                f"part {header.part_number} is incomplete and no next volume was given", self._file.file_number
            )
        device = self.next_volume(header)
        tape_file = open_tape_file(device)
        if not isinstance(tape_file, TapeFile):
            raise WrongContent(f"{tape_file.value} where part {header.part_number + 1} of {header.uuid} should be")
        found = tape_file.header
        if (found.uuid, found.content_magic, found.part_number) != (
            header.uuid,
            header.content_magic,
            header.part_number + 1,
        ):
            raise WrongContent(
                f"expected part {header.part_number + 1} of {header.content_name} {header.uuid}, "
                f"found part {found.part_number} of {found.content_name} {found.uuid}",
                tape_file.file_number,
            )
        self._file = tape_file
