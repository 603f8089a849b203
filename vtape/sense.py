"""Fixed-format sense data and the CHECK CONDITION exception that carries it.

A command handler raises CheckCondition; the device turns it into status 0x02
plus 18 bytes of fixed-format (0x70) sense, as every client studied expects.
"""

from __future__ import annotations

from construct import Int8ub, Int16ub, Int32sb, Padding, Struct

from .errors import VtapeError

GOOD = 0x00
CHECK_CONDITION = 0x02

NO_SENSE = 0x0
NOT_READY = 0x2
MEDIUM_ERROR = 0x3
HARDWARE_ERROR = 0x4
ILLEGAL_REQUEST = 0x5
UNIT_ATTENTION = 0x6
DATA_PROTECT = 0x7
BLANK_CHECK = 0x8
ABORTED_COMMAND = 0xB
VOLUME_OVERFLOW = 0xD

SENSE_LENGTH = 18

FIXED_SENSE = Struct(
    "response" / Int8ub,  # b7 VALID | 0x70
    Padding(1),
    "flags" / Int8ub,  # b7 FILEMARK, b6 EOM, b5 ILI, b3-0 sense key
    "information" / Int32sb,
    "additional_length" / Int8ub,
    Padding(4),
    "asc" / Int8ub,
    "ascq" / Int8ub,
    Padding(1),
    "sks" / Int8ub,  # b7 SKSV, b6 C/D, b3 BPV, b2-0 bit pointer
    "field_pointer" / Int16ub,
).compile()


class CheckCondition(VtapeError):
    """A command ends with CHECK CONDITION and this sense.

    ``transferred`` is the data-in payload still returned with the condition
    (a READ that hits a filemark after some blocks, a short block with SILI=0).
    """

    def __init__(
        self,
        key: int,
        asc: int,
        ascq: int,
        *,
        information: int | None = None,
        filemark: bool = False,
        eom: bool = False,
        ili: bool = False,
        field_pointer: int | None = None,
        in_cdb: bool = True,
        bit: int | None = None,
        transferred: bytes | memoryview = b"",
    ):
        super().__init__(f"sense {key:X}/{asc:02X}/{ascq:02X}")
        self.key, self.asc, self.ascq = key, asc, ascq
        self.information = information
        self.filemark, self.eom, self.ili = filemark, eom, ili
        self.field_pointer, self.in_cdb, self.bit = field_pointer, in_cdb, bit
        self.transferred = transferred

    def sense(self) -> bytes:
        sks = 0
        if self.field_pointer is not None:
            sks = 0x80 | (0x40 if self.in_cdb else 0) | ((0x08 | self.bit) if self.bit is not None else 0)
        # Fixed format has 32 bits for the information; a residue beyond them (a SPACE(16) count
        # of 2^40, say) is reported as not valid, as SSC allows, instead of wrapping around.
        valid = self.information is not None and -(2**31) <= self.information < 2**31
        return FIXED_SENSE.build(
            dict(
                response=0x70 | (0x80 if valid else 0),
                flags=(0x80 if self.filemark else 0) | (0x40 if self.eom else 0) | (0x20 if self.ili else 0) | self.key,
                information=self.information if valid else 0,
                additional_length=10,
                asc=self.asc,
                ascq=self.ascq,
                sks=sks,
                field_pointer=self.field_pointer or 0,
            )
        )


def invalid_field_in_cdb(byte: int, bit: int | None = None) -> CheckCondition:
    return CheckCondition(ILLEGAL_REQUEST, 0x24, 0x00, field_pointer=byte, bit=bit)


def invalid_field_in_parameters(byte: int) -> CheckCondition:
    return CheckCondition(ILLEGAL_REQUEST, 0x26, 0x00, field_pointer=byte, in_cdb=False)


def invalid_opcode() -> CheckCondition:
    return CheckCondition(ILLEGAL_REQUEST, 0x20, 0x00, field_pointer=0)


def parameter_list_length_error() -> CheckCondition:
    return CheckCondition(ILLEGAL_REQUEST, 0x1A, 0x00)


def saving_parameters_not_supported() -> CheckCondition:
    return CheckCondition(ILLEGAL_REQUEST, 0x39, 0x00)


def medium_not_present() -> CheckCondition:
    return CheckCondition(NOT_READY, 0x3A, 0x00)


def becoming_ready() -> CheckCondition:
    return CheckCondition(NOT_READY, 0x04, 0x01)


def cleaning_cartridge_installed() -> CheckCondition:
    return CheckCondition(NOT_READY, 0x30, 0x03)


def write_protected() -> CheckCondition:
    return CheckCondition(DATA_PROTECT, 0x27, 0x00)


def worm_overwrite() -> CheckCondition:
    return CheckCondition(DATA_PROTECT, 0x30, 0x0C)


def medium_removal_prevented() -> CheckCondition:
    return CheckCondition(ILLEGAL_REQUEST, 0x53, 0x02)


def incompatible_medium() -> CheckCondition:
    return CheckCondition(ILLEGAL_REQUEST, 0x30, 0x00)
