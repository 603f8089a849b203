"""One tape file opened for reading: its content header, header JSON and the stream after them."""

from __future__ import annotations

import dataclasses
import logging

from tapefs.tapeformat.block import BlockedReader, open_next_file
from tapefs.tapeformat.block_device import BLOCK_SIZE, BlockDevice, Mark
from tapefs.tapeformat.content_header import ContentHeader, read_content_start
from tapefs.tapeformat.errors import WrongContent

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TapeFile:
    header: ContentHeader
    header_json: dict
    #: Positioned at the first byte of the content stream.
    reader: BlockedReader

    @property
    def file_number(self) -> int:
        return self.reader.file_number

    def require(self, *content_magics: bytes) -> None:
        if self.header.content_magic not in content_magics:
            raise WrongContent(f"unexpected {self.header.content_name}", self.file_number)


def open_tape_file(device: BlockDevice) -> TapeFile | Mark:
    """The file at the position; Mark.FILEMARK for an empty file, Mark.END_OF_DATA past the last."""
    reader = open_next_file(device)
    if isinstance(reader, Mark):
        return reader
    header, header_json = read_content_start(reader)
    return TapeFile(header, header_json, reader)


@dataclasses.dataclass(frozen=True)
class ScannedFile:
    """One line of a tape listing (PBS's `debug scan`)."""

    file_number: int
    #: None for an empty file (two filemarks in a row).
    header: ContentHeader | None
    #: Stream bytes after the content header and its JSON.
    content_bytes: int
    incomplete: bool
    missing_end_marker: bool


def scan_files(device: BlockDevice):
    """Every file from the position to end of data, read through and described."""
    while True:
        file_number = device.position().file_number
        tape_file = open_tape_file(device)
        if tape_file is Mark.END_OF_DATA:
            return
        if tape_file is Mark.FILEMARK:
            yield ScannedFile(file_number, None, 0, False, False)
            continue
        skipped = tape_file.reader.skip_data()
        reader = tape_file.reader
        yield ScannedFile(file_number, tape_file.header, skipped, reader.incomplete, reader.missing_end_marker)


def move_to_end_of_data(device: BlockDevice) -> int:
    """Stand at end of data ready to append; the number of the file the next write starts.

    A writer that crashed may have left its last blocks without the closing filemark. If the last
    object before end of data is a block, one filemark is written to end that file (PBS's
    `write_missing_eof`), so the next file starts where its number says."""
    device.space_to_end_of_data()
    end = device.position()
    if end.block_number == 0:
        return 0
    device.locate_block(end.block_number - 1)
    if device.read_block() is not Mark.FILEMARK:
        log.warning("tape file %d has no closing filemark (interrupted write); writing one", end.file_number)
        device.write_filemark()
    return device.position().file_number


def read_raw_range(device: BlockDevice, file_number: int, offset: int, length: int) -> bytes:
    """Bytes [offset, offset + length) of tape file `file_number` as recorded: its blocks, headers
    included, one after the other (for forensics); fewer at the end of the file."""
    device.locate_file(file_number)
    first_block = device.position().block_number
    device.locate_block(first_block + offset // BLOCK_SIZE)
    skip = offset % BLOCK_SIZE
    data = bytearray()
    while len(data) < skip + length:
        block = device.read_block()
        if isinstance(block, Mark):
            break
        data += block
    return bytes(data[skip : skip + length])
