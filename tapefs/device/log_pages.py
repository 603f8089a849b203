"""LOG SENSE pages: the generic parameter list, and the DT device status page (11h).

TapeAlert (12h) and volume statistics (17h) have their own modules.
"""

from __future__ import annotations

import dataclasses

from construct import BitsInteger, BitStruct, Flag, Int8ub, Int16ub, Struct

LOG_PAGE_HEADER = Struct(
    "page" / BitStruct("ds" / Flag, "spf" / Flag, "page_code" / BitsInteger(6)),
    "subpage_code" / Int8ub,
    "page_length" / Int16ub,
)
LOG_PAGE_HEADER_LENGTH = 4

LOG_PARAMETER_HEADER = Struct(
    "code" / Int16ub,
    "control" / Int8ub,
    "length" / Int8ub,
)

DEVICE_STATUS_PAGE = 0x11
TAPE_ALERT_RESPONSE_PAGE = 0x12
VOLUME_STATISTICS_PAGE = 0x17


@dataclasses.dataclass(frozen=True)
class LogParameter:
    code: int
    control: int
    value: bytes

    def as_int(self) -> int:
        return int.from_bytes(self.value, "big")

    def as_text(self) -> str:
        return self.value.decode("ascii", "replace").rstrip(" \0")


def parse_log_page(data: bytes, page_code: int) -> list[LogParameter]:
    """The parameters of one page; ValueError if it is another page or is cut short."""
    if len(data) < LOG_PAGE_HEADER_LENGTH:
        raise ValueError(f"log page {page_code:#04x}: {len(data)} bytes, less than its header")
    header = LOG_PAGE_HEADER.parse(data)
    if header.page.page_code != page_code or header.subpage_code != 0:
        raise ValueError(
            f"asked for log page {page_code:#04x}, got {header.page.page_code:#04x}/{header.subpage_code:#04x}"
        )
    length = header.page_length
    end = LOG_PAGE_HEADER_LENGTH + length
    if end > len(data):
        raise ValueError(f"log page {page_code:#04x} announces {length} bytes, only {len(data) - 4} arrived")
    parameters = []
    offset = LOG_PAGE_HEADER_LENGTH
    while offset + 4 <= end:
        parameter = LOG_PARAMETER_HEADER.parse(data[offset : offset + 4])
        value = data[offset + 4 : offset + 4 + parameter.length]
        if len(value) != parameter.length:
            raise ValueError(f"log page {page_code:#04x}: parameter {parameter.code:#06x} is cut short")
        parameters.append(LogParameter(parameter.code, parameter.control, value))
        offset += 4 + parameter.length
    return parameters


DEVICE_ACTIVITY_NAMES = {
    0x00: "no activity",
    0x01: "cleaning",
    0x02: "loading",
    0x03: "unloading",
    0x04: "other medium activity",
    0x05: "reading",
    0x06: "writing",
    0x07: "locating",
    0x08: "rewinding",
    0x09: "erasing",
    0x0A: "formatting",
    0x0B: "calibrating",
    0x0C: "other DT device activity",
    0x0D: "microcode update",
    0x0E: "reading encrypted",
    0x0F: "writing encrypted",
}

VHF_DATA = Struct(
    "flags"
    / BitStruct(
        "pamr" / Flag,
        "hiu" / Flag,
        "macc" / Flag,
        "cmpr" / Flag,
        "wrtp" / Flag,
        "crqst" / Flag,
        "crqrd" / Flag,
        "dinit" / Flag,
    ),
    "flags2"
    / BitStruct(
        "inxtn" / Flag,
        "reserved" / Flag,
        "raa" / Flag,
        "mprsnt" / Flag,
        "reserved2" / Flag,
        "mstd" / Flag,
        "mthrd" / Flag,
        "mounted" / Flag,
    ),
    "activity" / Int8ub,
    "flags3" / Int8ub,
)


@dataclasses.dataclass(frozen=True)
class DeviceStatus:
    activity: int
    prevent_removal: bool
    compression: bool
    write_protect: bool
    cleaning_required: bool
    cleaning_requested: bool
    medium_present: bool
    medium_threaded: bool

    @property
    def activity_name(self) -> str:
        return DEVICE_ACTIVITY_NAMES.get(self.activity, f"activity {self.activity:#04x}")


def parse_device_status(data: bytes) -> DeviceStatus:
    for parameter in parse_log_page(data, DEVICE_STATUS_PAGE):
        if parameter.code == 0x0000:
            if len(parameter.value) != 4:
                raise ValueError(f"VHF data parameter has length {len(parameter.value)}, expected 4")
            vhf = VHF_DATA.parse(parameter.value)
            if not vhf.flags.dinit:
                raise ValueError("device status page is not valid yet (DINIT clear)")
            return DeviceStatus(
                vhf.activity,
                vhf.flags.pamr,
                vhf.flags.cmpr,
                vhf.flags.wrtp,
                vhf.flags.crqrd,
                vhf.flags.crqst,
                vhf.flags2.mprsnt,
                vhf.flags2.mthrd,
            )
    raise ValueError("device status page has no VHF data parameter")
