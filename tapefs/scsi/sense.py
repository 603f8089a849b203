"""Sense data decoding: fixed (0x70/0x71) and descriptor (0x72/0x73) formats.

A decoded `Sense` names its condition in plain words ("end of data", "medium not present"), the
way an operator reads it, next to the sense key and the SPC text of the ASC/ASCQ pair.
"""

from __future__ import annotations

import dataclasses
import logging

from construct import BitsInteger, BitStruct, Bytes, Flag, Int8ub, Int16ub, Int32sb, Padding, Struct

from tapefs.errors import DeviceFailure
from tapefs.scsi.additional_sense import additional_sense_text

log = logging.getLogger(__name__)

NO_SENSE = 0x0
RECOVERED_ERROR = 0x1
NOT_READY = 0x2
MEDIUM_ERROR = 0x3
HARDWARE_ERROR = 0x4
ILLEGAL_REQUEST = 0x5
UNIT_ATTENTION = 0x6
DATA_PROTECT = 0x7
BLANK_CHECK = 0x8
ABORTED_COMMAND = 0xB
VOLUME_OVERFLOW = 0xD
MISCOMPARE = 0xE

SENSE_KEY_NAMES = {
    0x0: "NO SENSE",
    0x1: "RECOVERED ERROR",
    0x2: "NOT READY",
    0x3: "MEDIUM ERROR",
    0x4: "HARDWARE ERROR",
    0x5: "ILLEGAL REQUEST",
    0x6: "UNIT ATTENTION",
    0x7: "DATA PROTECT",
    0x8: "BLANK CHECK",
    0x9: "VENDOR SPECIFIC",
    0xA: "COPY ABORTED",
    0xB: "ABORTED COMMAND",
    0xC: "EQUAL",
    0xD: "VOLUME OVERFLOW",
    0xE: "MISCOMPARE",
    0xF: "COMPLETED",
}

FIXED_FORMAT = Struct(
    "header" / BitStruct("valid" / Flag, "response_code" / BitsInteger(7)),
    "segment" / Int8ub,
    "flags" / BitStruct("filemark" / Flag, "eom" / Flag, "ili" / Flag, Padding(1), "key" / BitsInteger(4)),
    "information" / Int32sb,
    "additional_length" / Int8ub,
    "command_specific" / Bytes(4),
    "asc" / Int8ub,
    "ascq" / Int8ub,
    "fru" / Int8ub,
    "sense_key_specific"
    / BitStruct("sksv" / Flag, "c_d" / Flag, Padding(2), "bpv" / Flag, "bit_pointer" / BitsInteger(3)),
    "field_pointer" / Int16ub,
)
FIXED_FORMAT_MIN_LENGTH = 14  # up to ASCQ; the sense-key-specific bytes are optional

DESCRIPTOR_FORMAT_HEADER = Struct(
    "response_code" / Int8ub,
    "key" / Int8ub,
    "asc" / Int8ub,
    "ascq" / Int8ub,
    Padding(3),
    "additional_length" / Int8ub,
)
DESCRIPTOR_INFORMATION = 0x00
DESCRIPTOR_SENSE_KEY_SPECIFIC = 0x02
DESCRIPTOR_STREAM_COMMANDS = 0x04


class SenseFormatError(DeviceFailure, ValueError):
    """Bytes that are not sense data in any format we know."""


#: Plain-words names of the conditions an operator meets, by (key, ASC, ASCQ); a key of None
#: matches any key. Everything else is described by its SPC text.
_CONDITIONS: dict[tuple[int | None, int, int], str] = {
    (None, 0x00, 0x01): "filemark detected",
    (None, 0x00, 0x02): "end of medium (early warning)",
    (VOLUME_OVERFLOW, 0x00, 0x02): "volume overflow: physical end of medium reached",
    (None, 0x00, 0x04): "beginning of medium",
    (None, 0x00, 0x05): "end of data",
    (None, 0x00, 0x07): "programmable early warning",
    (None, 0x04, 0x01): "drive is becoming ready",
    (None, 0x04, 0x04): "format in progress",
    (None, 0x20, 0x00): "command not supported by the device",
    (None, 0x21, 0x01): "no such element address",
    (None, 0x24, 0x00): "invalid field in CDB",
    (None, 0x26, 0x00): "invalid field in parameter list",
    (None, 0x27, 0x00): "write protected",
    (None, 0x28, 0x00): "medium may have changed",
    (None, 0x28, 0x01): "import/export element accessed",
    (None, 0x29, 0x00): "device was reset",
    (None, 0x30, 0x00): "incompatible medium",
    (None, 0x30, 0x03): "cleaning cartridge installed",
    (None, 0x30, 0x0C): "WORM medium cannot be overwritten",
    (None, 0x3A, 0x00): "medium not present",
    (None, 0x3B, 0x0C): "not at beginning of medium",
    (None, 0x3B, 0x0D): "destination element full",
    (None, 0x3B, 0x0E): "source element empty",
    (None, 0x53, 0x02): "medium removal prevented (drive is locked)",
    (None, 0x74, 0x01): "unable to decrypt data",
    (None, 0x74, 0x02): "unencrypted data while decrypting",
    (None, 0x74, 0x03): "incorrect encryption key",
}


@dataclasses.dataclass(frozen=True)
class Sense:
    response_code: int
    key: int
    asc: int
    ascq: int
    filemark: bool = False
    eom: bool = False
    ili: bool = False
    #: The INFORMATION field (residue for tape commands), None when not VALID.
    information: int | None = None
    #: Sense-key-specific field pointer (ILLEGAL REQUEST), None when SKSV is clear.
    field_pointer: int | None = None
    #: True when the field pointer points into the CDB, False for the parameter list.
    in_cdb: bool | None = None
    raw: bytes = b""

    @property
    def deferred(self) -> bool:
        """Sense for an earlier command (0x71/0x73), e.g. a failed buffered write."""
        return self.response_code in (0x71, 0x73)

    @property
    def descriptor_format(self) -> bool:
        return self.response_code in (0x72, 0x73)

    @property
    def key_name(self) -> str:
        return SENSE_KEY_NAMES[self.key]

    @property
    def asc_text(self) -> str:
        return additional_sense_text(self.asc, self.ascq)

    @property
    def condition(self) -> str:
        """The condition in plain words."""
        for key in (self.key, None):
            text = _CONDITIONS.get((key, self.asc, self.ascq))
            if text is not None:
                return text
        if self.filemark:
            return "filemark detected"
        if self.ili:
            return "incorrect length block"
        if self.eom:
            return "end of medium"
        if self.asc == 0x3A:
            return "medium not present"
        if self.asc == 0x27:
            return "write protected"
        return self.asc_text

    @property
    def code(self) -> str:
        """The key/ASC/ASCQ triple as tape people write it: 8/00/05."""
        return f"{self.key:X}/{self.asc:02X}/{self.ascq:02X}"

    def describe(self) -> str:
        """One line: condition, then the numbers and their SPC names."""
        details = [f"sense {self.code} {self.key_name}", self.asc_text]
        flags = [name for name, on in (("FILEMARK", self.filemark), ("EOM", self.eom), ("ILI", self.ili)) if on]
        if flags:
            details.append("+".join(flags))
        if self.information is not None:
            details.append(f"information {self.information}")
        if self.field_pointer is not None:
            where = "CDB" if self.in_cdb else "parameter list"
            details.append(f"{where} byte {self.field_pointer}")
        if self.deferred:
            details.append("deferred error")
        return f"{self.condition} ({', '.join(details)})"

    def to_dict(self) -> dict:
        return {
            "condition": self.condition,
            "key": self.key,
            "key_name": self.key_name,
            "asc": self.asc,
            "ascq": self.ascq,
            "asc_text": self.asc_text,
            "filemark": self.filemark,
            "eom": self.eom,
            "ili": self.ili,
            "information": self.information,
            "field_pointer": self.field_pointer,
            "deferred": self.deferred,
            "raw": self.raw.hex(),
        }


def decode_sense(raw: bytes | memoryview) -> Sense:
    """Decode fixed or descriptor format sense; SenseFormatError on anything else."""
    raw = bytes(raw)
    if not raw:
        raise SenseFormatError("empty sense data")
    response_code = raw[0] & 0x7F
    if response_code in (0x70, 0x71):
        return _decode_fixed(raw)
    if response_code in (0x72, 0x73):
        return _decode_descriptor(raw)
    raise SenseFormatError(f"unknown sense response code {raw[0]:#04x}")


def _decode_fixed(raw: bytes) -> Sense:
    if len(raw) < FIXED_FORMAT_MIN_LENGTH:
        raise SenseFormatError(f"fixed-format sense of {len(raw)} bytes is too short")
    parsed = FIXED_FORMAT.parse(raw.ljust(18, b"\0")[:18])
    # Bytes past the additional length are not sense data, whatever the buffer holds.
    available = 8 + parsed.additional_length
    sks = parsed.sense_key_specific
    has_sks = available >= 18 and sks.sksv
    return Sense(
        response_code=parsed.header.response_code,
        key=parsed.flags.key,
        asc=parsed.asc if available >= 13 else 0,
        ascq=parsed.ascq if available >= 14 else 0,
        filemark=parsed.flags.filemark,
        eom=parsed.flags.eom,
        ili=parsed.flags.ili,
        information=parsed.information if parsed.header.valid else None,
        field_pointer=parsed.field_pointer if has_sks and parsed.flags.key == ILLEGAL_REQUEST else None,
        in_cdb=sks.c_d if has_sks and parsed.flags.key == ILLEGAL_REQUEST else None,
        raw=raw[:available] if len(raw) >= available else raw,
    )


def _decode_descriptor(raw: bytes) -> Sense:
    if len(raw) < 8:
        raise SenseFormatError(f"descriptor-format sense of {len(raw)} bytes is too short")
    header = DESCRIPTOR_FORMAT_HEADER.parse(raw)
    end = min(len(raw), 8 + header.additional_length)
    information = field_pointer = in_cdb = None
    filemark = eom = ili = False
    offset = 8
    while offset + 2 <= end:
        kind, length = raw[offset], raw[offset + 1]
        body = raw[offset + 2 : offset + 2 + length]
        if kind == DESCRIPTOR_INFORMATION and len(body) >= 10 and body[0] & 0x80:
            information = int.from_bytes(body[2:10], "big", signed=True)
        elif kind == DESCRIPTOR_STREAM_COMMANDS and len(body) >= 2:
            filemark, eom, ili = bool(body[1] & 0x80), bool(body[1] & 0x40), bool(body[1] & 0x20)
        elif kind == DESCRIPTOR_SENSE_KEY_SPECIFIC and len(body) >= 5 and body[2] & 0x80:
            in_cdb = bool(body[2] & 0x40)
            field_pointer = int.from_bytes(body[3:5], "big")
        offset += 2 + length
    return Sense(
        response_code=header.response_code & 0x7F,
        key=header.key & 0x0F,
        asc=header.asc,
        ascq=header.ascq,
        filemark=filemark,
        eom=eom,
        ili=ili,
        information=information,
        field_pointer=field_pointer if (header.key & 0x0F) == ILLEGAL_REQUEST else None,
        in_cdb=in_cdb if (header.key & 0x0F) == ILLEGAL_REQUEST else None,
        raw=raw[:end],
    )
