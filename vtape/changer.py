"""SCSI Media Changer (SMC-3) personality of the library robot.

The changer reports and moves what ``Library`` holds: READ ELEMENT STATUS
describes the elements, MOVE MEDIUM and EXCHANGE MEDIUM ask the library to
move cartridges (it does the checks and the drive coupling). Layouts follow
SMC-3; the client quirks they serve (PBS, mtx, loaderinfo) are noted where
they decide a detail.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from construct import Array, Bytes, Int8ub, Int16ub, Int24ub, Padding, Struct

from . import media, sense
from .elements import DRIVE, ELEMENT_TYPE_CODES, FIRST_ADDRESS, IMPORT_EXPORT, STORAGE, TRANSPORT, Element
from .sense import CheckCondition
from .spc import Identity, LogParameter, ModePage, ScsiDevice, ascii_field, command

if TYPE_CHECKING:
    from .library import Library

STANDARD_INQUIRY = Struct(
    "peripheral_type" / Int8ub,
    "removable" / Int8ub,
    "version" / Int8ub,
    "response_format" / Int8ub,
    "additional_length" / Int8ub,
    Padding(3),
    "vendor" / Bytes(8),
    "product" / Bytes(16),
    "revision" / Bytes(4),
    Padding(2),
    "serial" / Bytes(12),
    Padding(5),
    "features" / Int8ub,  # b0: barcode reader present (loaderinfo)
    Padding(2),
    "version_descriptors" / Array(7, Int16ub),
).compile()
INQUIRY_LENGTH = 72
BARCODE_READER = 0x01
VERSION_DESCRIPTORS = [0x005C, 0x0300, 0x02FE, 0, 0, 0, 0]  # SAM-2, SPC-3, SMC-2

ELEMENT_ADDRESS_PAGE = Struct(
    "page_code" / Int8ub,
    "page_length" / Int8ub,
    "first_transport" / Int16ub,
    "transports" / Int16ub,
    "first_storage" / Int16ub,
    "storage" / Int16ub,
    "first_import_export" / Int16ub,
    "import_export" / Int16ub,
    "first_drive" / Int16ub,
    "drives" / Int16ub,
    Padding(2),
).compile()

DEVICE_CAPABILITIES_PAGE = Struct(
    "page_code" / Int8ub,
    "page_length" / Int8ub,
    "store" / Int8ub,  # b3 DT, b2 IE, b1 ST, b0 MT can hold a cartridge
    "features" / Int8ub,  # loaderinfo: b0 SMC-2, b1 volume tag reader
    "move_from" / Array(4, Int8ub),  # MT, ST, IE, DT -> destination bits
    Padding(4),
    "exchange_from" / Array(4, Int8ub),  # MT, ST, IE, DT -> second element bits
    Padding(4),
).compile()
#: b3 DT, b2 IE, b1 ST: the transport never holds a cartridge in this library.
STORABLE = 0x0E
#: Reserved in SMC-3, but loaderinfo reports b0 as "SMC-2" and b1 as "volume tag reader".
SMC2_AND_VOLUME_TAG_READER = 0x03

ELEMENT_STATUS_HEADER = Struct(
    "first_address" / Int16ub,
    "count" / Int16ub,
    Padding(1),
    "byte_count" / Int24ub,  # all pages after this header, before allocation truncation
).compile()

ELEMENT_PAGE_HEADER = Struct(
    "type_code" / Int8ub,
    "flags" / Int8ub,  # b7 PVOLTAG
    "descriptor_length" / Int16ub,
    Padding(1),
    "byte_count" / Int24ub,
).compile()
PVOLTAG = 0x80

ELEMENT_DESCRIPTOR = Struct(
    "address" / Int16ub,
    "flags" / Int8ub,
    Padding(1),
    Padding(2),  # ASC/ASCQ: no element ever reports an exception
    Padding(2),  # DT bus/LUN information: none, the drives are not on a SCSI bus
    Padding(1),
    "medium" / Int8ub,  # b7 SVALID, b2-0 medium type
    "source" / Int16ub,
).compile()
FULL, IMPEXP, ACCESS, EXENAB, INENAB = 0x01, 0x02, 0x08, 0x10, 0x20
SVALID = 0x80
DATA_MEDIUM, CLEANING_MEDIUM = 1, 2

VOLUME_TAG = Struct(
    "label" / Bytes(32),
    Padding(2),
    "sequence" / Int16ub,
).compile()

IDENTIFICATION_HEADER = Struct(
    "code_set" / Int8ub,
    "identifier_type" / Int8ub,
    Padding(1),
    "length" / Int8ub,
).compile()
ASCII_CODE_SET, T10_VENDOR_ID = 2, 1

NO_IDENTIFIER = bytes(IDENTIFICATION_HEADER.sizeof())

TAPEALERT_FLAGS = range(0x01, 0x41)


def be(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def invalid_element_address(field: int) -> CheckCondition:
    return CheckCondition(sense.ILLEGAL_REQUEST, 0x21, 0x01, field_pointer=field)


class MediumChanger(ScsiDevice):
    """The changer logical unit of a library (peripheral device type 8)."""

    peripheral_type = 0x08

    def __init__(self, library: Library, identity: Identity):
        super().__init__(identity)
        self.library = library
        #: PREVENT MEDIUM REMOVAL: the operator cannot open the import/export slots.
        self.removal_prevented = False
        #: TapeAlert flags (1..64) that LOG SENSE page 0x2E reports as set.
        self.tape_alerts: set[int] = set()
        #: Storage slots reported empty whatever they hold (an injected stale element status, as
        #: after an operator filled the magazine by hand) until INITIALIZE ELEMENT STATUS rescans.
        self.stale_slots: set[int] = set()

    # -- identification -----------------------------------------------------------

    def standard_inquiry(self) -> bytes:
        ident = self.identity
        return STANDARD_INQUIRY.build(
            dict(
                peripheral_type=self.peripheral_type,
                removable=0,
                version=0x05,
                response_format=0x02,
                additional_length=INQUIRY_LENGTH - 5,
                vendor=ascii_field(ident.vendor, 8),
                product=ascii_field(ident.product, 16),
                revision=ascii_field(ident.revision, 4),
                serial=ascii_field(ident.serial, 12),
                features=BARCODE_READER,
                version_descriptors=VERSION_DESCRIPTORS,
            )
        )

    # -- MODE SENSE pages -----------------------------------------------------------

    def mode_pages(self) -> dict[int, ModePage]:
        def page(code: int, body: bytes) -> ModePage:
            # Nothing on a changer page can be changed: the mask is all zero.
            unchangeable = body[:2] + bytes(len(body) - 2)
            return ModePage(code, body, unchangeable, body)

        lib = self.library
        address_page = ELEMENT_ADDRESS_PAGE.build(
            dict(
                page_code=0x1D,
                page_length=0x12,
                first_transport=FIRST_ADDRESS[TRANSPORT],
                transports=len(lib.elements_of(TRANSPORT)),
                first_storage=FIRST_ADDRESS[STORAGE],
                storage=len(lib.elements_of(STORAGE)),
                first_import_export=FIRST_ADDRESS[IMPORT_EXPORT],
                import_export=len(lib.elements_of(IMPORT_EXPORT)),
                first_drive=FIRST_ADDRESS[DRIVE],
                drives=len(lib.elements_of(DRIVE)),
            )
        )
        transports = len(lib.elements_of(TRANSPORT))
        # One (ROTATE=0, MEMBER NUMBER) pair per transport.
        geometry_page = bytes([0x1E, 2 * transports]) + b"".join(bytes([0, n]) for n in range(transports))
        capabilities_page = DEVICE_CAPABILITIES_PAGE.build(
            dict(
                page_code=0x1F,
                page_length=0x12,
                store=STORABLE,
                features=SMC2_AND_VOLUME_TAG_READER,
                move_from=[0, STORABLE, STORABLE, STORABLE],
                exchange_from=[0, STORABLE, STORABLE, STORABLE],
            )
        )
        return {0x1D: page(0x1D, address_page), 0x1E: page(0x1E, geometry_page), 0x1F: page(0x1F, capabilities_page)}

    # -- LOG SENSE pages ----------------------------------------------------------------

    def log_pages(self):
        return {0x2E: self.tapealert_page}

    def tapealert_page(self) -> list[LogParameter]:
        return [LogParameter(flag, bytes([flag in self.tape_alerts])) for flag in TAPEALERT_FLAGS]

    # -- commands -------------------------------------------------------------------------

    @command(0xB8, "READ ELEMENT STATUS", 12)
    def read_element_status(self, cdb, data_out, allocation):
        # b1.7-5 is ignored: mtx puts the LUN there.
        voltag, type_code = bool(cdb[1] & 0x10), cdb[1] & 0x0F
        start, limit = be(cdb[2:4]), be(cdb[4:6])
        dvcid = bool(cdb[6] & 0x01)  # CURDATA (b6.1) changes nothing: the inventory is always current
        length = be(cdb[7:10])
        if type_code > ELEMENT_TYPE_CODES[DRIVE]:
            raise sense.invalid_field_in_cdb(1, bit=3)
        selected = [
            e for e in self.library.elements if e.address >= start and type_code in (0, ELEMENT_TYPE_CODES[e.kind])
        ]
        if limit:  # 0 means no limit, as in mhvtl
            selected = selected[:limit]
        # One page per run of one element type; elements are in ascending address order.
        pages = b"".join(
            self.element_page(kind, list(run), voltag, dvcid)
            for kind, run in itertools.groupby(selected, key=lambda e: e.kind)
        )
        # Nothing selected is not an error: PBS asks for import/export elements even when there are none.
        header = ELEMENT_STATUS_HEADER.build(
            dict(first_address=selected[0].address if selected else start, count=len(selected), byte_count=len(pages))
        )
        return (header + pages)[:length]

    def element_page(self, kind: str, elements: list[Element], voltag: bool, dvcid: bool) -> bytes:
        with_identifier = dvcid and kind == DRIVE
        descriptors = [self.element_descriptor(e, voltag, with_identifier) for e in elements]
        descriptor_length = len(descriptors[0])
        return ELEMENT_PAGE_HEADER.build(
            dict(
                type_code=ELEMENT_TYPE_CODES[kind],
                flags=PVOLTAG if voltag else 0,
                descriptor_length=descriptor_length,
                byte_count=descriptor_length * len(descriptors),
            )
        ) + b"".join(descriptors)

    def element_descriptor(self, element: Element, voltag: bool, with_identifier: bool) -> bytes:
        if element.address in self.stale_slots:
            element = Element(element.kind, element.address)
        flags = FULL if element.full else 0
        if element.kind != TRANSPORT:
            flags |= ACCESS
        if element.kind == IMPORT_EXPORT:
            flags |= EXENAB | INENAB | (IMPEXP if element.imported else 0)
        medium = 0
        if element.full:
            medium = CLEANING_MEDIUM if media.parse_barcode(element.barcode).cleaning else DATA_MEDIUM
            if element.source is not None:
                medium |= SVALID
        descriptor = ELEMENT_DESCRIPTOR.build(
            dict(
                address=element.address,
                flags=flags,
                medium=medium,
                source=element.source if element.full and element.source is not None else 0,
            )
        )
        if voltag:
            label = element.barcode.encode("ascii").ljust(32, b" ") if element.full else bytes(32)
            descriptor += VOLUME_TAG.build(dict(label=label, sequence=0))
        if with_identifier:
            ident = self.library.drive_for(element).identity
            # T10 vendor identification, exactly 34 bytes: the form PBS takes the drive serial from.
            t10 = ascii_field(ident.vendor, 8) + ascii_field(ident.product, 16) + ascii_field(ident.serial, 10)
            descriptor += (
                IDENTIFICATION_HEADER.build(
                    dict(code_set=ASCII_CODE_SET, identifier_type=T10_VENDOR_ID, length=len(t10))
                )
                + t10
            )
        else:
            descriptor += NO_IDENTIFIER
        return descriptor

    def check_transport(self, cdb: bytes) -> None:
        """Bytes 2-3: 0 means the default transport; otherwise it must be a transport element."""
        address = be(cdb[2:4])
        element = self.library.element(address)
        if address and (element is None or element.kind != TRANSPORT):
            raise invalid_element_address(2)

    @command(0xA5, "MOVE MEDIUM", 12)
    def move_medium(self, cdb, data_out, allocation):
        # b11.7-6 may carry mtx's "eepos": ignored, there is no I/E door to extend or retract.
        self.check_transport(cdb)
        if cdb[10] & 0x01:
            raise sense.invalid_field_in_cdb(10, bit=0)  # INVERT: cartridges cannot be turned over
        self.library.move(be(cdb[4:6]), be(cdb[6:8]))

    @command(0xA6, "EXCHANGE MEDIUM", 12)
    def exchange_medium(self, cdb, data_out, allocation):
        self.check_transport(cdb)
        if cdb[10] & 0x02:
            raise sense.invalid_field_in_cdb(10, bit=1)  # INV1
        if cdb[10] & 0x01:
            raise sense.invalid_field_in_cdb(10, bit=0)  # INV2
        self.library.exchange(be(cdb[4:6]), be(cdb[6:8]), be(cdb[8:10]))

    @command(0x2B, "POSITION TO ELEMENT", 10)
    def position_to_element(self, cdb, data_out, allocation):
        self.check_transport(cdb)
        destination = self.library.element(be(cdb[4:6]))
        if destination is None or destination.kind == TRANSPORT:
            raise invalid_element_address(4)
        if cdb[8] & 0x01:
            raise sense.invalid_field_in_cdb(8, bit=0)

    @command(0x07, "INITIALIZE ELEMENT STATUS", 6)
    def initialize_element_status(self, cdb, data_out, allocation):
        """The library's own state is always current: a rescan only clears a stale report."""
        self.stale_slots.clear()

    @command(0xE7, "INITIALIZE ELEMENT STATUS WITH RANGE", 10)
    def initialize_element_status_with_range(self, cdb, data_out, allocation):
        if not cdb[1] & 0x01:
            self.stale_slots.clear()
            return
        start = be(cdb[2:4])
        if self.library.element(start) is None:
            raise invalid_element_address(2)
        count = be(cdb[6:8])
        self.stale_slots = {a for a in self.stale_slots if not start <= a < start + count}

    @command(0x1B, "START STOP UNIT", 6)
    def start_stop_unit(self, cdb, data_out, allocation):
        """mtx eject: there is no door or magazine to move, so this succeeds doing nothing."""

    @command(0x1E, "PREVENT ALLOW MEDIUM REMOVAL", 6)
    def prevent_allow_medium_removal(self, cdb, data_out, allocation):
        prevent = cdb[4] & 0x03
        if prevent > 1:
            raise sense.invalid_field_in_cdb(4, bit=1)
        self.removal_prevented = bool(prevent)
