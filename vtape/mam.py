"""Medium auxiliary memory: READ ATTRIBUTE (8Ch) and WRITE ATTRIBUTE (8Dh), as SPC-4 defines them.

Read-only attributes are computed from the cartridge and the drive when asked;
the host-writable ones live in ``cartridge.meta["attributes"]`` as
{"0800": hex value}. Lengths are the SPC ones: PBS drops any attribute whose
length differs from its table.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from construct import Int8ub, Int16ub, Int32ub, Padding, Struct

from . import drive_logs, media, sense
from .spc import ascii_field

if TYPE_CHECKING:
    from .cartridge import Cartridge
    from .drive import TapeDrive

MIB = 1024 * 1024
BINARY, ASCII, TEXT = 0, 1, 2
READ_ONLY = 0x80

READ_ATTRIBUTE_CDB = Struct(
    "opcode" / Int8ub,
    "service_action" / Int8ub,  # b4-0
    "element" / Int16ub,
    Padding(1),
    "volume" / Int8ub,
    Padding(1),
    "partition" / Int8ub,
    "first_attribute" / Int16ub,
    "allocation" / Int32ub,
    "cache" / Int8ub,
    "control" / Int8ub,
).compile()

WRITE_ATTRIBUTE_CDB = Struct(
    "opcode" / Int8ub,
    "write_through_cache" / Int8ub,
    Padding(3),
    "volume" / Int8ub,
    Padding(1),
    "partition" / Int8ub,
    Padding(2),
    "parameter_length" / Int32ub,
    Padding(1),
    "control" / Int8ub,
).compile()

ATTRIBUTE_HEADER = Struct(
    "id" / Int16ub,
    "flags" / Int8ub,  # b7 READ ONLY, b1-0 format
    "length" / Int16ub,
).compile()
ATTRIBUTE_HEADER_SIZE = 5

SA_VALUES, SA_LIST, SA_VOLUMES, SA_PARTITIONS, SA_SUPPORTED = 0x00, 0x01, 0x02, 0x03, 0x05


@dataclasses.dataclass(frozen=True)
class AttributeSpec:
    length: int  # the exact length, or the maximum for a variable one
    format: int
    read_only: bool
    variable: bool = False


ATTRIBUTES: dict[int, AttributeSpec] = {
    0x0000: AttributeSpec(8, BINARY, True),  # remaining capacity in partition, MiB
    0x0001: AttributeSpec(8, BINARY, True),  # maximum capacity in partition, MiB
    0x0002: AttributeSpec(8, BINARY, True),  # TapeAlert flags
    0x0003: AttributeSpec(8, BINARY, True),  # load count
    0x0004: AttributeSpec(8, BINARY, True),  # MAM space remaining
    0x0005: AttributeSpec(8, ASCII, True),  # assigning organization
    0x0006: AttributeSpec(1, BINARY, True),  # formatted density code
    0x0007: AttributeSpec(2, BINARY, True),  # initialization count
    0x0009: AttributeSpec(4, BINARY, True),  # volume change reference
    **{0x020A + i: AttributeSpec(40, ASCII, True) for i in range(4)},  # vendor+serial at the last loads
    0x0220: AttributeSpec(8, BINARY, True),  # MiB written in medium life
    0x0221: AttributeSpec(8, BINARY, True),  # MiB read in medium life
    0x0222: AttributeSpec(8, BINARY, True),  # MiB written in current load
    0x0223: AttributeSpec(8, BINARY, True),  # MiB read in current load
    0x0400: AttributeSpec(8, ASCII, True),  # medium manufacturer
    0x0401: AttributeSpec(32, ASCII, True),  # medium serial number
    0x0402: AttributeSpec(4, BINARY, True),  # medium length, m
    0x0403: AttributeSpec(4, BINARY, True),  # medium width, 0.1 mm
    0x0404: AttributeSpec(8, ASCII, True),  # assigning organization
    0x0405: AttributeSpec(1, BINARY, True),  # medium density code
    0x0406: AttributeSpec(8, ASCII, True),  # medium manufacture date YYYYMMDD
    0x0407: AttributeSpec(8, BINARY, True),  # MAM capacity
    0x0408: AttributeSpec(1, BINARY, True),  # medium type
    0x0409: AttributeSpec(2, BINARY, True),  # medium type information
    0x0800: AttributeSpec(8, ASCII, False),  # application vendor
    0x0801: AttributeSpec(32, ASCII, False),  # application name
    0x0802: AttributeSpec(8, ASCII, False),  # application version
    0x0803: AttributeSpec(160, TEXT, False),  # user medium text label
    0x0804: AttributeSpec(12, ASCII, False),  # date and time last written
    0x0805: AttributeSpec(1, BINARY, False),  # text localization identifier
    0x0806: AttributeSpec(32, ASCII, False),  # barcode
    0x0807: AttributeSpec(80, ASCII, False),  # owning host textual name
    0x0808: AttributeSpec(160, TEXT, False),  # media pool
    0x080B: AttributeSpec(16, ASCII, False),  # application format version
    0x080C: AttributeSpec(1024, BINARY, False, variable=True),  # volume coherency information (LTFS)
    0x0820: AttributeSpec(36, BINARY, False),  # medium globally unique identifier
    0x0821: AttributeSpec(36, BINARY, False),  # media pool globally unique identifier
}

ASSIGNING_ORGANIZATION = "LTO-CVE"
MEDIUM_WIDTH_TENTHS_MM = 127
#: Tape length in metres per LTO generation.
MEDIUM_LENGTH_M = {1: 609, 2: 609, 3: 680, 4: 820, 5: 846, 6: 846, 7: 960, 8: 960, 9: 1035}
MEDIUM_TYPE_DATA, MEDIUM_TYPE_CLEANING, MEDIUM_TYPE_WORM = 0x00, 0x01, 0x80


def mam_capacity(generation: int) -> int:
    """Bytes of cartridge memory: 4 KiB up to LTO-2, 8 KiB for LTO-3/4, 16 KiB since LTO-5."""
    return 4096 if generation <= 2 else 8192 if generation <= 4 else 16384


def _number(value: int, size: int) -> bytes:
    return min(value, (1 << (8 * size)) - 1).to_bytes(size, "big")


def _stored(cart: Cartridge) -> dict[int, bytes]:
    return {int(key, 16): bytes.fromhex(value) for key, value in cart.meta["attributes"].items()}


def _read_only_values(drive: TapeDrive, cart: Cartridge) -> dict[int, bytes]:
    meta = cart.meta
    generation = media.GENERATIONS[meta["generation"]]
    capacity = mam_capacity(meta["generation"])
    used = sum(ATTRIBUTE_HEADER_SIZE + len(value) for value in _stored(cart).values())
    medium_type = MEDIUM_TYPE_CLEANING if meta["cleaning"] else MEDIUM_TYPE_WORM if meta["worm"] else MEDIUM_TYPE_DATA
    counters = drive.load_counters
    values = {
        0x0000: _number(max(cart.capacity - cart.data_end, 0) // MIB, 8),
        0x0001: _number(cart.capacity // MIB, 8),
        0x0002: drive_logs.tape_alert_bitmap(drive),
        0x0003: _number(meta["load_count"], 8),
        0x0004: _number(max(capacity - used, 0), 8),
        0x0005: ascii_field(ASSIGNING_ORGANIZATION, 8),
        0x0006: _number(meta["density"], 1),
        0x0007: _number(meta["initialization_count"], 2),
        0x0009: _number(meta["volume_change_reference"], 4),
        0x0220: _number(drive_logs.lifetime_bytes_written(drive) // MIB, 8),
        0x0221: _number(drive_logs.lifetime_bytes_read(drive) // MIB, 8),
        0x0222: _number(counters["bytes_from_host"] // MIB, 8),
        0x0223: _number(counters["bytes_to_host"] // MIB, 8),
        0x0400: ascii_field(drive_logs.MANUFACTURER, 8),
        0x0401: ascii_field(meta["serial"], 32),
        0x0402: _number(MEDIUM_LENGTH_M[meta["generation"]], 4),
        0x0403: _number(MEDIUM_WIDTH_TENTHS_MM, 4),
        0x0404: ascii_field(ASSIGNING_ORGANIZATION, 8),
        0x0405: _number(generation.density, 1),
        0x0406: ascii_field(meta["manufactured"], 8),
        0x0407: _number(capacity, 8),
        0x0408: _number(medium_type, 1),
        0x0409: _number(meta["cleaning_cycles_left"] if meta["cleaning"] else 0, 2),
    }
    for i, tag in enumerate(meta["last_loads"][:4]):
        values[0x020A + i] = ascii_field(tag, 40)
    return values


def attribute_values(drive: TapeDrive, cart: Cartridge) -> dict[int, bytes]:
    """Every attribute that exists on the cartridge, by id."""
    values = _read_only_values(drive, cart)
    values[0x0806] = ascii_field(cart.barcode, 32)  # until the host writes its own
    values.update(_stored(cart))
    return dict(sorted(values.items()))


def _accessible_cartridge(drive: TapeDrive) -> Cartridge:
    """The cartridge whose memory the drive can reach: any cartridge in it, threaded or not,
    cleaning ones included, since the memory chip is read without the tape."""
    reason = drive.not_ready_reason()
    if drive.cartridge is None or (reason is not None and reason.asc == 0x04):
        raise reason
    return drive.cartridge


def _check_volume_and_partition(volume: int, partition: int) -> None:
    if volume:
        raise sense.invalid_field_in_cdb(5)
    if partition:
        raise sense.invalid_field_in_cdb(7)  # a single partition


def read_attribute(drive: TapeDrive, cdb: bytes) -> bytes:
    fields = READ_ATTRIBUTE_CDB.parse(cdb[:16])
    service_action = fields.service_action & 0x1F
    if service_action not in (SA_VALUES, SA_LIST, SA_VOLUMES, SA_PARTITIONS, SA_SUPPORTED):
        raise sense.invalid_field_in_cdb(1, bit=4)
    _check_volume_and_partition(fields.volume, fields.partition)
    cart = _accessible_cartridge(drive)
    first = fields.first_attribute
    if service_action in (SA_VOLUMES, SA_PARTITIONS):
        # available data 2, first volume/partition 0, one of them
        body = bytes([0x00, 0x02, 0x00, 0x01])
    else:
        if service_action == SA_SUPPORTED:
            ids = [i for i in ATTRIBUTES if i >= first]
            listing = b"".join(i.to_bytes(2, "big") for i in ids)
        else:
            values = {i: v for i, v in attribute_values(drive, cart).items() if i >= first}
            if service_action == SA_LIST:
                listing = b"".join(i.to_bytes(2, "big") for i in values)
            else:
                listing = b"".join(
                    ATTRIBUTE_HEADER.build(
                        dict(
                            id=i,
                            length=len(v),
                            flags=((READ_ONLY if ATTRIBUTES[i].read_only else 0) | ATTRIBUTES[i].format),
                        )
                    )
                    + v
                    for i, v in values.items()
                )
        # AVAILABLE DATA tells the whole length even when the allocation cuts the data.
        body = len(listing).to_bytes(4, "big") + listing
    return body[: fields.allocation]


def _fitted(spec: AttributeSpec, value: bytes, offset: int) -> bytes:
    """The value padded to the attribute's length; 05/26/00 when it cannot fit."""
    if len(value) > spec.length:
        raise sense.invalid_field_in_parameters(offset + 3)
    if spec.variable or len(value) == spec.length:
        return value
    if spec.format == BINARY:
        raise sense.invalid_field_in_parameters(offset + 3)  # a short number has no defined alignment
    return value.ljust(spec.length, b" " if spec.format == ASCII else b"\0")


def write_attribute(drive: TapeDrive, cdb: bytes, data_out: memoryview) -> None:
    """Check every attribute of the list first, then store them all (or none)."""
    fields = WRITE_ATTRIBUTE_CDB.parse(cdb[:16])
    _check_volume_and_partition(fields.volume, fields.partition)
    cart = _accessible_cartridge(drive)
    length = fields.parameter_length
    if length == 0:
        return
    if length < 4 or len(data_out) < length:
        raise sense.parameter_list_length_error()
    data = bytes(data_out[:length])
    end = 4 + int.from_bytes(data[:4], "big")
    if end > length:
        raise sense.parameter_list_length_error()
    changes: dict[int, bytes | None] = {}
    offset = 4
    while offset < end:
        if offset + ATTRIBUTE_HEADER_SIZE > end:
            raise sense.parameter_list_length_error()
        header = ATTRIBUTE_HEADER.parse(data[offset : offset + ATTRIBUTE_HEADER_SIZE])
        value = data[offset + ATTRIBUTE_HEADER_SIZE : offset + ATTRIBUTE_HEADER_SIZE + header.length]
        if len(value) != header.length:
            raise sense.parameter_list_length_error()
        spec = ATTRIBUTES.get(header.id)
        if spec is None or spec.read_only:
            raise sense.invalid_field_in_parameters(offset)
        # Length 0 deletes the attribute (PBS clears its attributes this way on format).
        changes[header.id] = _fitted(spec, value, offset) if value else None
        offset += ATTRIBUTE_HEADER_SIZE + header.length
    stored = cart.meta["attributes"]
    for attribute, value in changes.items():
        key = f"{attribute:04X}"
        if value is None:
            stored.pop(key, None)
        else:
            stored[key] = value.hex()
    cart.note_modification()
    cart.save_meta()
