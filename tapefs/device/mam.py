"""Medium auxiliary memory (cartridge memory): READ/WRITE ATTRIBUTE data (SPC-4 §7.4)."""

from __future__ import annotations

import dataclasses
import logging

from construct import BitsInteger, BitStruct, Flag, Int16ub, Int32ub, Padding, Struct

log = logging.getLogger(__name__)

BINARY = 0
ASCII = 1
TEXT = 2

ATTRIBUTE_HEADER = Struct(
    "id" / Int16ub,
    "flags" / BitStruct("read_only" / Flag, Padding(5), "format" / BitsInteger(2)),
    "length" / Int16ub,
)
ATTRIBUTE_HEADER_LENGTH = 5
PARAMETER_LIST_HEADER = Struct("available_data" / Int32ub)

#: Allocation for READ ATTRIBUTE: every attribute of an LTO cartridge fits easily.
READ_ALLOCATION = 32 * 1024


@dataclasses.dataclass(frozen=True)
class AttributeSpec:
    id: int
    name: str
    length: int | None  # None: variable
    format: int


ATTRIBUTES = {
    a.id: a
    for a in (
        AttributeSpec(0x0000, "Remaining Capacity In Partition", 8, BINARY),
        AttributeSpec(0x0001, "Maximum Capacity In Partition", 8, BINARY),
        AttributeSpec(0x0002, "TapeAlert Flags", 8, BINARY),
        AttributeSpec(0x0003, "Load Count", 8, BINARY),
        AttributeSpec(0x0004, "MAM Space Remaining", 8, BINARY),
        AttributeSpec(0x0005, "Assigning Organization", 8, ASCII),
        AttributeSpec(0x0006, "Format Density Code", 1, BINARY),
        AttributeSpec(0x0007, "Initialization Count", 2, BINARY),
        AttributeSpec(0x0009, "Volume Change Reference", 4, BINARY),
        AttributeSpec(0x020A, "Device Vendor/Serial Number at Last Load", 40, ASCII),
        AttributeSpec(0x020B, "Device Vendor/Serial Number at Load-1", 40, ASCII),
        AttributeSpec(0x020C, "Device Vendor/Serial Number at Load-2", 40, ASCII),
        AttributeSpec(0x020D, "Device Vendor/Serial Number at Load-3", 40, ASCII),
        AttributeSpec(0x0220, "Total MiB Written in Medium Life", 8, BINARY),
        AttributeSpec(0x0221, "Total MiB Read in Medium Life", 8, BINARY),
        AttributeSpec(0x0222, "Total MiB Written in Current/Last Load", 8, BINARY),
        AttributeSpec(0x0223, "Total MiB Read in Current/Last Load", 8, BINARY),
        AttributeSpec(0x0224, "Logical Position of First Encrypted Block", 8, BINARY),
        AttributeSpec(0x0225, "Logical Position of First Unencrypted Block After First Encrypted Block", 8, BINARY),
        AttributeSpec(0x0340, "Medium Usage History", 90, BINARY),
        AttributeSpec(0x0341, "Partition Usage History", 60, BINARY),
        AttributeSpec(0x0400, "Medium Manufacturer", 8, ASCII),
        AttributeSpec(0x0401, "Medium Serial Number", 32, ASCII),
        AttributeSpec(0x0402, "Medium Length", 4, BINARY),
        AttributeSpec(0x0403, "Medium Width", 4, BINARY),
        AttributeSpec(0x0404, "Assigning Organization", 8, ASCII),
        AttributeSpec(0x0405, "Medium Density Code", 1, BINARY),
        AttributeSpec(0x0406, "Medium Manufacture Date", 8, ASCII),
        AttributeSpec(0x0407, "MAM Capacity", 8, BINARY),
        AttributeSpec(0x0408, "Medium Type", 1, BINARY),
        AttributeSpec(0x0409, "Medium Type Information", 2, BINARY),
        AttributeSpec(0x040A, "Numeric Medium Serial Number", None, BINARY),
        AttributeSpec(0x0800, "Application Vendor", 8, ASCII),
        AttributeSpec(0x0801, "Application Name", 32, ASCII),
        AttributeSpec(0x0802, "Application Version", 8, ASCII),
        AttributeSpec(0x0803, "User Medium Text Label", 160, TEXT),
        AttributeSpec(0x0804, "Date And Time Last Written", 12, ASCII),
        AttributeSpec(0x0805, "Text Localization Identifier", 1, BINARY),
        AttributeSpec(0x0806, "Barcode", 32, ASCII),
        AttributeSpec(0x0807, "Owning Host Textual Name", 80, TEXT),
        AttributeSpec(0x0808, "Media Pool", 160, TEXT),
        AttributeSpec(0x080B, "Application Format Version", 16, ASCII),
        AttributeSpec(0x080C, "Volume Coherency Information", None, BINARY),
        AttributeSpec(0x0820, "Medium Globally Unique Identifier", 36, BINARY),
        AttributeSpec(0x0821, "Media Pool Globally Unique Identifier", 36, BINARY),
    )
}

MANUFACTURE_DATE = 0x0406
TOTAL_MIB_WRITTEN = 0x0220
TOTAL_MIB_READ = 0x0221


@dataclasses.dataclass(frozen=True)
class Attribute:
    id: int
    read_only: bool
    format: int
    raw: bytes

    @property
    def name(self) -> str:
        spec = ATTRIBUTES.get(self.id)
        return spec.name if spec else f"Unknown attribute {self.id:#06x}"

    @property
    def value(self) -> int | str:
        if self.format == BINARY and len(self.raw) <= 8:
            return int.from_bytes(self.raw, "big")
        if self.format == BINARY:
            return self.raw.hex()
        return self.raw.decode("utf-8" if self.format == TEXT else "ascii", "replace").rstrip(" \0")

    def to_dict(self) -> dict:
        return {"id": f"{self.id:04X}", "name": self.name, "value": self.value}


def parse_attributes(data: bytes) -> list[Attribute]:
    """Attributes of a READ ATTRIBUTE (attribute values) answer, skipping ones whose length
    does not match the SPC table (as PBS does: such a value cannot be interpreted)."""
    if len(data) < 4:
        raise ValueError(f"READ ATTRIBUTE returned {len(data)} bytes, less than its header")
    available = PARAMETER_LIST_HEADER.parse(data).available_data
    end = min(len(data), 4 + available)
    if 4 + available > len(data):
        log.warning("READ ATTRIBUTE: %d bytes available, only %d returned", available, len(data) - 4)
    attributes = []
    offset = 4
    while offset + ATTRIBUTE_HEADER_LENGTH <= end:
        header = ATTRIBUTE_HEADER.parse(data[offset:])
        raw = data[offset + ATTRIBUTE_HEADER_LENGTH : offset + ATTRIBUTE_HEADER_LENGTH + header.length]
        offset += ATTRIBUTE_HEADER_LENGTH + header.length
        if len(raw) != header.length:
            break
        spec = ATTRIBUTES.get(header.id)
        if spec is not None and spec.length is not None and spec.length != header.length:
            log.warning(
                "MAM attribute %#06x (%s): length %d, expected %d; skipped",
                header.id,
                spec.name,
                header.length,
                spec.length,
            )
            continue
        attributes.append(Attribute(header.id, header.flags.read_only, header.flags.format, bytes(raw)))
    return attributes


def build_write_attribute(attribute_id: int, value: bytes | str | int | None) -> bytes:
    """WRITE ATTRIBUTE parameter list for one attribute; None deletes it (length 0)."""
    spec = ATTRIBUTES.get(attribute_id)
    if spec is None:
        raise ValueError(f"unknown MAM attribute {attribute_id:#06x}")
    if value is None:
        raw = b""
    elif isinstance(value, int):
        raw = value.to_bytes(spec.length or 8, "big")
    else:
        raw = value.encode("utf-8" if spec.format == TEXT else "ascii") if isinstance(value, str) else bytes(value)
        if spec.length is not None:
            if len(raw) > spec.length:
                raise ValueError(f"{spec.name}: {len(raw)} bytes, at most {spec.length}")
            raw = raw.ljust(spec.length, b" " if spec.format == ASCII else b"\0")
    entry = (
        ATTRIBUTE_HEADER.build(dict(id=attribute_id, flags=dict(read_only=False, format=spec.format), length=len(raw)))
        + raw
    )
    return PARAMETER_LIST_HEADER.build(dict(available_data=len(entry))) + entry
