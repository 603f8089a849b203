"""MODE SENSE(10)/MODE SELECT(10) data for the drive: header, block descriptor, pages 0Fh and 1Dh."""

from __future__ import annotations

import dataclasses

from construct import BitsInteger, BitStruct, Bytes, Flag, Int8ub, Int16ub, Int24ub, Int32ub, Padding, Struct

DATA_COMPRESSION_PAGE = 0x0F
MEDIUM_CONFIGURATION_PAGE = 0x1D

MODE_HEADER_10 = Struct(
    "mode_data_length" / Int16ub,
    "medium_type" / Int8ub,
    "device_specific" / BitStruct("write_protect" / Flag, "buffered_mode" / BitsInteger(3), "speed" / BitsInteger(4)),
    "flags" / Int8ub,
    Padding(1),
    "block_descriptor_length" / Int16ub,
)
MODE_HEADER_10_LENGTH = 8

BLOCK_DESCRIPTOR = Struct(
    "density_code" / Int8ub,
    "number_of_blocks" / Int24ub,
    Padding(1),
    "block_length" / Int24ub,
)
BLOCK_DESCRIPTOR_LENGTH = 8

DATA_COMPRESSION = Struct(
    "page_code" / Int8ub,
    "page_length" / Int8ub,
    "flags" / BitStruct("dce" / Flag, "dcc" / Flag, Padding(6)),
    "flags2" / BitStruct("dde" / Flag, "red" / BitsInteger(2), Padding(5)),
    "compression_algorithm" / Int32ub,
    "decompression_algorithm" / Int32ub,
    "reserved" / Bytes(4),
)
DATA_COMPRESSION_LENGTH = 16


@dataclasses.dataclass
class ModeData:
    """One MODE SENSE(10) answer with a block descriptor and one page, kept raw for MODE SELECT."""

    medium_type: int
    write_protect: bool
    buffered_mode: int
    density_code: int
    number_of_blocks: int
    block_length: int
    page: bytes


def parse_mode_sense_10(data: bytes, page_code: int) -> ModeData:
    if len(data) < MODE_HEADER_10_LENGTH:
        raise ValueError(f"MODE SENSE(10) returned {len(data)} bytes, less than its header")
    header = MODE_HEADER_10.parse(data)
    end = header.mode_data_length + 2
    if end > len(data):
        raise ValueError(f"MODE SENSE(10) data is {len(data)} bytes but announces {end}")
    if header.block_descriptor_length != BLOCK_DESCRIPTOR_LENGTH:
        raise ValueError(
            f"block descriptor length {header.block_descriptor_length}, expected {BLOCK_DESCRIPTOR_LENGTH}"
        )
    descriptor = BLOCK_DESCRIPTOR.parse(data[MODE_HEADER_10_LENGTH:])
    page_start = MODE_HEADER_10_LENGTH + BLOCK_DESCRIPTOR_LENGTH
    page = data[page_start:end]
    if len(page) < 2 or page[0] & 0x3F != page_code:
        raise ValueError(f"MODE SENSE did not return page {page_code:#04x}")
    return ModeData(
        header.medium_type,
        header.device_specific.write_protect,
        header.device_specific.buffered_mode,
        descriptor.density_code,
        descriptor.number_of_blocks,
        descriptor.block_length,
        page[: 2 + page[1]],
    )


def parse_data_compression(page: bytes):
    if len(page) != DATA_COMPRESSION_LENGTH or page[1] != DATA_COMPRESSION_LENGTH - 2:
        raise ValueError(f"data compression page has length {len(page)}, expected {DATA_COMPRESSION_LENGTH}")
    return DATA_COMPRESSION.parse(page)


def build_mode_select_10(mode: ModeData, *, buffered_mode: int, block_length: int, page: bytes) -> bytes:
    """Parameter list echoing what MODE SENSE returned, with the new values (as PBS does)."""
    header = MODE_HEADER_10.build(
        dict(
            mode_data_length=0,
            medium_type=mode.medium_type,
            device_specific=dict(write_protect=False, buffered_mode=buffered_mode, speed=0),
            flags=0,
            block_descriptor_length=BLOCK_DESCRIPTOR_LENGTH,
        )
    )
    descriptor = BLOCK_DESCRIPTOR.build(
        dict(density_code=mode.density_code, number_of_blocks=mode.number_of_blocks, block_length=block_length)
    )
    # The PS bit is reserved in MODE SELECT.
    return header + descriptor + bytes([page[0] & 0x3F]) + page[1:]


def with_compression(page: bytes, enabled: bool) -> bytes:
    parsed = parse_data_compression(page)
    parsed.flags.dce = enabled
    return DATA_COMPRESSION.build(parsed)
