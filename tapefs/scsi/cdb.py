"""CDB codecs for every command the drive and changer APIs send.

Each layout is a construct Struct declared once; the builder functions take the command's
arguments by name and return the CDB bytes. The byte layouts follow SPC-4, SSC-4 and SMC-3.
"""

from __future__ import annotations

import functools

from construct import (
    BitsInteger,
    BitStruct,
    Const,
    Flag,
    Int8ub,
    Int16ub,
    Int24sb,
    Int24ub,
    Int32ub,
    Int64sb,
    Int64ub,
    Padding,
    Struct,
)

TEST_UNIT_READY = 0x00
REWIND = 0x01
REQUEST_SENSE = 0x03
FORMAT_MEDIUM = 0x04
READ_BLOCK_LIMITS = 0x05
INITIALIZE_ELEMENT_STATUS = 0x07
READ_6 = 0x08
WRITE_6 = 0x0A
WRITE_FILEMARKS_6 = 0x10
SPACE_6 = 0x11
INQUIRY = 0x12
MODE_SELECT_6 = 0x15
ERASE = 0x19
MODE_SENSE_6 = 0x1A
LOAD_UNLOAD = 0x1B
PREVENT_ALLOW_MEDIUM_REMOVAL = 0x1E
READ_POSITION = 0x34
REPORT_DENSITY_SUPPORT = 0x44
LOG_SELECT = 0x4C
LOG_SENSE = 0x4D
MODE_SELECT_10 = 0x55
MODE_SENSE_10 = 0x5A
READ_ATTRIBUTE = 0x8C
WRITE_ATTRIBUTE = 0x8D
SPACE_16 = 0x91
LOCATE_16 = 0x92
REPORT_LUNS = 0xA0
SECURITY_PROTOCOL_IN = 0xA2
MOVE_MEDIUM = 0xA5
SECURITY_PROTOCOL_OUT = 0xB5
READ_ELEMENT_STATUS = 0xB8

COMMAND_NAMES = {
    TEST_UNIT_READY: "TEST UNIT READY",
    REWIND: "REWIND",
    REQUEST_SENSE: "REQUEST SENSE",
    FORMAT_MEDIUM: "FORMAT MEDIUM",
    READ_BLOCK_LIMITS: "READ BLOCK LIMITS",
    INITIALIZE_ELEMENT_STATUS: "INITIALIZE ELEMENT STATUS",
    READ_6: "READ(6)",
    WRITE_6: "WRITE(6)",
    WRITE_FILEMARKS_6: "WRITE FILEMARKS(6)",
    SPACE_6: "SPACE(6)",
    INQUIRY: "INQUIRY",
    MODE_SELECT_6: "MODE SELECT(6)",
    0x16: "RESERVE(6)",
    0x17: "RELEASE(6)",
    ERASE: "ERASE",
    MODE_SENSE_6: "MODE SENSE(6)",
    LOAD_UNLOAD: "LOAD/UNLOAD",
    PREVENT_ALLOW_MEDIUM_REMOVAL: "PREVENT ALLOW MEDIUM REMOVAL",
    0x2B: "LOCATE(10)",
    READ_POSITION: "READ POSITION",
    REPORT_DENSITY_SUPPORT: "REPORT DENSITY SUPPORT",
    LOG_SELECT: "LOG SELECT",
    LOG_SENSE: "LOG SENSE",
    MODE_SELECT_10: "MODE SELECT(10)",
    MODE_SENSE_10: "MODE SENSE(10)",
    READ_ATTRIBUTE: "READ ATTRIBUTE",
    WRITE_ATTRIBUTE: "WRITE ATTRIBUTE",
    SPACE_16: "SPACE(16)",
    LOCATE_16: "LOCATE(16)",
    REPORT_LUNS: "REPORT LUNS",
    SECURITY_PROTOCOL_IN: "SECURITY PROTOCOL IN",
    0xA3: "MAINTENANCE IN",
    MOVE_MEDIUM: "MOVE MEDIUM",
    0xA6: "EXCHANGE MEDIUM",
    SECURITY_PROTOCOL_OUT: "SECURITY PROTOCOL OUT",
    READ_ELEMENT_STATUS: "READ ELEMENT STATUS",
}


def command_name(cdb: bytes) -> str:
    """The command's SCSI name, e.g. "READ(6)"; unknown opcodes by number."""
    if not cdb:
        return "empty CDB"
    return COMMAND_NAMES.get(cdb[0], f"opcode {cdb[0]:#04x}")


def _opcode(value: int):
    return "opcode" / Const(value, Int8ub)


# --- SPC: common to drives and changers --------------------------------------------------

SIX_BYTE_NO_DATA = Struct("opcode" / Int8ub, Padding(4), "control" / Const(0, Int8ub))

INQUIRY_CDB = Struct(
    _opcode(INQUIRY),
    "flags" / BitStruct(Padding(6), "cmddt" / Const(False, Flag), "evpd" / Flag),
    "page_code" / Int8ub,
    "allocation_length" / Int16ub,
    "control" / Const(0, Int8ub),
)

REQUEST_SENSE_CDB = Struct(
    _opcode(REQUEST_SENSE),
    "flags" / BitStruct(Padding(7), "desc" / Flag),
    Padding(2),
    "allocation_length" / Int8ub,
    "control" / Const(0, Int8ub),
)

MODE_SENSE_10_CDB = Struct(
    _opcode(MODE_SENSE_10),
    "flags" / BitStruct(Padding(3), "llbaa" / Flag, "dbd" / Flag, Padding(3)),
    "page" / BitStruct("page_control" / BitsInteger(2), "page_code" / BitsInteger(6)),
    "subpage_code" / Int8ub,
    Padding(3),
    "allocation_length" / Int16ub,
    "control" / Const(0, Int8ub),
)

MODE_SENSE_6_CDB = Struct(
    _opcode(MODE_SENSE_6),
    "flags" / BitStruct(Padding(4), "dbd" / Flag, Padding(3)),
    "page" / BitStruct("page_control" / BitsInteger(2), "page_code" / BitsInteger(6)),
    "subpage_code" / Int8ub,
    "allocation_length" / Int8ub,
    "control" / Const(0, Int8ub),
)

MODE_SELECT_10_CDB = Struct(
    _opcode(MODE_SELECT_10),
    "flags" / BitStruct(Padding(3), "page_format" / Flag, Padding(3), "save_pages" / Flag),
    Padding(5),
    "parameter_list_length" / Int16ub,
    "control" / Const(0, Int8ub),
)

LOG_SENSE_CDB = Struct(
    _opcode(LOG_SENSE),
    "flags" / BitStruct(Padding(6), "ppc" / Flag, "save_parameters" / Flag),
    "page" / BitStruct("page_control" / BitsInteger(2), "page_code" / BitsInteger(6)),
    "subpage_code" / Int8ub,
    Padding(1),
    "parameter_pointer" / Int16ub,
    "allocation_length" / Int16ub,
    "control" / Const(0, Int8ub),
)

PREVENT_ALLOW_CDB = Struct(
    _opcode(PREVENT_ALLOW_MEDIUM_REMOVAL),
    Padding(3),
    "prevent" / Int8ub,
    "control" / Const(0, Int8ub),
)

READ_ATTRIBUTE_CDB = Struct(
    _opcode(READ_ATTRIBUTE),
    "service_action" / Int8ub,
    "element_address" / Int16ub,
    Padding(1),
    "volume_number" / Int8ub,
    Padding(1),
    "partition_number" / Int8ub,
    "first_attribute" / Int16ub,
    "allocation_length" / Int32ub,
    "cache" / Int8ub,
    "control" / Const(0, Int8ub),
)

WRITE_ATTRIBUTE_CDB = Struct(
    _opcode(WRITE_ATTRIBUTE),
    "write_through_cache" / Int8ub,
    Padding(3),
    "volume_number" / Int8ub,
    Padding(1),
    "partition_number" / Int8ub,
    Padding(2),
    "parameter_list_length" / Int32ub,
    Padding(1),
    "control" / Const(0, Int8ub),
)

SECURITY_PROTOCOL_CDB = Struct(
    "opcode" / Int8ub,
    "security_protocol" / Int8ub,
    "protocol_specific" / Int16ub,
    "flags" / BitStruct("inc_512" / Flag, Padding(7)),
    Padding(1),
    "length" / Int32ub,
    Padding(1),
    "control" / Const(0, Int8ub),
)

# --- SSC: tape drive ----------------------------------------------------------------------

READ_6_CDB = Struct(
    _opcode(READ_6),
    "flags" / BitStruct(Padding(6), "sili" / Flag, "fixed" / Flag),
    "transfer_length" / Int24ub,
    "control" / Const(0, Int8ub),
)

WRITE_6_CDB = Struct(
    _opcode(WRITE_6),
    "flags" / BitStruct(Padding(7), "fixed" / Flag),
    "transfer_length" / Int24ub,
    "control" / Const(0, Int8ub),
)

WRITE_FILEMARKS_6_CDB = Struct(
    _opcode(WRITE_FILEMARKS_6),
    "flags" / BitStruct(Padding(6), "wsmk" / Const(False, Flag), "immed" / Flag),
    "count" / Int24ub,
    "control" / Const(0, Int8ub),
)

SPACE_BLOCKS = 0
SPACE_FILEMARKS = 1
SPACE_END_OF_DATA = 3

SPACE_6_CDB = Struct(
    _opcode(SPACE_6),
    "code" / Int8ub,
    "count" / Int24sb,
    "control" / Const(0, Int8ub),
)
SPACE_6_MAX_COUNT = 0x7FFFFF

SPACE_16_CDB = Struct(
    _opcode(SPACE_16),
    "code" / Int8ub,
    Padding(2),
    "count" / Int64sb,
    "parameter_length" / Const(0, Int16ub),
    Padding(1),
    "control" / Const(0, Int8ub),
)

LOCATE_OBJECT = 0
LOCATE_FILE = 1
LOCATE_END_OF_DATA = 3

LOCATE_16_CDB = Struct(
    _opcode(LOCATE_16),
    "flags"
    / BitStruct(Padding(3), "dest_type" / BitsInteger(2), Padding(1), "change_partition" / Flag, "immed" / Flag),
    "bam" / Int8ub,
    "partition" / Int8ub,
    "logical_identifier" / Int64ub,
    Padding(3),
    "control" / Const(0, Int8ub),
)

READ_POSITION_LONG = 0x06

READ_POSITION_CDB = Struct(
    _opcode(READ_POSITION),
    "service_action" / Int8ub,
    Padding(5),
    "allocation_length" / Int16ub,
    "control" / Const(0, Int8ub),
)

REWIND_CDB = Struct(
    _opcode(REWIND),
    "flags" / BitStruct(Padding(7), "immed" / Flag),
    Padding(3),
    "control" / Const(0, Int8ub),
)

LOAD_UNLOAD_CDB = Struct(
    _opcode(LOAD_UNLOAD),
    "flags" / BitStruct(Padding(7), "immed" / Flag),
    Padding(2),
    "action" / BitStruct(Padding(4), "hold" / Flag, "eot" / Flag, "retension" / Flag, "load" / Flag),
    "control" / Const(0, Int8ub),
)

ERASE_CDB = Struct(
    _opcode(ERASE),
    "flags" / BitStruct(Padding(6), "immed" / Flag, "long" / Flag),
    Padding(3),
    "control" / Const(0, Int8ub),
)

FORMAT_MEDIUM_CDB = Struct(
    _opcode(FORMAT_MEDIUM),
    "flags" / BitStruct(Padding(6), "verify" / Flag, "immed" / Flag),
    "format" / Int8ub,
    "transfer_length" / Int16ub,
    "control" / Const(0, Int8ub),
)

REPORT_DENSITY_SUPPORT_CDB = Struct(
    _opcode(REPORT_DENSITY_SUPPORT),
    "flags" / BitStruct(Padding(6), "medium_type" / Const(False, Flag), "media" / Flag),
    Padding(5),
    "allocation_length" / Int16ub,
    "control" / Const(0, Int8ub),
)

# --- SMC: medium changer ------------------------------------------------------------------

READ_ELEMENT_STATUS_CDB = Struct(
    _opcode(READ_ELEMENT_STATUS),
    "flags" / BitStruct(Padding(3), "voltag" / Flag, "element_type" / BitsInteger(4)),
    "starting_address" / Int16ub,
    "number_of_elements" / Int16ub,
    "flags2" / BitStruct(Padding(6), "curdata" / Flag, "dvcid" / Flag),
    "allocation_length" / Int24ub,
    Padding(1),
    "control" / Const(0, Int8ub),
)

MOVE_MEDIUM_CDB = Struct(
    _opcode(MOVE_MEDIUM),
    Padding(1),
    "transport" / Int16ub,
    "source" / Int16ub,
    "destination" / Int16ub,
    Padding(2),
    "flags" / BitStruct(Padding(7), "invert" / Flag),
    "control" / Const(0, Int8ub),
)


# --- builders ------------------------------------------------------------------------------


def test_unit_ready() -> bytes:
    return SIX_BYTE_NO_DATA.build(dict(opcode=TEST_UNIT_READY))


def read_block_limits() -> bytes:
    return SIX_BYTE_NO_DATA.build(dict(opcode=READ_BLOCK_LIMITS))


def initialize_element_status() -> bytes:
    return SIX_BYTE_NO_DATA.build(dict(opcode=INITIALIZE_ELEMENT_STATUS))


def inquiry(allocation_length: int, vpd_page: int | None = None) -> bytes:
    return INQUIRY_CDB.build(
        dict(flags=dict(evpd=vpd_page is not None), page_code=vpd_page or 0, allocation_length=allocation_length)
    )


def request_sense(allocation_length: int = 252) -> bytes:
    return REQUEST_SENSE_CDB.build(dict(flags=dict(desc=False), allocation_length=allocation_length))


def mode_sense_10(
    page_code: int,
    allocation_length: int,
    *,
    subpage_code: int = 0,
    page_control: int = 0,
    disable_block_descriptors: bool = False,
) -> bytes:
    return MODE_SENSE_10_CDB.build(
        dict(
            flags=dict(llbaa=False, dbd=disable_block_descriptors),
            page=dict(page_control=page_control, page_code=page_code),
            subpage_code=subpage_code,
            allocation_length=allocation_length,
        )
    )


def mode_sense_6(
    page_code: int,
    allocation_length: int,
    *,
    subpage_code: int = 0,
    page_control: int = 0,
    disable_block_descriptors: bool = False,
) -> bytes:
    return MODE_SENSE_6_CDB.build(
        dict(
            flags=dict(dbd=disable_block_descriptors),
            page=dict(page_control=page_control, page_code=page_code),
            subpage_code=subpage_code,
            allocation_length=allocation_length,
        )
    )


def mode_select_10(parameter_list_length: int) -> bytes:
    return MODE_SELECT_10_CDB.build(
        dict(flags=dict(page_format=True, save_pages=False), parameter_list_length=parameter_list_length)
    )


def log_sense(
    page_code: int, allocation_length: int, *, subpage_code: int = 0, page_control: int = 1, parameter_pointer: int = 0
) -> bytes:
    # Page control 01b asks for the current cumulative values, as PBS and sg_logs do.
    return LOG_SENSE_CDB.build(
        dict(
            flags=dict(ppc=False, save_parameters=False),
            page=dict(page_control=page_control, page_code=page_code),
            subpage_code=subpage_code,
            parameter_pointer=parameter_pointer,
            allocation_length=allocation_length,
        )
    )


def prevent_allow_medium_removal(prevent: bool) -> bytes:
    return PREVENT_ALLOW_CDB.build(dict(prevent=1 if prevent else 0))


def read_attribute(
    allocation_length: int, *, service_action: int = 0, first_attribute: int = 0, partition: int = 0
) -> bytes:
    return READ_ATTRIBUTE_CDB.build(
        dict(
            service_action=service_action,
            element_address=0,
            volume_number=0,
            partition_number=partition,
            first_attribute=first_attribute,
            allocation_length=allocation_length,
            cache=0,
        )
    )


def write_attribute(parameter_list_length: int, *, partition: int = 0) -> bytes:
    return WRITE_ATTRIBUTE_CDB.build(
        dict(
            write_through_cache=0,
            volume_number=0,
            partition_number=partition,
            parameter_list_length=parameter_list_length,
        )
    )


TAPE_DATA_ENCRYPTION = 0x20


def security_protocol_in(page: int, allocation_length: int, protocol: int = TAPE_DATA_ENCRYPTION) -> bytes:
    return SECURITY_PROTOCOL_CDB.build(
        dict(
            opcode=SECURITY_PROTOCOL_IN,
            security_protocol=protocol,
            protocol_specific=page,
            flags=dict(inc_512=False),
            length=allocation_length,
        )
    )


def security_protocol_out(page: int, transfer_length: int, protocol: int = TAPE_DATA_ENCRYPTION) -> bytes:
    return SECURITY_PROTOCOL_CDB.build(
        dict(
            opcode=SECURITY_PROTOCOL_OUT,
            security_protocol=protocol,
            protocol_specific=page,
            flags=dict(inc_512=False),
            length=transfer_length,
        )
    )


# READ and WRITE go out once per 256 KiB block with the same few lengths, and a
# construct build costs ~100 us: remember the bytes.
@functools.lru_cache(maxsize=64)
def read_6(transfer_length: int, *, sili: bool = True, fixed: bool = False) -> bytes:
    return READ_6_CDB.build(dict(flags=dict(sili=sili, fixed=fixed), transfer_length=transfer_length))


@functools.lru_cache(maxsize=64)
def write_6(transfer_length: int, *, fixed: bool = False) -> bytes:
    return WRITE_6_CDB.build(dict(flags=dict(fixed=fixed), transfer_length=transfer_length))


def write_filemarks_6(count: int, *, immediate: bool = False) -> bytes:
    return WRITE_FILEMARKS_6_CDB.build(dict(flags=dict(immed=immediate), count=count))


def space(code: int, count: int) -> bytes:
    """SPACE(6) when the count fits in 24 signed bits, else SPACE(16), as PBS does."""
    if -SPACE_6_MAX_COUNT - 1 <= count <= SPACE_6_MAX_COUNT:
        return SPACE_6_CDB.build(dict(code=code, count=count))
    return SPACE_16_CDB.build(dict(code=code, count=count))


def locate_16(logical_identifier: int, *, dest_type: int = LOCATE_OBJECT, immediate: bool = False) -> bytes:
    return LOCATE_16_CDB.build(
        dict(
            flags=dict(dest_type=dest_type, change_partition=False, immed=immediate),
            bam=0,
            partition=0,
            logical_identifier=logical_identifier,
        )
    )


def read_position(service_action: int = READ_POSITION_LONG, allocation_length: int = 0) -> bytes:
    return READ_POSITION_CDB.build(dict(service_action=service_action, allocation_length=allocation_length))


def rewind(*, immediate: bool = False) -> bytes:
    return REWIND_CDB.build(dict(flags=dict(immed=immediate)))


def load_unload(load: bool, *, immediate: bool = False) -> bytes:
    return LOAD_UNLOAD_CDB.build(
        dict(flags=dict(immed=immediate), action=dict(hold=False, eot=False, retension=False, load=load))
    )


def erase(*, long: bool = False, immediate: bool = False) -> bytes:
    return ERASE_CDB.build(dict(flags=dict(immed=immediate, long=long)))


def format_medium(*, immediate: bool = False, partitioning: int = 0) -> bytes:
    return FORMAT_MEDIUM_CDB.build(
        dict(flags=dict(verify=False, immed=immediate), format=partitioning, transfer_length=0)
    )


def report_density_support(allocation_length: int, *, media: bool = False) -> bytes:
    return REPORT_DENSITY_SUPPORT_CDB.build(dict(flags=dict(media=media), allocation_length=allocation_length))


def read_element_status(
    element_type: int,
    *,
    starting_address: int = 0,
    number_of_elements: int = 1000,
    allocation_length: int = 0xFFFF,
    voltag: bool = True,
    dvcid: bool = False,
) -> bytes:
    return READ_ELEMENT_STATUS_CDB.build(
        dict(
            flags=dict(voltag=voltag, element_type=element_type),
            starting_address=starting_address,
            number_of_elements=number_of_elements,
            flags2=dict(curdata=False, dvcid=dvcid),
            allocation_length=allocation_length,
        )
    )


def move_medium(transport: int, source: int, destination: int) -> bytes:
    return MOVE_MEDIUM_CDB.build(
        dict(transport=transport, source=source, destination=destination, flags=dict(invert=False))
    )


def parse_hex_cdb(text: str) -> bytes:
    """A CDB typed as hex ("12 00 00 00 24 00", "1200000024 00", "0x12,0x00,..."); ValueError if it
    is not 6 to 16 bytes of hex."""
    cleaned = text.replace(",", " ").replace(":", " ")
    digits = "".join(part[2:] if part.lower().startswith("0x") else part for part in cleaned.split())
    try:
        cdb = bytes.fromhex(digits)
    except ValueError:
        raise ValueError(f"{text!r} is not a CDB in hex") from None
    if not 6 <= len(cdb) <= 16:
        raise ValueError(f"a CDB is 6 to 16 bytes, {text!r} has {len(cdb)}")
    return cdb
