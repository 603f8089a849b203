"""The block layer (docs/tape-format.md, "Blocks"): a tape file is a stream of 256 KiB blocks, each a 16-byte header
(magic, flags, payload size, sequence number) and payload, closed by an END_OF_STREAM block and
one filemark."""

from __future__ import annotations

import logging
from collections import deque

from construct import Bytes, Int8ul, Int24ul, Int32ul, Struct

from tapefs.tapeformat import magic
from tapefs.tapeformat.block_device import BLOCK_SIZE, BlockDevice, Mark
from tapefs.tapeformat.errors import (
    BadMagic,
    BlockSizeError,
    HeaderError,
    MissingEndMarker,
    SequenceError,
    TapeFormatError,
    UnexpectedEndOfData,
)

log = logging.getLogger(__name__)

HEADER_SIZE = 16
PAYLOAD_SIZE = BLOCK_SIZE - HEADER_SIZE  # 262128
#: Most blocks `BlockedReader.expect` asks for at once: a 16 MiB chunk and its entry header.
MAX_EXPECTED_BLOCKS = 66

END_OF_STREAM = 0x01
INCOMPLETE = 0x02

BLOCK_HEADER = Struct(
    "magic" / Bytes(8),
    "flags" / Int8ul,
    "size" / Int24ul,
    "seq_nr" / Int32ul,
).compile()

_ZERO_PAYLOAD = bytes(PAYLOAD_SIZE)
SEQ_NR_OFFSET = 12


def build_block_header(flags: int, size: int, seq_nr: int) -> bytes:
    return BLOCK_HEADER.build({"magic": magic.BLOCK_HEADER, "flags": flags, "size": size, "seq_nr": seq_nr})


_FULL_BLOCK_HEADER_START = build_block_header(0, PAYLOAD_SIZE, 0)[:SEQ_NR_OFFSET]


def blocks_for_stream(length: int) -> int:
    """Blocks a stream of `length` bytes takes: full blocks plus the end block (which may be empty)."""
    return length // PAYLOAD_SIZE + 1


class BlockedWriter:
    """Packs one tape file's byte stream into full blocks. Early warning is sticky and reported
    to the caller, which decides when to stop; the writer keeps accepting data."""

    def __init__(self, device: BlockDevice):
        self.device = device
        self._block = bytearray(BLOCK_SIZE)
        self._fill = 0
        self.seq_nr = 0
        #: Stream bytes accepted so far: the offset the next write lands at.
        self.bytes_written = 0
        self.leom = False
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> bool:
        """Append to the stream; True once any block has reported early warning."""
        view = memoryview(data).cast("B")
        while view:
            take = min(PAYLOAD_SIZE - self._fill, len(view))
            start = HEADER_SIZE + self._fill
            self._block[start : start + take] = view[:take]
            self._fill += take
            self.bytes_written += take
            view = view[take:]
            if self._fill == PAYLOAD_SIZE:
                self._write_block(0)
        return self.leom

    def _write_block(self, flags: int) -> None:
        if flags == 0 and self._fill == PAYLOAD_SIZE:
            # Full blocks differ only in seq_nr; building the header through construct costs
            # about as much as the block's share of a 400 MB/s budget, so patch the field.
            self._block[:SEQ_NR_OFFSET] = _FULL_BLOCK_HEADER_START
            self._block[SEQ_NR_OFFSET:HEADER_SIZE] = self.seq_nr.to_bytes(4, "little")
        else:
            self._block[:HEADER_SIZE] = build_block_header(flags, self._fill, self.seq_nr)
        if self.device.write_block(self._block):
            if not self.leom:
                log.debug("early warning at block %d", self.seq_nr)
            self.leom = True
        self.seq_nr += 1
        self._fill = 0

    def finish(self, incomplete: bool = False) -> bool:
        """Write the END_OF_STREAM block (flagged INCOMPLETE if asked) and the filemark."""
        end = HEADER_SIZE + self._fill
        self._block[end:] = _ZERO_PAYLOAD[: BLOCK_SIZE - end]
        self._write_block(END_OF_STREAM | (INCOMPLETE if incomplete else 0))
        self.device.write_filemark()
        self.closed = True
        return self.leom

    def abort(self) -> None:
        """Close the file with a filemark and no end marker: readers then discard it."""
        self.device.write_filemark()
        self.closed = True


class BlockedReader:
    """Reads one tape file's byte stream back, checking every block header and
    consuming the closing filemark. Use `open_next_file` or `open_at_block` to make one."""

    def __init__(self, device: BlockDevice, file_number: int, file_first_block: int, block: bytes, seq_nr: int = 0):
        self.device = device
        self.file_number = file_number
        #: Logical object number of the file's block 0.
        self.file_first_block = file_first_block
        self._seq_nr = seq_nr
        self._payload = memoryview(b"")
        self._pos = 0
        #: Blocks read ahead for `expect`, not yet taken.
        self._expected: deque[bytes | Mark] = deque()
        self.end_of_stream = False
        self.incomplete = False
        #: True when the file ended at a filemark without an END_OF_STREAM block.
        self.missing_end_marker = False
        self._accept(block)

    def _error(self, cls, message: str) -> TapeFormatError:
        """An error at the block expected next (the one being checked, or the missing one)."""
        return cls(message, self.file_number, self._seq_nr)

    def _accept(self, block: bytes) -> None:
        if len(block) > BLOCK_SIZE:
            raise self._error(BlockSizeError, f"got a block longer than {BLOCK_SIZE} bytes")
        if len(block) < BLOCK_SIZE:
            raise self._error(BlockSizeError, f"got a block of {len(block)} bytes, expected {BLOCK_SIZE}")
        header = BLOCK_HEADER.parse(block[:HEADER_SIZE])
        if header.magic != magic.BLOCK_HEADER:
            raise self._error(BadMagic, "unknown block magic - not written by PBS or tapefs")
        if header.seq_nr != self._seq_nr:
            raise self._error(SequenceError, f"block sequence number {header.seq_nr}, expected {self._seq_nr}")
        if header.size > PAYLOAD_SIZE:
            raise self._error(HeaderError, f"block payload size {header.size} exceeds {PAYLOAD_SIZE}")
        end = bool(header.flags & END_OF_STREAM)
        if not end and header.size != PAYLOAD_SIZE:
            # PBS always fills blocks before the last; a short one means foreign or damaged data.
            raise self._error(HeaderError, f"block of {header.size} payload bytes before the end of stream")
        self._payload = memoryview(block)[HEADER_SIZE : HEADER_SIZE + header.size]
        self._pos = 0
        self._seq_nr += 1
        if end:
            self.end_of_stream = True
            self.incomplete = bool(header.flags & INCOMPLETE)
            self._consume_filemark()

    def expect(self, size: int) -> None:
        """The next `size` bytes are known to be in this file (the catalog says where a chunk
        is): the blocks holding them are read at once, which a drive that queues commands
        streams without waiting for each (a vtape drive took a round trip per block). Where the
        file turns out shorter, the tape stands past its end: locate before reading again."""
        needed = -(-(size - (len(self._payload) - self._pos)) // PAYLOAD_SIZE) - len(self._expected)
        if needed > 1 and not (self.end_of_stream or self.missing_end_marker):
            self._expected.extend(self.device.read_blocks(min(needed, MAX_EXPECTED_BLOCKS)))

    def _read_block(self) -> bytes | Mark:
        return self._expected.popleft() if self._expected else self.device.read_block()

    def _consume_filemark(self) -> None:
        after = self._read_block()
        if after is Mark.END_OF_DATA:
            raise self._error(UnexpectedEndOfData, "end of data instead of the filemark after the end marker")
        if after is not Mark.FILEMARK:
            raise self._error(TapeFormatError, "block found after the end-of-stream marker")

    def _next_block(self) -> bool:
        """Load the next block; False at the end of the stream."""
        if self.end_of_stream or self.missing_end_marker:
            return False
        block = self._read_block()
        if block is Mark.FILEMARK:
            self.missing_end_marker = True
            return False
        if block is Mark.END_OF_DATA:
            raise self._error(UnexpectedEndOfData, "end of data inside a tape file")
        self._accept(block)
        return True

    @property
    def block_index(self) -> int:
        """Index in this file of the block the next byte comes from."""
        return self._seq_nr - 1

    @property
    def offset(self) -> int:
        """Stream offset of the next byte. Every block before the current one is full (the
        reader refuses anything else), so the block index says where the current block starts."""
        return self.block_index * PAYLOAD_SIZE + self._pos

    def read(self, size: int) -> bytes:
        """Up to `size` bytes; empty at the end. A file without end marker is an error here.
        A read spanning blocks is joined from views of them: one copy into memory not zeroed
        first (a 4 MiB bytearray cost a zeroing pass and a page fault per 4 KiB before it)."""
        if size <= len(self._payload) - self._pos:
            data = bytes(self._payload[self._pos : self._pos + size])
            self._pos += size
            return data
        parts = []
        done = 0
        while done < size:
            if self._pos == len(self._payload) and not self._next_block():
                if self.missing_end_marker:
                    raise self._error(MissingEndMarker, "stream ends without end marker (writer aborted)")
                break
            take = min(size - done, len(self._payload) - self._pos)
            parts.append(self._payload[self._pos : self._pos + take])
            self._pos += take
            done += take
        return b"".join(parts)

    def skip(self, size: int) -> int:
        """Pass over up to `size` bytes of the stream; the number passed over."""
        done = 0
        while done < size:
            if self._pos == len(self._payload) and not self._next_block():
                break
            take = min(size - done, len(self._payload) - self._pos)
            self._pos += take
            done += take
        return done

    def skip_data(self) -> int:
        """Read to the end of the file, tolerating a missing end marker; the bytes passed over."""
        skipped = len(self._payload) - self._pos
        self._pos = len(self._payload)
        while self._next_block():
            skipped += len(self._payload)
            self._pos = len(self._payload)
        return skipped

    def at_end(self) -> bool:
        return self._pos == len(self._payload) and (self.end_of_stream or self.missing_end_marker)


def open_next_file(device: BlockDevice) -> BlockedReader | Mark:
    """Open the tape file at the position. Mark.FILEMARK: an empty file (the filemark is passed
    over); Mark.END_OF_DATA: no more files."""
    position = device.position()
    first = device.read_block()
    if isinstance(first, Mark):
        return first
    return BlockedReader(device, position.file_number, position.block_number, first)


def open_at_block(device: BlockDevice, file_number: int, file_first_block: int, block_index: int) -> BlockedReader:
    """One LOCATE straight to block `block_index` of a file whose block 0 has logical object
    number `file_first_block`; the reader checks the block is the one expected."""
    device.locate_block(file_first_block + block_index)
    first = device.read_block()
    if isinstance(first, Mark):
        raise UnexpectedEndOfData(f"{first.value} where block {block_index} should be", file_number, block_index)
    return BlockedReader(device, file_number, file_first_block, first, seq_nr=block_index)
