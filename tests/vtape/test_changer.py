"""The media changer at the CDB level: every command, every error path, client CDBs byte for byte.

The CDBs marked PBS, mtx or loaderinfo are the exact bytes of spec Appendix A; where a client
addresses elements of the library it was observed with, the address bytes are this library's.
Responses are decoded here by hand, independently of the construct layouts in vtape.changer.
"""
from __future__ import annotations

import dataclasses

import pytest

from vtape import operator
from vtape.library import CreateOptions, Library, LibraryError, create_library

GOOD, CHECK_CONDITION = 0x00, 0x02
MT, DT, IE, ST = 0x0001, 0x0100, 0x0300, 0x0400
STORAGE_SLOTS, IE_SLOTS, DRIVES = 16, 2, 2
NO_DATA = memoryview(b"")


def cdb(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def be(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


@pytest.fixture
def library(tmp_path):
    create_library(tmp_path / "lib", CreateOptions(drives=DRIVES, storage_slots=STORAGE_SLOTS,
                                                    import_export_slots=IE_SLOTS, cartridges=8,
                                                    cleaning_cartridges=1))
    lib = Library(tmp_path / "lib")
    yield lib
    lib.close()


class Device:
    """Runs CDBs on one in-process device, returning (status, sense, data) like the socket does."""

    def __init__(self, device):
        self.device = device

    def __call__(self, command: bytes | str, allocation: int = 0xFFFF, data_out: bytes = b""):
        raw = cdb(command) if isinstance(command, str) else command
        outcome = self.device.execute(raw, memoryview(data_out), allocation)
        return outcome.status, bytes(outcome.sense), bytes(outcome.data)[:allocation]


@pytest.fixture
def changer(library):
    return Device(library.changer)


def key_asc_ascq(sense: bytes) -> tuple[int, int, int]:
    assert sense[0] & 0x7F == 0x70 and len(sense) >= 18
    return sense[2] & 0x0F, sense[12], sense[13]


def assert_check(result, key: int, asc: int, ascq: int, field_pointer: int | None = None):
    status, sense, _ = result
    assert status == CHECK_CONDITION
    assert key_asc_ascq(sense) == (key, asc, ascq)
    if field_pointer is not None:
        assert sense[15] & 0x80 and sense[15] & 0x40, "SKSV and C/D set"
        assert be(sense[16:18]) == field_pointer


def good(result) -> bytes:
    status, sense, data = result
    assert status == GOOD, f"sense {sense.hex()}"
    return data


# -- READ ELEMENT STATUS decoding ------------------------------------------------------------

@dataclasses.dataclass
class Descriptor:
    type_code: int
    address: int
    full: bool
    impexp: bool
    access: bool
    exenab: bool
    inenab: bool
    svalid: bool
    medium_type: int
    source: int
    volume_tag: bytes | None
    identifier: bytes
    raw: bytes


@dataclasses.dataclass
class ElementStatus:
    first_address: int
    count: int
    byte_count: int
    pages: list[tuple[int, int, int, int]]      # type code, flags, descriptor length, byte count
    descriptors: list[Descriptor]


def decode_element_status(data: bytes) -> ElementStatus:
    first, count, byte_count = be(data[0:2]), be(data[2:4]), be(data[5:8])
    assert data[4] == 0
    pages, descriptors = [], []
    offset = 8
    while offset < len(data):
        type_code, flags, length, page_bytes = data[offset], data[offset + 1], be(data[offset + 2:offset + 4]), \
            be(data[offset + 5:offset + 8])
        pages.append((type_code, flags, length, page_bytes))
        offset += 8
        assert page_bytes % length == 0
        for start in range(offset, offset + page_bytes, length):
            raw = data[start:start + length]
            assert len(raw) == length
            tagged = bool(flags & 0x80)
            tag = raw[12:48] if tagged else None
            rest = raw[48:] if tagged else raw[12:]
            descriptors.append(Descriptor(
                type_code=type_code, address=be(raw[0:2]), full=bool(raw[2] & 0x01), impexp=bool(raw[2] & 0x02),
                access=bool(raw[2] & 0x08), exenab=bool(raw[2] & 0x10), inenab=bool(raw[2] & 0x20),
                svalid=bool(raw[9] & 0x80), medium_type=raw[9] & 0x07, source=be(raw[10:12]),
                volume_tag=tag, identifier=rest, raw=raw))
        offset += page_bytes
    assert offset - 8 == byte_count
    return ElementStatus(first, count, byte_count, pages, descriptors)


def element_status(changer, command: str) -> ElementStatus:
    return decode_element_status(good(changer(command)))


def storage(changer) -> dict[int, Descriptor]:
    return {d.address: d for d in element_status(changer, "b8 12 0000 03e8 00 00ffff 00 00").descriptors}


def element(changer, address: int) -> Descriptor:
    """The descriptor of one element, with its volume tag."""
    found = element_status(changer, f"b8 10 {address:04x} 0001 00 00ffff 00 00").descriptors
    assert found[0].address == address
    return found[0]


def label(descriptor: Descriptor) -> str | None:
    text = descriptor.volume_tag[:32]
    if text == bytes(32):
        return None
    return text.decode("ascii").rstrip(" ")


# -- INQUIRY, TUR, REQUEST SENSE, REPORT LUNS ---------------------------------------------------

def test_standard_inquiry_as_mtx_reads_it(changer, library):
    data = good(changer("12 00 00 00 38 00", allocation=56))      # mtx, tapeinfo, loaderinfo
    assert len(data) == 56
    assert data[0] == 0x08                                        # PDT 8, qualifier 0
    assert data[2] == 0x05 and data[3] == 0x02 and data[4] == 67
    assert data[6] & 0x08 == 0                                    # MCHNGR
    assert data[55] & 0x01                                        # barcode reader, read by loaderinfo
    ident = library.changer.identity
    assert data[8:16] == ident.vendor.encode().ljust(8)
    assert data[16:32] == ident.product.encode().ljust(16)
    assert data[32:36] == ident.revision.encode().ljust(4)
    assert data[38:50] == ident.serial.encode().ljust(12)


def test_full_inquiry_is_72_bytes_with_version_descriptors(changer):
    data = good(changer("12 00 00 00 ff 00"))
    assert len(data) == 72 == data[4] + 5
    assert [be(data[i:i + 2]) for i in range(58, 64, 2)] == [0x005C, 0x0300, 0x02FE]


def test_pbs_inquiry_36_bytes(changer):
    data = good(changer("12 00 00 00 24 00", allocation=36))
    assert len(data) == 36 and data[0] & 0x1F == 8


def test_vpd_serial_and_device_id(changer, library):
    serial = library.changer.identity.serial.encode()
    page80 = good(changer("12 01 80 00 fc 00"))
    assert page80[:2] == b"\x08\x80" and page80[4:4 + page80[3]] == serial
    page83 = good(changer("12 01 83 00 fc 00"))
    assert page83[4:8] == bytes([0x02, 0x01, 0x00, 34]) and page83[8 + 24:8 + 34] == serial.ljust(10)
    assert good(changer("12 01 00 00 fc 00"))[4:] == bytes([0x00, 0x80, 0x83])


def test_inquiry_bad_fields(changer):
    assert_check(changer("12 00 80 00 ff 00"), 5, 0x24, 0x00, field_pointer=2)   # page without EVPD
    assert_check(changer("12 01 b0 00 ff 00"), 5, 0x24, 0x00, field_pointer=2)   # unsupported VPD
    assert_check(changer("12 02 00 00 ff 00"), 5, 0x24, 0x00, field_pointer=1)   # CMDDT


def test_test_unit_ready_report_luns_request_sense(changer):
    assert good(changer("00 00 00 00 00 00", allocation=0)) == b""
    assert good(changer("a0 00 00 00 00 00 00 00 00 10 00 00")) == bytes([0, 0, 0, 8]) + bytes(12)
    sense = good(changer("03 00 00 00 fc 00"))
    assert sense[0] == 0x70 and key_asc_ascq(sense) == (0, 0, 0)


def test_unknown_opcode_is_invalid_command_operation_code(changer):
    assert_check(changer("0a 00 00 00 01 00"), 5, 0x20, 0x00)    # WRITE(6): a drive command
    assert_check(changer("08 00 00 00 01 00"), 5, 0x20, 0x00)


def test_report_supported_operation_codes_lists_the_changer_commands(changer):
    data = good(changer("a3 0c 00 00 00 00 00 00 20 00 00 00"))
    length = be(data[0:4])
    table = {data[i]: be(data[i + 6:i + 8]) for i in range(4, 4 + length, 8)}
    expected = {0x00: 6, 0x03: 6, 0x07: 6, 0x12: 6, 0x15: 6, 0x1A: 6, 0x1B: 6, 0x1E: 6, 0x2B: 10,
                0x4C: 10, 0x4D: 10, 0x55: 10, 0x5A: 10, 0xA0: 12, 0xA3: 12, 0xA5: 12, 0xA6: 12,
                0xB8: 12, 0xE7: 10}
    assert table == expected
    one = good(changer("a3 0c 01 b8 00 00 00 00 20 00 00 00"))
    assert one[1] & 0x07 == 0x03 and be(one[2:4]) == 12 and one[4] == 0xB8


# -- MODE SENSE ---------------------------------------------------------------------------------

def test_element_address_assignment_page_as_pbs_and_mtx_ask(changer):
    for command, allocation in (("1a 08 1d 00 ff 00", 255), ("1a 08 1d 00 88 00", 136)):
        data = good(changer(command, allocation=allocation))
        assert len(data) == 24
        assert data[0] == 23 and data[3] == 0                      # PBS checks the 23
        page = data[4:]
        assert page[0] == 0x1D and page[1] == 0x12
        assert [be(page[i:i + 2]) for i in range(2, 18, 2)] == [MT, 1, ST, STORAGE_SLOTS, IE, IE_SLOTS, DT, DRIVES]
        assert page[18:20] == b"\0\0"


def test_mode_sense_never_has_a_block_descriptor(changer):
    data6 = good(changer("1a 00 1d 00 ff 00"))                      # DBD=0
    assert data6[0] == 23 and data6[3] == 0 and data6[4] == 0x1D
    data10 = good(changer("5a 00 1d 00 00 00 00 10 00 00"))
    assert len(data10) == 28 and be(data10[0:2]) == 26 and be(data10[6:8]) == 0 and data10[8] == 0x1D


def test_transport_geometry_and_device_capabilities_for_loaderinfo(changer):
    geometry = good(changer("1a 08 1e 00 ff 00"))
    assert geometry == bytes([7, 0, 0, 0, 0x1E, 0x02, 0x00, 0x00])
    capabilities = good(changer("1a 08 1f 00 ff 00"))
    assert capabilities[0] == 23
    page = capabilities[4:]
    assert page[0] == 0x1F and page[1] == 0x12 and len(page) == 20
    assert page[2] == 0x0E                                          # storage in ST, IE, DT
    assert page[3] & 0x02                                           # volume tag reader
    assert list(page[4:8]) == [0x00, 0x0E, 0x0E, 0x0E]              # MT, ST, IE, DT -> ST/IE/DT
    assert list(page[12:16]) == [0x00, 0x0E, 0x0E, 0x0E]


def test_mode_sense_all_pages_and_page_controls(changer):
    everything = good(changer("5a 08 3f 00 00 00 00 10 00 00"))
    codes, offset = [], 8
    while offset < len(everything):
        codes.append(everything[offset])
        offset += 2 + everything[offset + 1]
    assert codes == [0x1D, 0x1E, 0x1F] and be(everything[0:2]) == len(everything) - 2
    changeable = good(changer("1a 08 5d 00 ff 00"))                 # PC=1
    assert changeable[4:6] == b"\x1d\x12" and changeable[6:] == bytes(18)
    default = good(changer("1a 08 9d 00 ff 00"))                    # PC=2
    assert default == good(changer("1a 08 1d 00 ff 00"))
    assert_check(changer("1a 08 dd 00 ff 00"), 5, 0x39, 0x00)       # PC=3 saved
    assert_check(changer("1a 08 0f 00 ff 00"), 5, 0x24, 0x00, field_pointer=2)
    assert_check(changer("1a 08 1d 01 ff 00"), 5, 0x24, 0x00, field_pointer=3)


def test_mode_sense_honours_allocation(changer):
    assert good(changer("1a 08 1d 00 04 00", allocation=4)) == bytes([23, 0, 0, 0])


def test_mode_select_cannot_change_changer_pages(changer):
    parameters = bytes(4) + good(changer("1a 08 1d 00 ff 00"))[4:]
    assert_check(changer("15 10 00 00 18 00", data_out=parameters), 5, 0x26, 0x00)
    assert good(changer("15 10 00 00 00 00")) == b""                # empty parameter list


# -- READ ELEMENT STATUS -----------------------------------------------------------------------

def test_pbs_storage_query_with_volume_tags(changer, library):
    status = element_status(changer, "b8 12 0000 03e8 00 00ffff 00 00")
    assert status.first_address == ST and status.count == STORAGE_SLOTS
    assert status.pages == [(2, 0x80, 52, 52 * STORAGE_SLOTS)]
    assert status.byte_count == 8 + 52 * STORAGE_SLOTS
    addresses = [d.address for d in status.descriptors]
    assert addresses == list(range(ST, ST + STORAGE_SLOTS))
    by_slot = {d.address: d for d in status.descriptors}
    for n in range(8):
        d = by_slot[ST + n]
        assert d.full and d.access and not d.svalid and d.medium_type == 1
        assert label(d) == f"VT{n + 1:04d}L8" and d.volume_tag[32:36] == bytes(4)
        assert d.identifier == bytes(4)
    cleaning = by_slot[ST + STORAGE_SLOTS - 1]
    assert cleaning.full and cleaning.medium_type == 2 and label(cleaning).startswith("CLN")
    empty = by_slot[ST + 8]
    assert not empty.full and empty.access and empty.volume_tag == bytes(36) and empty.raw[9] == 0


def test_pbs_import_export_query(changer):
    status = element_status(changer, "b8 13 0000 03e8 00 00ffff 00 00")
    assert status.first_address == IE and status.count == IE_SLOTS
    assert status.pages == [(3, 0x80, 52, 52 * IE_SLOTS)]
    for d in status.descriptors:
        assert (d.full, d.impexp, d.access, d.exenab, d.inenab) == (False, False, True, True, True)


def test_pbs_drive_and_transport_queries(changer):
    drives = element_status(changer, "b8 14 0000 03e8 00 00ffff 00 00")
    assert [d.address for d in drives.descriptors] == [DT, DT + 1]
    assert drives.pages == [(4, 0x80, 52, 104)]
    assert all(d.access and not d.full for d in drives.descriptors)
    transport = element_status(changer, "b8 11 0000 03e8 00 00ffff 00 00")
    assert transport.count == 1 and transport.pages == [(1, 0x80, 52, 52)]
    assert transport.descriptors[0].address == MT and transport.descriptors[0].raw[2] == 0


def test_pbs_dvcid_query_carries_the_drive_vpd_serial(changer, library):
    status = element_status(changer, "b8 04 0000 03e8 01 00ffff 00 00")
    assert status.pages == [(4, 0x00, 50, 100)]
    for drive, d in zip(library.drives, status.descriptors):
        assert d.identifier[:4] == bytes([0x02, 0x01, 0x00, 34])
        identifier = d.identifier[4:]
        assert len(identifier) == 34
        vpd80 = good(Device(drive)("12 01 80 00 fc 00"))
        serial = vpd80[4:4 + vpd80[3]]
        assert identifier[24:34] == serial.ljust(10)
        assert identifier[:8] == drive.identity.vendor.encode().ljust(8)
        assert identifier[8:24] == drive.identity.product.encode().ljust(16)


def test_dvcid_with_volume_tag_is_86_bytes(changer, library):
    status = element_status(changer, "b8 14 0000 03e8 01 00ffff 00 00")
    assert status.pages == [(4, 0x80, 86, 172)]
    d = status.descriptors[1]
    assert d.volume_tag == bytes(36) and d.identifier[4:][24:34] == library.drives[1].identity.serial.encode().ljust(10)


def test_no_elements_of_a_type_gives_the_bare_header(tmp_path):
    create_library(tmp_path / "lib", CreateOptions(drives=1, storage_slots=4, import_export_slots=0, cartridges=2,
                                                    cleaning_cartridges=0))
    lib = Library(tmp_path / "lib")
    try:
        data = good(Device(lib.changer)("b8 13 0000 03e8 00 00ffff 00 00"))
        assert len(data) == 8 and be(data[2:4]) == 0 and be(data[5:8]) == 0
        page = good(Device(lib.changer)("1a 08 1d 00 ff 00"))[4:]
        assert be(page[12:14]) == 0
    finally:
        lib.close()


def test_start_address_past_every_element_gives_the_bare_header(changer):
    data = good(changer("b8 12 ffff 03e8 00 00ffff 00 00"))
    assert len(data) == 8 and be(data[2:4]) == 0 and be(data[5:8]) == 0


def test_mtx_status_sequence(changer):
    # mtx asks for ST from the first ST address with count = number of ST, allocation 376 (0x178).
    request = f"b8 12 {ST:04x} {STORAGE_SLOTS:04x} 00 000178 00 00"
    status, _, data = changer(request, allocation=376)
    assert status == GOOD and len(data) == 376                     # truncated to the allocation
    byte_count = be(data[5:8])
    assert byte_count == 8 + 52 * STORAGE_SLOTS                    # the whole report, not truncated
    assert be(data[2:4]) == STORAGE_SLOTS
    assert byte_count + 8 > 376                                    # so mtx re-issues with a bigger allocation
    allocation = byte_count + 8
    again = good(changer(f"b8 12 {ST:04x} {STORAGE_SLOTS:04x} 00 {allocation:06x} 00 00", allocation=allocation))
    assert len(again) == allocation and again[:376] == data
    assert len(decode_element_status(again).descriptors) == STORAGE_SLOTS
    # then DT (count 1 each request) and MT
    drive = element_status(changer, f"b8 14 {DT:04x} 0001 00 000178 00 00")
    assert [d.address for d in drive.descriptors] == [DT]
    transport = element_status(changer, f"b8 11 {MT:04x} 0001 00 000178 00 00")
    assert [d.address for d in transport.descriptors] == [MT]


def test_lun_bits_in_byte_1_are_ignored(changer):
    assert good(changer("b8 32 0000 03e8 00 00ffff 00 00")) == good(changer("b8 12 0000 03e8 00 00ffff 00 00"))
    assert good(changer("b8 f4 0000 03e8 00 00ffff 00 00")) == good(changer("b8 14 0000 03e8 00 00ffff 00 00"))


def test_voltag_cleared_gives_16_byte_descriptors(changer):
    status = element_status(changer, "b8 02 0000 03e8 00 00ffff 00 00")
    assert status.pages == [(2, 0x00, 16, 16 * STORAGE_SLOTS)]
    assert status.descriptors[0].full and status.descriptors[0].identifier == bytes(4)


def test_all_types_one_page_per_type_run(changer):
    status = element_status(changer, "b8 10 0000 ffff 00 00ffff 00 00")
    assert status.count == 1 + DRIVES + IE_SLOTS + STORAGE_SLOTS
    assert [(p[0], p[2]) for p in status.pages] == [(1, 52), (4, 52), (3, 52), (2, 52)]
    assert [p[3] for p in status.pages] == [52, 52 * DRIVES, 52 * IE_SLOTS, 52 * STORAGE_SLOTS]
    addresses = [d.address for d in status.descriptors]
    assert addresses == sorted(addresses) and addresses[0] == MT
    # with DVCID only the drive page grows
    with_ids = element_status(changer, "b8 10 0000 ffff 01 00ffff 00 00")
    assert [(p[0], p[2]) for p in with_ids.pages] == [(1, 52), (4, 86), (3, 52), (2, 52)]
    without_tags = element_status(changer, "b8 00 0000 ffff 01 00ffff 00 00")
    assert [(p[0], p[2]) for p in without_tags.pages] == [(1, 16), (4, 50), (3, 16), (2, 16)]


def test_start_address_and_count_select_across_types(changer):
    status = element_status(changer, f"b8 10 {DT + 1:04x} 0003 00 00ffff 00 00")
    assert status.first_address == DT + 1 and status.count == 3
    assert [d.address for d in status.descriptors] == [DT + 1, IE, IE + 1]
    assert [p[0] for p in status.pages] == [4, 3]
    middle = element_status(changer, f"b8 12 {ST + 2:04x} 0003 00 00ffff 00 00")
    assert [d.address for d in middle.descriptors] == [ST + 2, ST + 3, ST + 4]
    # a start address between elements begins at the next element of the type
    between = element_status(changer, "b8 12 0302 0002 00 00ffff 00 00")
    assert [d.address for d in between.descriptors] == [ST, ST + 1]


def test_number_of_elements_zero_means_no_limit(changer):
    assert element_status(changer, "b8 12 0000 0000 00 00ffff 00 00").count == STORAGE_SLOTS


def test_curdata_changes_nothing(changer):
    assert good(changer("b8 12 0000 03e8 02 00ffff 00 00")) == good(changer("b8 12 0000 03e8 00 00ffff 00 00"))


def test_allocation_truncation_keeps_the_full_counts(changer):
    header = good(changer("b8 10 0000 ffff 00 000008 00 00", allocation=8))
    assert len(header) == 8
    assert be(header[2:4]) == 1 + DRIVES + IE_SLOTS + STORAGE_SLOTS
    assert be(header[5:8]) == 4 * 8 + 52 * (1 + DRIVES + IE_SLOTS + STORAGE_SLOTS)
    assert good(changer("b8 10 0000 ffff 00 000000 00 00")) == b""
    # the CDB allocation length limits the data even when the transport buffer is bigger
    assert len(good(changer("b8 12 0000 ffff 00 00000c 00 00", allocation=4096))) == 12


def test_invalid_element_type_code(changer):
    status, sense, _ = changer("b8 15 0000 03e8 00 00ffff 00 00")
    assert_check((status, sense, b""), 5, 0x24, 0x00, field_pointer=1)
    # not the combination that makes mtx retry with an 8-byte allocation (C/D=1, bit pointer 7)
    assert not (sense[15] & 0x08 and sense[15] & 0x07 == 7)


# -- MOVE MEDIUM -------------------------------------------------------------------------------

def move(changer, source: int, destination: int, transport: int = MT, control: int = 0):
    """The PBS / mtx MOVE MEDIUM layout: A5 00 <MT> <src> <dst> 00 00 00 <control>."""
    return changer(f"a5 00 {transport:04x} {source:04x} {destination:04x} 00 00 00 {control:02x}", allocation=0)


def test_mtx_load_cdb_decoded(changer):
    # Appendix A: "mtx load 1 0" = a5 00 0001 0400 0010 00 00 00 00 on the observed library whose
    # first drive sat at 0x0010; this library has no element 0x0010 ...
    assert_check(changer("a5 00 00 01 04 00 00 10 00 00 00 00", allocation=0), 5, 0x21, 0x01, field_pointer=6)
    # ... and with this library's first drive the same bytes load slot 1 into drive 0.
    good(changer("a5 00 00 01 04 00 01 00 00 00 00 00", allocation=0))
    assert label(element(changer, DT)) == "VT0001L8"


def test_move_slot_to_drive_to_slot_tracks_the_source(changer, library):
    good(move(changer, ST + 2, DT + 1))
    loaded = element(changer, DT + 1)
    assert loaded.full and loaded.svalid and loaded.source == ST + 2 and label(loaded) == "VT0003L8"
    assert loaded.medium_type == 1
    assert not element(changer, ST + 2).full
    drive = library.drives[1]
    assert drive.cartridge.barcode == "VT0003L8"
    # the drive announces the new medium once
    assert_check(Device(drive)("00 00 00 00 00 00", allocation=0), 6, 0x28, 0x00)
    # back to another free slot: the DT's source was the home slot, and the new slot remembers it
    good(move(changer, DT + 1, ST + 10))
    back = element(changer, ST + 10)
    assert back.full and back.svalid and back.source == ST + 2 and label(back) == "VT0003L8"
    gone = element(changer, DT + 1)
    assert not gone.full and not gone.svalid and gone.volume_tag == bytes(36)
    assert drive.cartridge is None


def test_moving_between_slots_records_the_source(changer):
    good(move(changer, ST, ST + 9))
    d = element(changer, ST + 9)
    assert d.svalid and d.source == ST and label(d) == "VT0001L8"


def test_pbs_transport_address_zero_is_the_default_transport(changer):
    good(changer(f"a5 00 0000 {ST:04x} {DT:04x} 00 00 00 00", allocation=0))
    assert element(changer, DT).full


def test_threaded_drive_is_unloaded_by_move(changer, library):
    good(move(changer, ST, DT))
    drive = library.drives[0]
    assert drive.threaded
    good(move(changer, DT, ST))
    assert drive.cartridge is None and not drive.threaded
    assert element(changer, ST).full
    tur = Device(drive)
    assert_check(tur("00 00 00 00 00 00", allocation=0), 6, 0x28, 0x00)     # from the load
    assert_check(tur("00 00 00 00 00 00", allocation=0), 2, 0x3A, 0x00)


def test_drive_prevent_blocks_move_out_of_it(changer, library):
    good(move(changer, ST, DT))
    drive = Device(library.drives[0])
    good(drive("03 00 00 00 fc 00"))                               # clear the load UA
    good(drive("1e 00 00 00 01 00", allocation=0))                 # pmt lock
    assert_check(move(changer, DT, ST), 5, 0x53, 0x02)
    assert element(changer, DT).full and not element(changer, ST).full
    assert library.drives[0].cartridge.barcode == "VT0001L8"
    good(drive("1e 00 00 00 00 00", allocation=0))
    good(move(changer, DT, ST))


def test_move_errors(changer, library):
    assert_check(move(changer, ST, DT, transport=0x0002), 5, 0x21, 0x01, field_pointer=2)
    assert_check(move(changer, ST, DT, transport=ST + 1), 5, 0x21, 0x01, field_pointer=2)
    assert_check(move(changer, 0x0999, DT), 5, 0x21, 0x01, field_pointer=4)
    assert_check(move(changer, MT, DT), 5, 0x21, 0x01, field_pointer=4)
    assert_check(move(changer, ST, 0x0500), 5, 0x21, 0x01, field_pointer=6)
    assert_check(move(changer, ST, MT), 5, 0x21, 0x01, field_pointer=6)
    assert_check(move(changer, ST + 8, DT), 5, 0x3B, 0x0E)          # empty source
    assert_check(move(changer, ST, ST + 1), 5, 0x3B, 0x0D)          # full destination
    assert_check(changer(f"a5 00 {MT:04x} {ST:04x} {DT:04x} 00 00 01 00", allocation=0), 5, 0x24, 0x00,
                 field_pointer=10)                                  # INVERT
    assert label(element(changer, ST)) == "VT0001L8" and not element(changer, DT).full


def test_move_to_itself_is_a_no_op(changer):
    before = element(changer, ST)
    good(move(changer, ST, ST))
    assert element(changer, ST) == before


def test_mtx_eepos_bits_in_the_control_byte_are_ignored(changer):
    good(move(changer, ST, IE, control=0xC0))
    assert element(changer, IE).full


def test_incompatible_medium_refused_by_the_drive(changer, library):
    library.add_cartridge("OLD001L5", slot_address=ST + 8)
    assert_check(move(changer, ST + 8, DT), 5, 0x30, 0x00)
    assert element(changer, ST + 8).full and not element(changer, DT).full
    good(move(changer, ST + 8, ST + 9))                             # slots take anything


def test_cleaning_cartridge_round_trip(changer, library):
    cln = ST + STORAGE_SLOTS - 1
    barcode = label(element(changer, cln))
    cycles = library.cartridge(barcode).meta["cleaning_cycles_left"]
    good(move(changer, cln, DT))
    loaded = element(changer, DT)
    assert loaded.medium_type == 2 and loaded.source == cln
    assert library.cartridge(barcode).meta["cleaning_cycles_left"] == cycles - 1
    good(move(changer, DT, cln))                                    # PBS moves it straight back
    assert element(changer, cln).full


def test_moves_survive_a_restart(changer, library, tmp_path):
    good(move(changer, ST + 1, DT))
    good(move(changer, ST + 2, ST + 11))
    library.close()
    reopened = Library(tmp_path / "lib")
    try:
        again = Device(reopened.changer)
        drive = element(again, DT)
        assert label(drive) == "VT0002L8" and drive.svalid and drive.source == ST + 1
        assert label(element(again, ST + 11)) == "VT0003L8"
        assert not element(again, ST + 1).full
    finally:
        reopened.close()


# -- EXCHANGE MEDIUM ---------------------------------------------------------------------------

def exchange(changer, source: int, first: int, second: int, flags: int = 0):
    return changer(f"a6 00 {MT:04x} {source:04x} {first:04x} {second:04x} {flags:02x} 00", allocation=0)


def test_exchange_swaps_two_slots(changer):
    good(exchange(changer, ST, ST + 1, ST))                         # mtx exchange 1 2
    first, second = element(changer, ST), element(changer, ST + 1)
    assert label(first) == "VT0002L8" and first.source == ST + 1 and first.svalid
    assert label(second) == "VT0001L8" and second.source == ST


def test_exchange_into_a_third_element(changer):
    good(exchange(changer, ST, ST + 1, ST + 9))
    assert not element(changer, ST).full
    assert label(element(changer, ST + 1)) == "VT0001L8"
    assert label(element(changer, ST + 9)) == "VT0002L8"


def test_exchange_with_a_loaded_drive(changer, library):
    good(move(changer, ST, DT))
    good(exchange(changer, ST + 1, DT, ST))
    drive = element(changer, DT)
    assert label(drive) == "VT0002L8" and drive.source == ST + 1
    home = element(changer, ST)
    assert label(home) == "VT0001L8" and home.source == ST
    assert not element(changer, ST + 1).full
    assert library.drives[0].cartridge.barcode == "VT0002L8"


def test_exchange_from_a_drive_swaps_with_a_slot(changer, library):
    good(move(changer, ST, DT))
    good(exchange(changer, DT, ST + 1, DT))
    slot, drive = element(changer, ST + 1), element(changer, DT)
    assert label(slot) == "VT0001L8" and slot.source == ST                  # its home, not the drive
    assert label(drive) == "VT0002L8" and drive.source == ST + 1
    assert library.drives[0].cartridge.barcode == "VT0002L8" and library.drives[0].threaded


def test_exchange_with_the_source_as_first_destination_moves_to_the_second(changer):
    good(exchange(changer, ST, ST, ST + 9))
    assert not element(changer, ST).full and label(element(changer, ST + 9)) == "VT0001L8"


def test_exchange_errors(changer, library):
    assert_check(exchange(changer, ST + 8, ST, ST + 8), 5, 0x3B, 0x0E)          # source empty
    assert_check(exchange(changer, ST, ST + 8, ST), 5, 0x3B, 0x0E)              # first destination empty
    assert_check(exchange(changer, ST, ST + 1, ST + 2), 5, 0x3B, 0x0D)          # second destination full
    assert_check(exchange(changer, 0x0999, ST, ST), 5, 0x21, 0x01, field_pointer=4)
    assert_check(exchange(changer, ST, MT, ST), 5, 0x21, 0x01, field_pointer=6)
    assert_check(exchange(changer, ST, ST + 1, 0x0999), 5, 0x21, 0x01, field_pointer=8)
    assert_check(exchange(changer, ST, ST + 1, ST, flags=0x02), 5, 0x24, 0x00, field_pointer=10)  # INV1
    assert_check(exchange(changer, ST, ST + 1, ST, flags=0x01), 5, 0x24, 0x00, field_pointer=10)  # INV2
    assert_check(changer(f"a6 00 0005 {ST:04x} {ST + 1:04x} {ST:04x} 00 00", allocation=0), 5, 0x21, 0x01,
                 field_pointer=2)
    assert [label(element(changer, ST + n)) for n in range(3)] == ["VT0001L8", "VT0002L8", "VT0003L8"]


def test_exchange_refused_while_the_drive_prevents_removal(changer, library):
    good(move(changer, ST, DT))
    drive = Device(library.drives[0])
    good(drive("03 00 00 00 fc 00"))
    good(drive("1e 00 00 00 01 00", allocation=0))
    assert_check(exchange(changer, ST + 1, DT, ST), 5, 0x53, 0x02)
    assert label(element(changer, DT)) == "VT0001L8" and label(element(changer, ST + 1)) == "VT0002L8"
    assert library.drives[0].cartridge.barcode == "VT0001L8"


def test_exchange_refuses_incompatible_medium_for_the_drive(changer, library):
    library.add_cartridge("OLD001L5", slot_address=ST + 8)
    good(move(changer, ST, DT))
    assert_check(exchange(changer, ST + 8, DT, ST), 5, 0x30, 0x00)
    assert label(element(changer, DT)) == "VT0001L8" and library.drives[0].cartridge.barcode == "VT0001L8"


# -- POSITION, INITIALIZE, START STOP ------------------------------------------------------------

def test_position_to_element(changer):
    good(changer(f"2b 00 {MT:04x} {ST + 3:04x} 00 00 00 00", allocation=0))      # mtx position 4
    good(changer(f"2b 00 0000 {DT:04x} 00 00 00 00", allocation=0))
    assert_check(changer(f"2b 00 {MT:04x} 0999 00 00 00 00", allocation=0), 5, 0x21, 0x01, field_pointer=4)
    assert_check(changer(f"2b 00 {MT:04x} {MT:04x} 00 00 00 00", allocation=0), 5, 0x21, 0x01, field_pointer=4)
    assert_check(changer(f"2b 00 0002 {ST:04x} 00 00 00 00", allocation=0), 5, 0x21, 0x01, field_pointer=2)
    assert_check(changer(f"2b 00 {MT:04x} {ST:04x} 00 00 01 00", allocation=0), 5, 0x24, 0x00, field_pointer=8)


def test_initialize_element_status(changer):
    good(changer("07 00 00 00 00 00", allocation=64))               # pmtx inventory, 64-byte buffer
    good(changer(f"e7 01 {ST:04x} 0000 0004 0000", allocation=0))  # with range
    good(changer("e7 00 0999 0000 0004 0000", allocation=0))        # RANGE=0: the address is not used
    assert_check(changer("e7 01 0999 0000 0004 0000", allocation=0), 5, 0x21, 0x01, field_pointer=2)
    assert element_status(changer, "b8 12 0000 03e8 00 00ffff 00 00").count == STORAGE_SLOTS


def test_a_stale_inventory_reports_full_slots_empty_until_initialize_element_status(changer, library):
    full = {address for address, d in storage(changer).items() if d.full}
    assert len(full) == 9                                            # VT0001L8..VT0008L8 and CLN001L1
    assert operator.fault(library, "changer", stale_inventory=True)["stale_slots"] == [1, 2, 3, 4, 5, 6, 7, 8, 16]
    stale = storage(changer)
    assert not any(d.full or label(d) for d in stale.values())
    assert library.elements_of("storage")[0].barcode == "VT0001L8"  # the cartridges did not move
    good(changer(f"e7 01 {ST:04x} 0000 0002 0000", allocation=0))  # a rescan of slots 1-2 only
    assert {a for a, d in storage(changer).items() if d.full} == {ST, ST + 1}
    good(changer("07 00 00 00 00 00", allocation=0))
    assert {a for a, d in storage(changer).items() if d.full} == full
    assert label(storage(changer)[ST]) == "VT0001L8"


def test_start_stop_is_accepted(changer):
    for command in ("1b 00 00 00 02 00", "1b 00 00 00 03 00", "1b 00 00 00 00 00"):    # mtx eject
        good(changer(command, allocation=0))


# -- PREVENT ALLOW, the operator, unit attention ------------------------------------------------

def test_operator_insert_raises_unit_attention_and_sets_impexp(changer, library):
    library.add_cartridge("NEW001L8", shelf=True)
    slot = library.insert("NEW001L8")
    assert slot.address == IE
    # INQUIRY passes a pending unit attention; the next other command reports it once
    good(changer("12 00 00 00 24 00"))
    assert_check(changer("b8 13 0000 03e8 00 00ffff 00 00"), 6, 0x28, 0x01)
    imported = element(changer, IE)
    assert imported.full and imported.impexp and imported.access and imported.exenab and imported.inenab
    assert label(imported) == "NEW001L8" and not imported.svalid
    # imported into the library: IMPEXP goes, the slot remembers the mail slot
    good(move(changer, IE, ST + 8))
    assert element(changer, ST + 8).source == IE
    good(move(changer, ST + 8, IE + 1))                             # export
    exported = element(changer, IE + 1)
    assert exported.full and not exported.impexp
    library.remove("NEW001L8")
    assert key_asc_ascq(good(changer("03 00 00 00 fc 00"))) == (6, 0x28, 0x01)
    assert not element(changer, IE + 1).full


def test_request_sense_reports_and_clears_the_unit_attention(changer, library):
    library.add_cartridge("NEW002L8", shelf=True)
    library.insert("NEW002L8")
    data = good(changer("03 00 00 00 fc 00"))
    assert key_asc_ascq(data) == (6, 0x28, 0x01)
    good(changer("00 00 00 00 00 00", allocation=0))


def test_prevent_locks_the_import_export_slots(changer, library):
    library.add_cartridge("NEW003L8", shelf=True)
    good(changer("1e 00 00 00 01 00", allocation=0))
    with pytest.raises(LibraryError, match="locked"):
        library.insert("NEW003L8")
    good(move(changer, ST, IE))                                     # the robot still reaches them
    with pytest.raises(LibraryError, match="locked"):
        library.remove("VT0001L8")
    good(changer("1e 00 00 00 00 00", allocation=0))
    library.remove("VT0001L8")
    library.insert("NEW003L8")
    assert_check(changer("00 00 00 00 00 00", allocation=0), 6, 0x28, 0x01)
    assert_check(changer("1e 00 00 00 02 00", allocation=0), 5, 0x24, 0x00, field_pointer=4)


# -- LOG SENSE ----------------------------------------------------------------------------------

def test_log_sense_supported_pages(changer):
    probe = good(changer("4d 00 40 00 00 00 00 00 04 00", allocation=4))     # sg_logs probe
    assert probe == bytes([0x00, 0x00, 0x00, 0x02])
    assert good(changer("4d 00 40 00 00 00 00 00 08 00")) == bytes([0, 0, 0, 2, 0x00, 0x2E])
    all_subpages = good(changer("4d 00 40 ff 00 00 00 00 04 00", allocation=4))
    assert all_subpages[:2] == bytes([0x40, 0xFF])
    assert_check(changer("4d 00 51 00 00 00 00 20 00 00"), 5, 0x24, 0x00, field_pointer=2)


def test_log_sense_tapealert(changer, library):
    page = good(changer("4d 00 2e 00 00 00 00 08 00 00"))
    assert page[0] == 0x2E and be(page[2:4]) == 64 * 5
    assert [be(page[i:i + 2]) for i in range(4, len(page), 5)] == list(range(1, 65))
    assert all(page[i + 3] == 1 and page[i + 4] == 0 for i in range(4, len(page), 5))
    library.changer.tape_alerts.add(0x0E)
    page = good(changer("4d 00 2e 00 00 00 00 08 00 00"))
    flags = {be(page[i:i + 2]) for i in range(4, len(page), 5) if page[i + 4]}
    assert flags == {0x0E}


# -- over the socket of a real daemon --------------------------------------------------------------

class SocketDevice:
    """Runs CDBs on a device socket; the same (status, sense, data) triple as Device."""

    def __init__(self, client):
        self.client = client
        self.last_residual = None

    def __call__(self, command: bytes | str, allocation: int = 0xFFFF, data_out: bytes = b""):
        raw = cdb(command) if isinstance(command, str) else command
        reply = self.client.execute(raw, data_out, allocation)
        self.last_residual = reply.residual
        return reply.status, bytes(reply.sense), bytes(reply.data)


@pytest.fixture
def served(vtape_library):
    changer_client = vtape_library.client("changer")
    drive_clients = [vtape_library.client(f"drive{i}") for i in range(DRIVES)]
    yield vtape_library, SocketDevice(changer_client), [SocketDevice(c) for c in drive_clients]
    for client in (changer_client, *drive_clients):
        client.close()


@pytest.mark.vtape
def test_socket_pbs_status_load_and_unload(served):
    lib, changer, drives = served
    assert good(changer("12 00 00 00 24 00", allocation=36))[0] == 0x08
    assert good(changer("1a 08 1d 00 ff 00", allocation=255))[0] == 23
    queries = {code: element_status(changer, f"b8 {code:02x} 0000 03e8 00 00ffff 00 00")
               for code in (0x12, 0x13, 0x14, 0x11)}
    assert [queries[code].count for code in (0x12, 0x13, 0x14, 0x11)] == [STORAGE_SLOTS, IE_SLOTS, DRIVES, 1]
    serials = element_status(changer, "b8 04 0000 03e8 01 00ffff 00 00")
    for drive, d in zip(drives, serials.descriptors):
        vpd80 = good(drive("12 01 80 00 fc 00"))
        assert d.identifier[4 + 24:4 + 34] == vpd80[4:4 + vpd80[3]].ljust(10)
    # pmtx load 3 into drive 1, then unload to its home slot without ejecting first
    good(changer(f"a5 00 {MT:04x} {ST + 2:04x} {DT + 1:04x} 00 00 00 00", allocation=64))
    loaded = element(changer, DT + 1)
    assert loaded.svalid and loaded.source == ST + 2 and label(loaded) == "VT0003L8"
    assert_check(drives[1]("00 00 00 00 00 00", allocation=0), 6, 0x28, 0x00)
    good(drives[1]("00 00 00 00 00 00", allocation=0))
    good(changer(f"a5 00 {MT:04x} {DT + 1:04x} {loaded.source:04x} 00 00 00 00", allocation=64))
    assert label(element(changer, ST + 2)) == "VT0003L8" and not element(changer, DT + 1).full
    assert_check(drives[1]("00 00 00 00 00 00", allocation=0), 2, 0x3A, 0x00)
    assert lib.control("status")["drives"][1]["barcode"] is None


@pytest.mark.vtape
def test_socket_mtx_reissues_after_truncation(served):
    _, changer, _ = served
    status, _, data = changer(f"b8 12 {ST:04x} {STORAGE_SLOTS:04x} 00 000178 00 00", allocation=376)
    assert status == GOOD and len(data) == 376 and changer.last_residual == 0
    needed = be(data[5:8]) + 8
    assert needed > 376
    full = good(changer(f"b8 12 {ST:04x} {STORAGE_SLOTS:04x} 00 {needed:06x} 00 00", allocation=needed))
    assert len(full) == needed and [d.address for d in decode_element_status(full).descriptors] == \
        list(range(ST, ST + STORAGE_SLOTS))
    # a client buffer larger than the report: the short transfer shows as residual
    small = good(changer("b8 11 0000 0001 00 000400 00 00", allocation=1024))
    assert len(small) == 8 + 8 + 52 and changer.last_residual == 1024 - len(small)


@pytest.mark.vtape
def test_socket_operator_insert_remove_and_prevent(served):
    lib, changer, _ = served
    assert lib.control("add-cartridge", barcode="NEW001L8", shelf=True)["ok"]
    assert lib.control("insert", barcode="NEW001L8")["ok"]
    assert_check(changer("b8 13 0000 03e8 00 00ffff 00 00"), 6, 0x28, 0x01)
    imported = element(changer, IE)
    assert imported.impexp and label(imported) == "NEW001L8"
    good(changer("1e 00 00 00 01 00", allocation=0))
    refused = lib.control("remove", barcode="NEW001L8")
    assert not refused["ok"] and "locked" in refused["error"]
    assert element(changer, IE).full
    good(changer("1e 00 00 00 00 00", allocation=0))
    assert lib.control("remove", barcode="NEW001L8")["ok"]
    assert_check(changer("00 00 00 00 00 00", allocation=0), 6, 0x28, 0x01)
    assert not element(changer, IE).full


@pytest.mark.vtape
def test_socket_errors_and_exchange(served):
    lib, changer, _ = served
    assert_check(changer("0a 00 00 00 01 00"), 5, 0x20, 0x00)
    assert_check(changer(f"a5 00 {MT:04x} {ST + 8:04x} {DT:04x} 00 00 00 00", allocation=0), 5, 0x3B, 0x0E)
    assert_check(changer(f"a5 00 {MT:04x} {ST:04x} {ST + 1:04x} 00 00 00 00", allocation=0), 5, 0x3B, 0x0D)
    assert_check(changer(f"a5 00 {MT:04x} 0999 {DT:04x} 00 00 00 00", allocation=0), 5, 0x21, 0x01, field_pointer=4)
    good(changer(f"a6 00 {MT:04x} {ST:04x} {ST + 1:04x} {ST:04x} 00 00", allocation=0))
    assert [label(element(changer, ST + n)) for n in range(2)] == ["VT0002L8", "VT0001L8"]
    good(changer("07 00 00 00 00 00", allocation=64))
    good(changer(f"2b 00 {MT:04x} {ST:04x} 00 00 00 00", allocation=0))


@pytest.mark.vtape
def test_socket_moves_survive_a_daemon_restart(served):
    lib, changer, _ = served
    good(changer(f"a5 00 {MT:04x} {ST + 1:04x} {DT:04x} 00 00 00 00", allocation=0))
    changer.client.close()
    assert lib.stop() == 0
    lib.start()
    with lib.client("changer") as client:
        again = SocketDevice(client)
        drive = element(again, DT)
        assert label(drive) == "VT0002L8" and drive.svalid and drive.source == ST + 1
        assert not element(again, ST + 1).full
