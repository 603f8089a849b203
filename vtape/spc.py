"""SCSI Primary Commands shared by the tape drive and the media changer.

A device is a table of command handlers plus the SPC behaviour around them:
the unit-attention queue (one per logical unit: every connection is the same
initiator), INQUIRY with VPD pages, REQUEST SENSE, REPORT LUNS, REPORT
SUPPORTED OPERATION CODES, and the MODE SENSE/SELECT and LOG SENSE framing
that the device fills with its own pages.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Callable

from . import sense
from .sense import CheckCondition

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CommandSpec:
    opcode: int
    name: str
    cdb_length: int
    service_action: int | None
    handler: Callable
    #: INQUIRY, REPORT LUNS and REQUEST SENSE run despite a pending unit attention.
    ua_exempt: bool


def command(opcode: int, name: str, cdb_length: int, *, service_action: int | None = None, ua_exempt: bool = False):
    """Mark a device method as the handler of one opcode."""

    def mark(fn):
        fn.scsi_commands = getattr(fn, "scsi_commands", []) + [(opcode, name, cdb_length, service_action, ua_exempt)]
        return fn

    return mark


@dataclasses.dataclass
class Outcome:
    """What one command produced, before the transport applies the client's buffer size."""

    status: int
    sense: bytes = b""
    data: bytes | memoryview = b""


@dataclasses.dataclass(frozen=True)
class Identity:
    vendor: str
    product: str
    revision: str
    serial: str
    naa: int


def ascii_field(text: str, size: int) -> bytes:
    return text.encode("ascii", "replace")[:size].ljust(size, b" ")


@dataclasses.dataclass(frozen=True)
class LogParameter:
    code: int
    value: bytes
    control: int = 0x00


@dataclasses.dataclass(frozen=True)
class ModePage:
    code: int
    current: bytes
    changeable: bytes
    default: bytes


class ScsiDevice:
    """Base of the drive and the changer: dispatch, unit attentions, SPC commands."""

    peripheral_type: int = 0
    commands: dict[int, CommandSpec] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        table: dict[int, CommandSpec] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                for opcode, name, length, sa, exempt in getattr(attr, "scsi_commands", ()):
                    table[opcode] = CommandSpec(opcode, name, length, sa, attr, exempt)
        cls.commands = dict(sorted(table.items()))

    def __init__(self, identity: Identity):
        self.identity = identity
        self.unit_attentions: collections.deque[CheckCondition] = collections.deque()
        self.injected_failures: collections.deque[CheckCondition] = collections.deque()

    # -- dispatch -------------------------------------------------------------

    def execute(self, cdb: bytes, data_out: memoryview, allocation: int) -> Outcome:
        """Run one CDB; never raises for anything a client can send."""
        spec = self.commands.get(cdb[0])
        try:
            if spec is None:
                raise sense.invalid_opcode()
            if len(cdb) != spec.cdb_length:
                # The opcode's group fixes the CDB length; a different one is a malformed command.
                raise sense.invalid_field_in_cdb(0)
            if not spec.ua_exempt:
                if self.unit_attentions:
                    raise self.unit_attentions.popleft()
                if self.injected_failures:
                    raise self.injected_failures.popleft()
            data = spec.handler(self, cdb.ljust(16, b"\0"), data_out, allocation)
            return Outcome(sense.GOOD, data=data or b"")
        except CheckCondition as cc:
            return Outcome(sense.CHECK_CONDITION, sense=cc.sense(), data=cc.transferred)

    def command_name(self, opcode: int) -> str:
        spec = self.commands.get(opcode)
        return spec.name if spec else f"UNKNOWN 0x{opcode:02X}"

    def raise_unit_attention(self, asc: int, ascq: int) -> None:
        if not any((ua.asc, ua.ascq) == (asc, ascq) for ua in self.unit_attentions):
            self.unit_attentions.append(CheckCondition(sense.UNIT_ATTENTION, asc, ascq))

    # -- hooks for subclasses -------------------------------------------------

    def standard_inquiry(self) -> bytes:
        raise NotImplementedError

    def vpd_pages(self) -> dict[int, bytes]:
        """VPD page code -> page body (without the 4-byte header)."""
        ident = self.identity
        t10 = ascii_field(ident.vendor, 8) + ascii_field(ident.product, 16) + ascii_field(ident.serial, 10)
        designators = (
            bytes([0x02, 0x01, 0x00, len(t10)]) + t10 + bytes([0x01, 0x03, 0x00, 0x08]) + ident.naa.to_bytes(8, "big")
        )
        return {0x80: ident.serial.encode("ascii"), 0x83: designators}

    def current_sense(self) -> CheckCondition | None:
        """The state REQUEST SENSE reports when no unit attention is pending."""
        return None

    def test_ready(self) -> None:
        """Raise the NOT READY condition, if any."""

    # -- SPC commands ---------------------------------------------------------

    @command(0x00, "TEST UNIT READY", 6)
    def test_unit_ready(self, cdb, data_out, allocation):
        self.test_ready()

    @command(0x12, "INQUIRY", 6, ua_exempt=True)
    def inquiry(self, cdb, data_out, allocation):
        evpd, page = cdb[1] & 0x01, cdb[2]
        if cdb[1] & 0x02:
            raise sense.invalid_field_in_cdb(1, bit=1)
        length = int.from_bytes(cdb[3:5], "big")
        if not evpd:
            if page:
                raise sense.invalid_field_in_cdb(2)
            return self.standard_inquiry()[:length]
        pages = self.vpd_pages()
        pages[0x00] = bytes(sorted([0x00, *pages]))
        if page not in pages:
            raise sense.invalid_field_in_cdb(2)
        body = pages[page]
        return (bytes([self.peripheral_type, page]) + len(body).to_bytes(2, "big") + body)[:length]

    @command(0x03, "REQUEST SENSE", 6, ua_exempt=True)
    def request_sense(self, cdb, data_out, allocation):
        # DESC=1 is answered in fixed format, as most tape drives do.
        pending = self.unit_attentions.popleft() if self.unit_attentions else self.current_sense()
        data = pending.sense() if pending else CheckCondition(sense.NO_SENSE, 0, 0).sense()
        return data[: cdb[4]]

    @command(0xA0, "REPORT LUNS", 12, ua_exempt=True)
    def report_luns(self, cdb, data_out, allocation):
        length = int.from_bytes(cdb[6:10], "big")
        return ((8).to_bytes(4, "big") + bytes(4) + bytes(8))[:length]

    @command(0xA3, "REPORT SUPPORTED OPERATION CODES", 12, service_action=0x0C)
    def report_supported_operation_codes(self, cdb, data_out, allocation):
        if cdb[1] & 0x1F != 0x0C:
            raise sense.invalid_field_in_cdb(1, bit=4)
        rctd, options = cdb[2] & 0x80, cdb[2] & 0x07
        length = int.from_bytes(cdb[6:10], "big")
        if options == 0:
            body = b""
            for spec in self.commands.values():
                sa = spec.service_action
                flags = (0x02 if rctd else 0) | (0x01 if sa is not None else 0)
                body += (
                    bytes([spec.opcode, 0])
                    + (sa or 0).to_bytes(2, "big")
                    + bytes([0, flags])
                    + spec.cdb_length.to_bytes(2, "big")
                )
                if rctd:
                    body += (0x0A).to_bytes(2, "big") + bytes(10)
            return (len(body).to_bytes(4, "big") + body)[:length]
        if options not in (1, 2, 3):
            raise sense.invalid_field_in_cdb(2, bit=2)
        spec = self.commands.get(cdb[3])
        wanted_sa = int.from_bytes(cdb[4:6], "big")
        supported = spec is not None and (options == 1 or spec.service_action in (None, wanted_sa))
        if options == 1 and spec is not None and spec.service_action is not None:
            raise sense.invalid_field_in_cdb(2, bit=2)
        if not supported:
            return bytes([0, 0x01, 0, 0])[:length]
        usage = bytes([spec.opcode]) + b"\xff" * (spec.cdb_length - 1)
        if spec.service_action is not None:
            usage = bytes([spec.opcode, spec.service_action]) + b"\xff" * (spec.cdb_length - 2)
        return (bytes([0, 0x03]) + len(usage).to_bytes(2, "big") + usage)[:length]

    # -- MODE SENSE / MODE SELECT framing --------------------------------------

    def mode_pages(self) -> dict[int, ModePage]:
        return {}

    def mode_header_values(self) -> tuple[int, int]:
        """(medium type, device-specific byte) for the mode parameter header."""
        return 0, 0

    def block_descriptor(self, changeable: bool) -> bytes | None:
        """The 8-byte block descriptor, or None for devices that have none."""
        return None

    def mode_sense(self, cdb: bytes, ten: bool) -> bytes:
        dbd = cdb[1] & 0x08
        pc, page = cdb[2] >> 6, cdb[2] & 0x3F
        subpage = cdb[3]
        length = int.from_bytes(cdb[7:9], "big") if ten else cdb[4]
        if pc == 3:
            raise sense.saving_parameters_not_supported()
        pages = self.mode_pages()
        if subpage not in (0x00, 0xFF):
            raise sense.invalid_field_in_cdb(3)
        if page == 0x3F:
            chosen = list(pages.values())
        elif page in pages:
            chosen = [pages[page]]
        else:
            raise sense.invalid_field_in_cdb(2, bit=5)
        body = b"".join((p.current, p.changeable, p.default, p.current)[pc] for p in chosen)
        descriptor = None if dbd else self.block_descriptor(changeable=pc == 1)
        descriptor = descriptor or b""
        medium_type, device_specific = self.mode_header_values()
        if pc == 1:
            medium_type, device_specific = 0, 0
        if ten:
            total = 8 + len(descriptor) + len(body)
            header = (
                (total - 2).to_bytes(2, "big")
                + bytes([medium_type, device_specific, 0, 0])
                + len(descriptor).to_bytes(2, "big")
            )
        else:
            total = 4 + len(descriptor) + len(body)
            if total > 256:
                raise sense.invalid_field_in_cdb(2)
            header = bytes([total - 1, medium_type, device_specific, len(descriptor)])
        return (header + descriptor + body)[:length]

    @command(0x1A, "MODE SENSE(6)", 6)
    def mode_sense6(self, cdb, data_out, allocation):
        return self.mode_sense(cdb, ten=False)

    @command(0x5A, "MODE SENSE(10)", 10)
    def mode_sense10(self, cdb, data_out, allocation):
        return self.mode_sense(cdb, ten=True)

    def apply_mode_parameters(
        self, device_specific: int, descriptor: tuple[int, bytes] | None, pages: list[tuple[int, int, bytes]]
    ) -> None:
        """Validate everything first, then apply (a MODE SELECT is all or nothing).

        descriptor: (offset in the parameter list, the 8 block descriptor bytes);
        pages: (page code, offset of the page in the parameter list, page bytes).
        """
        if pages:
            raise sense.invalid_field_in_parameters(pages[0][1])

    def mode_select(self, cdb: bytes, data: memoryview, ten: bool) -> None:
        if cdb[1] & 0x01:
            raise sense.invalid_field_in_cdb(1, bit=0)
        length = int.from_bytes(cdb[7:9], "big") if ten else cdb[4]
        if length == 0:
            return
        if len(data) < length:
            raise sense.parameter_list_length_error()
        data = bytes(data[:length])
        header_size = 8 if ten else 4
        if length < header_size:
            raise sense.parameter_list_length_error()
        device_specific = data[3] if ten else data[2]
        descriptor_length = int.from_bytes(data[6:8], "big") if ten else data[3]
        if descriptor_length not in (0, 8) or header_size + descriptor_length > length:
            raise sense.invalid_field_in_parameters(6 if ten else 3)
        descriptor = (header_size, data[header_size : header_size + 8]) if descriptor_length else None
        offset = header_size + descriptor_length
        pages = []
        while offset < length:
            if offset + 2 > length:
                raise sense.parameter_list_length_error()
            code = data[offset] & 0x3F
            size = 2 + data[offset + 1]
            if offset + size > length:
                raise sense.parameter_list_length_error()
            pages.append((code, offset, data[offset : offset + size]))
            offset += size
        self.apply_mode_parameters(device_specific, descriptor, pages)

    @command(0x15, "MODE SELECT(6)", 6)
    def mode_select6(self, cdb, data_out, allocation):
        self.mode_select(cdb, data_out, ten=False)

    @command(0x55, "MODE SELECT(10)", 10)
    def mode_select10(self, cdb, data_out, allocation):
        self.mode_select(cdb, data_out, ten=True)

    # -- LOG SENSE framing ----------------------------------------------------

    def log_pages(self) -> dict[int, Callable[[], list[LogParameter] | bytes]]:
        """Page code -> function returning its parameters (or a raw page body)."""
        return {}

    @command(0x4D, "LOG SENSE", 10)
    def log_sense(self, cdb, data_out, allocation):
        page, subpage = cdb[2] & 0x3F, cdb[3]
        pointer = int.from_bytes(cdb[5:7], "big")
        length = int.from_bytes(cdb[7:9], "big")
        pages = self.log_pages()
        codes = sorted({0x00, *pages})
        if page == 0x00 and subpage == 0xFF:
            pairs = sorted({(0x00, 0x00), (0x00, 0xFF), *((c, 0) for c in codes)})
            body = b"".join(bytes(p) for p in pairs)
            head = bytes([0x40, 0xFF])
        elif subpage != 0x00:
            raise sense.invalid_field_in_cdb(3)
        elif page == 0x00:
            body, head = bytes(codes), bytes([0x00, 0x00])
        elif page in pages:
            produced = pages[page]()
            if isinstance(produced, (bytes, bytearray)):
                body = bytes(produced)
            else:
                body = b"".join(
                    p.code.to_bytes(2, "big") + bytes([p.control, len(p.value)]) + p.value
                    for p in produced
                    if p.code >= pointer
                )
            head = bytes([page, 0x00])
        else:
            raise sense.invalid_field_in_cdb(2, bit=5)
        response = head + len(body).to_bytes(2, "big") + body
        self.log_page_read(page, complete=length >= len(response))
        return response[:length]

    def log_page_read(self, page: int, complete: bool) -> None:
        """After a LOG SENSE of page; complete = the whole page fit in the allocation length
        (sg_logs first probes every page with 4 bytes: that must not count as reading it)."""

    @command(0x4C, "LOG SELECT", 10)
    def log_select(self, cdb, data_out, allocation):
        if cdb[1] & 0x02:
            self.reset_log_counters()

    def reset_log_counters(self) -> None:
        """LOG SELECT with PCR: clear what the device counts."""
