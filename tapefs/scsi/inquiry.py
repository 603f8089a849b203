"""INQUIRY: standard data (peripheral type, vendor, product, revision) and the unit serial page."""

from __future__ import annotations

import dataclasses

from construct import BitsInteger, BitStruct, Bytes, Int8ub, Int16ub, Struct

from tapefs.scsi import cdb as cdbs
from tapefs.scsi.channel import Channel

PERIPHERAL_TAPE = 0x01
PERIPHERAL_CHANGER = 0x08

PERIPHERAL_TYPE_NAMES = {
    0x00: "disk",
    0x01: "tape",
    0x05: "cd/dvd",
    0x08: "changer",
    0x0C: "storage array",
    0x0D: "enclosure",
    0x1F: "unknown",
}

STANDARD_INQUIRY_LENGTH = 36
UNIT_SERIAL_PAGE = 0x80

STANDARD_INQUIRY = Struct(
    "peripheral" / BitStruct("qualifier" / BitsInteger(3), "device_type" / BitsInteger(5)),
    "removable" / Int8ub,
    "version" / Int8ub,
    "response_format" / Int8ub,
    "additional_length" / Int8ub,
    "flags" / Bytes(3),
    "vendor" / Bytes(8),
    "product" / Bytes(16),
    "revision" / Bytes(4),
)

VPD_HEADER = Struct(
    "peripheral" / Int8ub,
    "page_code" / Int8ub,
    "page_length" / Int16ub,
)


def _text(raw: bytes) -> str:
    return raw.decode("ascii", "replace").rstrip(" \0")


@dataclasses.dataclass(frozen=True)
class InquiryData:
    device_type: int
    vendor: str
    product: str
    revision: str

    @property
    def device_type_name(self) -> str:
        return PERIPHERAL_TYPE_NAMES.get(self.device_type, f"type {self.device_type:#04x}")


def parse_standard_inquiry(data: bytes) -> InquiryData:
    if len(data) < STANDARD_INQUIRY_LENGTH:
        raise ValueError(f"standard INQUIRY data is {len(data)} bytes, need {STANDARD_INQUIRY_LENGTH}")
    parsed = STANDARD_INQUIRY.parse(data)
    return InquiryData(
        parsed.peripheral.device_type, _text(parsed.vendor), _text(parsed.product), _text(parsed.revision)
    )


def parse_unit_serial(data: bytes) -> str:
    header = VPD_HEADER.parse(data)
    if header.page_code != UNIT_SERIAL_PAGE:
        raise ValueError(f"VPD page {header.page_code:#04x} returned for the unit serial page")
    return _text(data[4 : 4 + header.page_length])


def inquiry(channel: Channel) -> InquiryData:
    result = channel.run(cdbs.inquiry(STANDARD_INQUIRY_LENGTH), data_in_len=STANDARD_INQUIRY_LENGTH)
    return parse_standard_inquiry(result.data)


def unit_serial_number(channel: Channel) -> str:
    result = channel.run(cdbs.inquiry(255, vpd_page=UNIT_SERIAL_PAGE), data_in_len=255)
    return parse_unit_serial(result.data)
