"""One tape file opened for reading: its content header, header JSON and the stream after them."""
from __future__ import annotations

import dataclasses
import logging

from tapefs.tapeformat.block import BlockedReader, open_next_file
from tapefs.tapeformat.block_device import BlockDevice, Mark
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
