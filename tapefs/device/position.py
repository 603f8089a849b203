"""READ POSITION, long form (service action 06h): partition, object number, file number."""

from __future__ import annotations

import dataclasses

from construct import BitStruct, Flag, Int32ub, Int64ub, Padding, Struct

LONG_FORM_LENGTH = 32

LONG_FORM = Struct(
    "flags" / BitStruct("bop" / Flag, "eop" / Flag, Padding(2), "mpu" / Flag, "lonu" / Flag, Padding(1), "bpew" / Flag),
    Padding(3),
    "partition" / Int32ub,
    "logical_object_number" / Int64ub,
    "logical_file_identifier" / Int64ub,
    Padding(8),
)


@dataclasses.dataclass(frozen=True)
class Position:
    partition: int
    #: Blocks plus filemarks before the position (LON).
    block_number: int
    #: Filemarks before the position (LFI).
    file_number: int
    beginning_of_partition: bool
    end_of_partition: bool
    beyond_programmable_early_warning: bool


def parse_long_form(data: bytes) -> Position:
    # PBS insists on exactly 32 bytes: a shorter answer means the drive ignored the service action.
    if len(data) != LONG_FORM_LENGTH:
        raise ValueError(f"READ POSITION long form returned {len(data)} bytes, expected {LONG_FORM_LENGTH}")
    parsed = LONG_FORM.parse(data)
    if parsed.flags.mpu or parsed.flags.lonu:
        raise ValueError("the drive reports its position as unknown")
    return Position(
        parsed.partition,
        parsed.logical_object_number,
        parsed.logical_file_identifier,
        parsed.flags.bop,
        parsed.flags.eop,
        parsed.flags.bpew,
    )
