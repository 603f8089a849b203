"""READ ELEMENT STATUS data (SMC-3 §6.11) and the element address assignment mode page (1Dh).

Parsing is defensive: real libraries announce more or less data than they send, and report
descriptor lengths of zero (PBS commits 13e13d83, 42b01017). Whatever cannot be trusted is dropped
with a log line, never an index error.
"""

from __future__ import annotations

import dataclasses
import logging

from construct import BitsInteger, BitStruct, Flag, Int8ub, Int16ub, Int24ub, Padding, Struct

log = logging.getLogger(__name__)

TRANSPORT = 1
STORAGE = 2
IMPORT_EXPORT = 3
DATA_TRANSFER = 4

ELEMENT_ADDRESS_ASSIGNMENT_PAGE = 0x1D

MODE_HEADER_6 = Struct(
    "mode_data_length" / Int8ub,
    "medium_type" / Int8ub,
    "device_specific" / Int8ub,
    "block_descriptor_length" / Int8ub,
)

ELEMENT_ADDRESS_ASSIGNMENT = Struct(
    "page_code" / Int8ub,
    "page_length" / Int8ub,
    "first_transport" / Int16ub,
    "transports" / Int16ub,
    "first_storage" / Int16ub,
    "storage" / Int16ub,
    "first_import_export" / Int16ub,
    "import_export" / Int16ub,
    "first_data_transfer" / Int16ub,
    "data_transfer" / Int16ub,
    Padding(2),
)
ELEMENT_ADDRESS_ASSIGNMENT_LENGTH = 20

ELEMENT_STATUS_HEADER = Struct(
    "first_address" / Int16ub,
    "number_of_elements" / Int16ub,
    Padding(1),
    "byte_count" / Int24ub,
)
ELEMENT_STATUS_PAGE_HEADER = Struct(
    "element_type" / Int8ub,
    "flags" / BitStruct("pvoltag" / Flag, "avoltag" / Flag, Padding(6)),
    "descriptor_length" / Int16ub,
    Padding(1),
    "byte_count" / Int24ub,
)
HEADER_LENGTH = 8

ELEMENT_DESCRIPTOR = Struct(
    "address" / Int16ub,
    "flags"
    / BitStruct(
        Padding(2),
        "inenab" / Flag,
        "exenab" / Flag,
        "access" / Flag,
        "exception" / Flag,
        "impexp" / Flag,
        "full" / Flag,
    ),
    Padding(1),
    "asc" / Int8ub,
    "ascq" / Int8ub,
    "bus_flags" / Int8ub,
    "bus_address" / Int8ub,
    Padding(1),
    "source_flags" / BitStruct("svalid" / Flag, "invert" / Flag, Padding(3), "medium_type" / BitsInteger(3)),
    "source_address" / Int16ub,
)
ELEMENT_DESCRIPTOR_BASE_LENGTH = 12
VOLUME_TAG_LENGTH = 36

DEVICE_IDENTIFIER_HEADER = Struct(
    "code_set" / Int8ub,
    "identifier_type" / Int8ub,
    Padding(1),
    "length" / Int8ub,
)
CODE_SET_ASCII = 2
IDENTIFIER_VENDOR_SPECIFIC = 0
IDENTIFIER_T10_VENDOR = 1
T10_IDENTIFIER_LENGTH = 34


@dataclasses.dataclass(frozen=True)
class AddressAssignment:
    first_transport: int
    transports: int
    first_storage: int
    storage: int
    first_import_export: int
    import_export: int
    first_data_transfer: int
    data_transfer: int

    def count(self, element_type: int) -> int:
        return {
            TRANSPORT: self.transports,
            STORAGE: self.storage,
            IMPORT_EXPORT: self.import_export,
            DATA_TRANSFER: self.data_transfer,
        }[element_type]


@dataclasses.dataclass
class ElementDescriptor:
    element_type: int
    address: int
    full: bool
    access: bool
    exception: bool
    import_export: bool
    source_address: int | None
    volume_tag: str | None
    #: Device identifier (DVCID): (vendor, product, serial) for a drive, when the library reports it.
    vendor: str | None = None
    product: str | None = None
    serial: str | None = None


def parse_address_assignment(data: bytes) -> AddressAssignment:
    """MODE SENSE(6) answer with page 1Dh, block descriptors disabled."""
    if len(data) < 4:
        raise ValueError(f"MODE SENSE returned {len(data)} bytes")
    header = MODE_HEADER_6.parse(data)
    start = 4 + header.block_descriptor_length
    page = data[start : start + ELEMENT_ADDRESS_ASSIGNMENT_LENGTH]
    if len(page) < ELEMENT_ADDRESS_ASSIGNMENT_LENGTH or page[0] & 0x3F != ELEMENT_ADDRESS_ASSIGNMENT_PAGE:
        raise ValueError("changer did not return the element address assignment page")
    parsed = ELEMENT_ADDRESS_ASSIGNMENT.parse(page)
    return AddressAssignment(
        parsed.first_transport,
        parsed.transports,
        parsed.first_storage,
        parsed.storage,
        parsed.first_import_export,
        parsed.import_export,
        parsed.first_data_transfer,
        parsed.data_transfer,
    )


def _ascii(raw: bytes) -> str:
    return raw.decode("ascii", "replace").rstrip(" \0")


def _parse_identifier(raw: bytes) -> tuple[str | None, str | None, str | None]:
    if len(raw) < 4:
        return None, None, None
    header = DEVICE_IDENTIFIER_HEADER.parse(raw)
    identifier = raw[4 : 4 + header.length]
    if header.code_set & 0x0F != CODE_SET_ASCII or len(identifier) != header.length:
        return None, None, None
    kind = header.identifier_type & 0x0F
    if kind == IDENTIFIER_T10_VENDOR and header.length == T10_IDENTIFIER_LENGTH:
        return _ascii(identifier[:8]), _ascii(identifier[8:24]), _ascii(identifier[24:]) or None
    if kind == IDENTIFIER_VENDOR_SPECIFIC and header.length:
        return None, None, _ascii(identifier) or None
    return None, None, None


def parse_element_status(data: bytes, *, with_identifier: bool = False) -> list[ElementDescriptor]:
    """Every element descriptor in a READ ELEMENT STATUS answer, in the order reported."""
    if len(data) < HEADER_LENGTH:
        raise ValueError(f"READ ELEMENT STATUS returned {len(data)} bytes, less than its header")
    header = ELEMENT_STATUS_HEADER.parse(data)
    end = HEADER_LENGTH + header.byte_count
    if end > len(data):
        log.warning(
            "READ ELEMENT STATUS announces %d bytes, %d arrived; parsing what arrived",
            header.byte_count,
            len(data) - HEADER_LENGTH,
        )
        end = len(data)
    elements = []
    offset = HEADER_LENGTH
    while offset + HEADER_LENGTH <= end:
        page = ELEMENT_STATUS_PAGE_HEADER.parse(data[offset:])
        offset += HEADER_LENGTH
        page_end = min(end, offset + page.byte_count)
        if page.descriptor_length < ELEMENT_DESCRIPTOR_BASE_LENGTH:
            if page.byte_count:
                log.warning("element status page with descriptor length %d ignored", page.descriptor_length)
            offset = page_end
            continue
        while offset + page.descriptor_length <= page_end:
            elements.append(_parse_descriptor(data[offset : offset + page.descriptor_length], page, with_identifier))
            offset += page.descriptor_length
        offset = page_end
    return elements


def _parse_descriptor(raw: bytes, page, with_identifier: bool) -> ElementDescriptor:
    descriptor = ELEMENT_DESCRIPTOR.parse(raw)
    cursor = ELEMENT_DESCRIPTOR_BASE_LENGTH
    volume_tag = None
    if page.flags.pvoltag:
        tag = raw[cursor : cursor + 32]
        volume_tag = _ascii(tag) or None
        cursor += VOLUME_TAG_LENGTH
    if page.flags.avoltag:
        cursor += VOLUME_TAG_LENGTH
    vendor = product = serial = None
    if with_identifier:
        vendor, product, serial = _parse_identifier(raw[cursor:])
    return ElementDescriptor(
        element_type=page.element_type & 0x0F,
        address=descriptor.address,
        full=descriptor.flags.full,
        access=descriptor.flags.access,
        exception=descriptor.flags.exception,
        import_export=descriptor.flags.impexp,
        source_address=descriptor.source_address if descriptor.source_flags.svalid else None,
        volume_tag=volume_tag if descriptor.flags.full else None,
        vendor=vendor,
        product=product,
        serial=serial,
    )
