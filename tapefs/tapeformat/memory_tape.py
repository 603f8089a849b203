"""A tape in memory with the BlockDevice interface: for tests of this layer and the ones above
that need no daemon. Capacity counts block bytes; filemarks are free, as on vtape."""

from __future__ import annotations

import logging

from tapefs.tapeformat.block_device import Mark, TapePosition
from tapefs.tapeformat.errors import PhysicalEndOfTape

log = logging.getLogger(__name__)

FILEMARK = None


class MemoryTape:
    def __init__(self, capacity: int = 1 << 40, early_warning: int = 0):
        #: Blocks (bytes) and filemarks (None) in tape order.
        self.objects: list[bytes | None] = []
        self.capacity = capacity
        #: Size of the early-warning zone before the physical end.
        self.early_warning = early_warning
        self.index = 0
        self.used = 0

    def _truncate(self) -> None:
        """Writing in the middle of the tape discards everything after the position."""
        self.used -= sum(len(obj) for obj in self.objects[self.index :] if obj is not None)
        del self.objects[self.index :]

    def write_block(self, data) -> bool:
        self._truncate()
        if self.used + len(data) > self.capacity:
            raise PhysicalEndOfTape(f"memory tape full at object {self.index}")
        self.objects.append(bytes(data))
        self.used += len(data)
        self.index += 1
        return self.used >= self.capacity - self.early_warning

    def write_filemark(self) -> None:
        self._truncate()
        self.objects.append(FILEMARK)
        self.index += 1

    def read_block(self) -> bytes | Mark:
        if self.index >= len(self.objects):
            return Mark.END_OF_DATA
        obj = self.objects[self.index]
        self.index += 1
        return Mark.FILEMARK if obj is FILEMARK else obj

    def read_blocks(self, count: int) -> list[bytes | Mark]:
        blocks: list[bytes | Mark] = []
        while len(blocks) < count:
            blocks.append(self.read_block())
            if isinstance(blocks[-1], Mark):
                break
        return blocks

    def position(self) -> TapePosition:
        return TapePosition(self.objects[: self.index].count(FILEMARK), self.index)

    def locate_block(self, block_number: int) -> None:
        if block_number > len(self.objects):
            raise ValueError(f"block {block_number} is beyond end of data")
        self.index = block_number

    def locate_file(self, file_number: int) -> None:
        seen = 0
        for index, obj in enumerate(self.objects):
            if seen == file_number:
                self.index = index
                return
            if obj is FILEMARK:
                seen += 1
        if seen == file_number:
            self.index = len(self.objects)
            return
        raise ValueError(f"tape has no file {file_number}")

    def rewind(self) -> None:
        self.index = 0

    def space_to_end_of_data(self) -> None:
        self.index = len(self.objects)

    def sync(self) -> None:
        pass
