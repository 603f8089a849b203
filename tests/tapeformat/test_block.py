"""The block layer: byte-exact headers, stream packing, and every damage a reader must name."""
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapefs.tapeformat import magic
from tapefs.tapeformat.block import (
    BLOCK_SIZE,
    PAYLOAD_SIZE,
    BlockedWriter,
    blocks_for_stream,
    build_block_header,
    open_next_file,
)
from tapefs.tapeformat.block_device import Mark
from tapefs.tapeformat.errors import (
    BadMagic,
    BlockSizeError,
    HeaderError,
    MissingEndMarker,
    SequenceError,
    TapeFormatError,
    UnexpectedEndOfData,
)
from tapefs.tapeformat.memory_tape import FILEMARK, MemoryTape


def test_every_magic_is_the_sha256_prefix_of_its_text():
    for value, text in magic.TEXTS.items():
        assert value == hashlib.sha256(text.encode()).digest()[:8], text
    assert magic.BLOCK_HEADER == bytes([220, 189, 175, 202, 235, 160, 165, 40])


def test_block_header_bytes_match_hand_computed_vector():
    # magic | flags=EOS|INCOMPLETE | size 0x010203 (24-bit LE) | seq 0x0A0B0C0D (LE)
    assert build_block_header(0x03, 0x010203, 0x0A0B0C0D) == bytes.fromhex(
        "dcbdafcaeba0a528" "03" "030201" "0d0c0b0a")


def write_stream(tape, data, incomplete=False):
    writer = BlockedWriter(tape)
    writer.write(data)
    writer.finish(incomplete)
    return writer


def test_stream_fills_blocks_and_ends_with_end_marker_and_one_filemark():
    tape = MemoryTape()
    data = bytes(range(256)) * 2048  # 524288 bytes: two full blocks and 32 bytes
    write_stream(tape, data)
    blocks = tape.objects
    assert len(blocks) == blocks_for_stream(len(data)) + 1 == 4
    assert blocks[3] is FILEMARK
    assert [len(b) for b in blocks[:3]] == [BLOCK_SIZE] * 3
    assert blocks[0][:16] == build_block_header(0, PAYLOAD_SIZE, 0)
    assert blocks[1][:16] == build_block_header(0, PAYLOAD_SIZE, 1)
    assert blocks[2][:16] == build_block_header(0x01, 32, 2)
    assert blocks[2][16:48] == data[-32:] and blocks[2][48:] == bytes(BLOCK_SIZE - 48)
    assert b"".join(b[16:] for b in blocks[:2]) + blocks[2][16:48] == data


def test_empty_stream_is_one_end_block_of_size_zero():
    tape = MemoryTape()
    write_stream(tape, b"", incomplete=True)
    assert tape.objects[0] == build_block_header(0x03, 0, 0) + bytes(PAYLOAD_SIZE)
    tape.rewind()
    reader = open_next_file(tape)
    assert reader.read(10) == b"" and reader.end_of_stream and reader.incomplete


def test_exact_multiple_of_payload_gets_an_empty_end_block():
    tape = MemoryTape()
    write_stream(tape, b"x" * PAYLOAD_SIZE)
    assert tape.objects[1][:16] == build_block_header(0x01, 0, 1)


def test_round_trip_reads_stream_and_consumes_filemark():
    tape = MemoryTape()
    first, second = b"a" * 700000, b"b" * 10
    write_stream(tape, first)
    write_stream(tape, second)
    tape.rewind()
    reader = open_next_file(tape)
    assert reader.file_number == 0
    assert reader.read(10**7) == first and not reader.incomplete
    reader = open_next_file(tape)
    assert reader.file_number == 1 and reader.read(100) == second
    assert open_next_file(tape) is Mark.END_OF_DATA


def test_two_filemarks_read_as_an_empty_file():
    tape = MemoryTape()
    tape.write_filemark()
    tape.rewind()
    assert open_next_file(tape) is Mark.FILEMARK


def test_early_warning_is_sticky_and_writer_keeps_accepting_data():
    tape = MemoryTape(capacity=10 * BLOCK_SIZE, early_warning=8 * BLOCK_SIZE)
    writer = BlockedWriter(tape)
    assert writer.write(b"x" * PAYLOAD_SIZE) is False
    assert writer.write(b"x" * PAYLOAD_SIZE * 3) is True
    assert writer.write(b"y") is True
    writer.finish()
    tape.rewind()
    assert len(open_next_file(tape).read(10**7)) == PAYLOAD_SIZE * 4 + 1


def damaged(tape, index, mutate):
    block = bytearray(tape.objects[index])
    mutate(block)
    tape.objects[index] = bytes(block)
    tape.rewind()


@pytest.fixture
def two_file_tape():
    tape = MemoryTape()
    write_stream(tape, b"label")
    write_stream(tape, b"z" * (PAYLOAD_SIZE * 2 + 5))
    return tape


def read_second_file(tape):
    assert open_next_file(tape).read(100) == b"label"
    return open_next_file(tape).read(10**7)


def test_wrong_block_magic_names_file_and_block(two_file_tape):
    damaged(two_file_tape, 3, lambda b: b.__setitem__(slice(0, 8), b"NOTPBS!!"))
    with pytest.raises(BadMagic, match="tape file 1, block 1: unknown block magic"):
        read_second_file(two_file_tape)


def test_bad_sequence_number_names_file_and_block(two_file_tape):
    damaged(two_file_tape, 4, lambda b: b.__setitem__(slice(12, 16), (7).to_bytes(4, "little")))
    with pytest.raises(SequenceError, match="tape file 1, block 2: block sequence number 7, expected 2"):
        read_second_file(two_file_tape)


def test_short_block_is_refused(two_file_tape):
    two_file_tape.objects[3] = two_file_tape.objects[3][:1000]
    two_file_tape.rewind()
    with pytest.raises(BlockSizeError, match="tape file 1, block 1: got a block of 1000 bytes"):
        read_second_file(two_file_tape)


def test_payload_size_over_capacity_is_refused(two_file_tape):
    damaged(two_file_tape, 4, lambda b: b.__setitem__(slice(9, 12), (PAYLOAD_SIZE + 1).to_bytes(3, "little")))
    with pytest.raises(HeaderError, match="tape file 1, block 2: block payload size 262129"):
        read_second_file(two_file_tape)


def test_short_payload_before_end_of_stream_is_refused(two_file_tape):
    damaged(two_file_tape, 2, lambda b: b.__setitem__(slice(9, 12), (100).to_bytes(3, "little")))
    with pytest.raises(HeaderError, match="tape file 1, block 0: block of 100 payload bytes before the end"):
        read_second_file(two_file_tape)


def test_file_without_end_marker_is_reported_and_skippable():
    tape = MemoryTape()
    writer = BlockedWriter(tape)
    writer.write(b"q" * (PAYLOAD_SIZE + 10))
    writer.abort()
    tape.rewind()
    with pytest.raises(MissingEndMarker, match="tape file 0"):
        open_next_file(tape).read(10**7)
    tape.rewind()
    reader = open_next_file(tape)
    assert reader.skip_data() == PAYLOAD_SIZE and reader.missing_end_marker


def test_end_of_data_instead_of_closing_filemark_is_an_error():
    tape = MemoryTape()
    write_stream(tape, b"x")
    del tape.objects[-1]
    tape.rewind()
    with pytest.raises(UnexpectedEndOfData, match="tape file 0, block 1"):
        open_next_file(tape)


def test_block_after_end_marker_is_an_error():
    tape = MemoryTape()
    write_stream(tape, b"x")
    tape.objects[-1] = tape.objects[0]
    tape.rewind()
    with pytest.raises(TapeFormatError, match="block found after the end-of-stream marker"):
        open_next_file(tape)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=3 * PAYLOAD_SIZE), min_size=1, max_size=3),
       st.integers(min_value=4096, max_value=2 * PAYLOAD_SIZE))
def test_any_stream_split_into_any_writes_reads_back_in_any_read_size(lengths, read_size):
    tape = MemoryTape()
    pieces = [bytes([n % 251]) * length for n, length in enumerate(lengths)]
    writer = BlockedWriter(tape)
    for piece in pieces:
        writer.write(piece)
    writer.finish()
    data = b"".join(pieces)
    assert len(tape.objects) == blocks_for_stream(len(data)) + 1
    tape.rewind()
    reader = open_next_file(tape)
    out = bytearray()
    while chunk := reader.read(read_size):
        assert reader.offset == len(out) + len(chunk)
        out += chunk
    assert out == data and reader.at_end()
