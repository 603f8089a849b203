"""What the format layer needs from a tape drive, and the adapter for `tapefs.device.drive.Drive`.

Reading reports filemarks and end of data as values, not exceptions: at every tape file boundary
a reader meets one, so they are results here rather than errors.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from typing import Protocol

from tapefs.device.drive import Drive
from tapefs.scsi.errors import EndOfData, FilemarkDetected, VolumeOverflow
from tapefs.tapeformat.errors import PhysicalEndOfTape

log = logging.getLogger(__name__)

#: Every PBS data block is this long (docs/tape-format.md, "Blocks").
BLOCK_SIZE = 262144


class Mark(enum.Enum):
    FILEMARK = "filemark"
    END_OF_DATA = "end of data"


@dataclasses.dataclass(frozen=True)
class TapePosition:
    #: Filemarks before the position: the number of the tape file we are in.
    file_number: int
    #: Blocks plus filemarks before the position (the logical object number LOCATE takes).
    block_number: int


class BlockDevice(Protocol):
    def write_block(self, data: bytes | bytearray | memoryview) -> bool:
        """Write one block; True when the tape is in the early-warning zone (the block was written).
        Raises PhysicalEndOfTape when the block could not be written."""

    def write_filemark(self) -> None:
        """Write one filemark (early warning is ignored, as PBS does)."""

    def read_block(self) -> bytes | Mark:
        """The next block, or the filemark / end of data standing in the way (a filemark is
        passed over, end of data is not)."""

    def read_blocks(self, count: int) -> list[bytes | Mark]:
        """Up to `count` blocks as `read_block` gives them, ending early with the first mark: for
        blocks known to be there, which a drive may then be asked for all at once. After a mark
        the tape may stand further on than after `read_block`: locate before reading again."""

    def position(self) -> TapePosition: ...

    def locate_block(self, block_number: int) -> None:
        """Stand before the object with this logical object number."""

    def locate_file(self, file_number: int) -> None:
        """Stand at the first block of tape file `file_number` (0 = beginning of tape)."""

    def rewind(self) -> None: ...

    def space_to_end_of_data(self) -> None: ...

    def sync(self) -> None:
        """Flush the drive's buffer to the medium."""


class DriveBlockDevice:
    """The BlockDevice of a `tapefs.device.drive.Drive` (SG_IO or vtape socket)."""

    def __init__(self, drive: Drive):
        self.drive = drive

    def write_block(self, data: bytes | bytearray | memoryview) -> bool:
        try:
            return self.drive.write_block(data)
        except VolumeOverflow as error:
            raise PhysicalEndOfTape(str(error)) from error

    def write_filemark(self) -> None:
        self.drive.write_filemarks(1)

    def read_block(self) -> bytes | Mark:
        # One byte more than a block: a longer foreign block shows up as too long instead of
        # being cut to 256 KiB by SILI.
        try:
            return self.drive.read_block(BLOCK_SIZE + 1)
        except FilemarkDetected:
            return Mark.FILEMARK
        except EndOfData:
            return Mark.END_OF_DATA

    def read_blocks(self, count: int) -> list[bytes | Mark]:
        blocks: list[bytes | Mark] = []
        for outcome in self.drive.read_blocks(count, BLOCK_SIZE + 1):
            if isinstance(outcome, FilemarkDetected):
                blocks.append(Mark.FILEMARK)
            elif isinstance(outcome, EndOfData):
                blocks.append(Mark.END_OF_DATA)
            elif isinstance(outcome, Exception):
                raise outcome
            else:
                blocks.append(outcome)
                continue
            break
        return blocks

    def position(self) -> TapePosition:
        position = self.drive.read_position()
        return TapePosition(position.file_number, position.block_number)

    def locate_block(self, block_number: int) -> None:
        self.drive.locate_object(block_number)

    def locate_file(self, file_number: int) -> None:
        self.drive.locate_file(file_number)

    def rewind(self) -> None:
        self.drive.rewind()

    def space_to_end_of_data(self) -> None:
        self.drive.space_to_end_of_data()

    def sync(self) -> None:
        self.drive.sync()
