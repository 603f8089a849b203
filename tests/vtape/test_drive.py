"""The tape drive at the CDB level, over a real daemon's socket."""
from __future__ import annotations

import os

import pytest

from tests.helpers.cdb import (
    LOAD,
    READ_POSITION_LONG,
    REQUEST_SENSE,
    REWIND,
    TUR,
    UNLOAD,
    load,
    locate10,
    locate16,
    ok,
    position,
    read,
    sense,
    space,
    space16,
    write,
    write_filemarks,
)

pytestmark = pytest.mark.vtape

RECORD = 256 * 1024


def write_records(drive, *records):
    for record in records:
        ok(drive.execute(write(len(record)), record))


def test_empty_drive_reports_medium_not_present(vtape_library):
    with vtape_library.client() as drive:
        assert sense(drive.execute(TUR)).code == (2, 0x3A, 0x00)
        assert sense(drive.execute(read(512), data_in_len=512)).code == (2, 0x3A, 0x00)
        current = bytes(ok(drive.execute(REQUEST_SENSE, data_in_len=252)).data)
        assert (current[2] & 0x0F, current[12], current[13]) == (2, 0x3A, 0x00)


def test_load_raises_unit_attention_once_for_every_client(vtape_library):
    with vtape_library.client("changer") as changer:
        ok(changer.execute(bytes([0xA5, 0, 0, 0, 0x04, 0x00, 0x01, 0x00]) + bytes(4)))
    with vtape_library.client() as first:
        assert sense(first.execute(TUR)).code == (6, 0x28, 0x00)
    with vtape_library.client() as second:
        ok(second.execute(TUR))


def test_blank_tape_reads_end_of_data_at_bot(vtape_library):
    drive = load(vtape_library)
    s = sense(drive.execute(read(RECORD), data_in_len=RECORD))
    assert s.code == (8, 0x00, 0x05) and s.valid and s.information == RECORD
    assert position(drive) == (0, 0)


def test_write_read_filemark_and_end_of_data(vtape_library):
    drive = load(vtape_library)
    a, b = os.urandom(RECORD), os.urandom(1000)
    write_records(drive, a, b)
    ok(drive.execute(write_filemarks(1)))
    assert position(drive) == (3, 1)
    ok(drive.execute(REWIND))
    reply = ok(drive.execute(read(RECORD), data_in_len=RECORD))
    assert bytes(reply.data) == a and reply.residual == 0
    reply = ok(drive.execute(read(RECORD), data_in_len=RECORD))  # short block, SILI=1: GOOD with residual
    assert bytes(reply.data) == b and reply.residual == RECORD - 1000
    s = sense(drive.execute(read(RECORD), data_in_len=RECORD))
    assert s.code == (0, 0, 1) and s.filemark and s.information == RECORD
    assert position(drive) == (3, 1)
    s = sense(drive.execute(read(RECORD), data_in_len=RECORD))
    assert s.code == (8, 0, 5)


def test_short_block_without_sili_reports_incorrect_length(vtape_library):
    drive = load(vtape_library)
    write_records(drive, b"x" * 100)
    ok(drive.execute(REWIND))
    reply = drive.execute(read(512, sili=False), data_in_len=512)
    s = sense(reply)
    assert s.code == (0, 0, 0) and s.ili and s.information == 412
    assert bytes(reply.data) == b"x" * 100 and reply.residual == 412


def test_overlength_block_without_sili_is_truncated_with_negative_information(vtape_library):
    drive = load(vtape_library)
    write_records(drive, b"y" * 1000)
    ok(drive.execute(REWIND))
    reply = drive.execute(read(600, sili=False), data_in_len=600)
    s = sense(reply)
    assert s.ili and s.information == -400 and bytes(reply.data) == b"y" * 600


def test_write_in_the_middle_truncates_everything_after(vtape_library):
    drive = load(vtape_library)
    write_records(drive, b"1" * 10, b"2" * 10, b"3" * 10)
    ok(drive.execute(locate16(1)))
    write_records(drive, b"new")
    assert position(drive) == (2, 0)
    ok(drive.execute(locate16(1)))
    assert bytes(ok(drive.execute(read(64), data_in_len=64)).data) == b"new"
    assert sense(drive.execute(read(64), data_in_len=64)).code == (8, 0, 5)


def make_files(drive, files=3, blocks=2):
    """files x (blocks records + filemark); returns nothing, leaves the drive at EOD."""
    for f in range(files):
        for b in range(blocks):
            write_records(drive, bytes([f]) * 64 + bytes([b]))
        ok(drive.execute(write_filemarks(1)))


def test_space_blocks_and_filemarks_both_ways(vtape_library):
    drive = load(vtape_library)
    make_files(drive)                      # objects: b b F b b F b b F  (EOD at 9)
    ok(drive.execute(REWIND))
    ok(drive.execute(space(0, 1)))
    assert position(drive) == (1, 0)
    s = sense(drive.execute(space(0, 5)))  # filemark after 1 block: stop on its EOM side
    assert s.code == (0, 0, 1) and s.filemark and s.information == 4
    assert position(drive) == (3, 1)
    s = sense(drive.execute(space(0, -1)))  # previous object is a filemark: PBS check_filemark
    assert s.code == (0, 0, 1) and s.filemark
    assert position(drive) == (2, 0)
    ok(drive.execute(space(1, 1)))
    assert position(drive) == (3, 1)
    ok(drive.execute(space(1, 2)))
    assert position(drive) == (9, 3)
    ok(drive.execute(space(1, -2)))        # BOP side of the 2nd filemark back
    assert position(drive) == (5, 1)
    ok(drive.execute(space(1, 1)))
    assert position(drive) == (6, 2)
    s = sense(drive.execute(space(1, 5)))
    assert s.code == (8, 0, 5) and s.information == 4
    assert position(drive) == (9, 3)
    s = sense(drive.execute(space16(1, -10)))
    assert s.code == (0, 0, 4) and s.eom and s.information == -7
    assert position(drive) == (0, 0)
    s = sense(drive.execute(space(0, -1)))
    assert s.code == (0, 0, 4)
    ok(drive.execute(space(3, 0)))
    assert position(drive) == (9, 3)
    s = sense(drive.execute(space(0, 1)))
    assert s.code == (8, 0, 5) and s.information == 1


def test_space_rejects_setmarks(vtape_library):
    drive = load(vtape_library)
    s = sense(drive.execute(space(4, 1)))
    assert s.code == (5, 0x24, 0) and s.field_pointer == 1


def test_locate_to_file_lands_before_its_filemark_like_pbs_expects(vtape_library):
    drive = load(vtape_library)
    make_files(drive, files=4)
    for file_number in (1, 2, 3):
        # PBS: LOCATE(16) to file-1, SPACE FM +1, then READ POSITION must say file_number.
        ok(drive.execute(locate16(file_number - 1, dest_type=1)))
        ok(drive.execute(space(1, 1)))
        assert position(drive)[1] == file_number
        data = bytes(ok(drive.execute(read(RECORD), data_in_len=RECORD)).data)
        assert data[:1] == bytes([file_number])
    s = sense(drive.execute(locate16(9, dest_type=1)))
    assert s.code == (8, 0, 5)
    assert position(drive) == (12, 4)
    ok(drive.execute(locate16(0, dest_type=3)))
    assert position(drive) == (12, 4)
    assert sense(drive.execute(locate16(0, dest_type=2))).code == (5, 0x24, 0)


def test_locate10_and_beyond_end_of_data(vtape_library):
    drive = load(vtape_library)
    make_files(drive, files=1, blocks=3)
    ok(drive.execute(locate10(2)))
    assert position(drive) == (2, 0)
    assert sense(drive.execute(locate10(50))).code == (8, 0, 5)
    assert position(drive) == (4, 1)


def test_read_position_short_and_extended_forms(vtape_library):
    drive = load(vtape_library)
    short = bytes(ok(drive.execute(bytes([0x34, 0]) + bytes(8), data_in_len=20)).data)
    assert len(short) == 20 and short[0] & 0x80  # BOP
    write_records(drive, b"a", b"b")
    short = bytes(ok(drive.execute(bytes([0x34, 0]) + bytes(8), data_in_len=20)).data)
    assert not short[0] & 0x80 and int.from_bytes(short[4:8], "big") == 2
    extended = bytes(ok(drive.execute(bytes([0x34, 0x08]) + bytes(5) + (32).to_bytes(2, "big") + b"\0",
                                      data_in_len=32)).data)
    assert len(extended) == 32 and int.from_bytes(extended[2:4], "big") == 0x1C
    assert int.from_bytes(extended[8:16], "big") == 2
    assert sense(drive.execute(bytes([0x34, 0x07]) + bytes(8), data_in_len=32)).code == (5, 0x24, 0)


def test_fixed_block_mode_write_and_read(vtape_library):
    drive = load(vtape_library)
    select = bytes([0x15, 0x10, 0, 0, 12, 0])
    parameters = bytes([0, 0, 0x10, 8]) + bytes([0x5E, 0, 0, 0, 0]) + (512).to_bytes(3, "big")
    ok(drive.execute(select, parameters))
    data = os.urandom(512 * 4)
    ok(drive.execute(write(4, fixed=True), data))
    ok(drive.execute(write_filemarks(1)))
    ok(drive.execute(REWIND))
    assert bytes(ok(drive.execute(read(3, sili=False, fixed=True), data_in_len=1536)).data) == data[:1536]
    reply = drive.execute(read(3, sili=False, fixed=True), data_in_len=1536)
    s = sense(reply)  # one block, then the filemark
    assert s.filemark and s.information == 2 and bytes(reply.data) == data[1536:]
    assert sense(drive.execute(read(1, sili=True, fixed=True), data_in_len=512)).code == (5, 0x24, 0)


def test_fixed_mode_without_block_length_is_refused(vtape_library):
    drive = load(vtape_library)
    assert sense(drive.execute(write(1, fixed=True), b"x" * 512)).code == (5, 0x24, 0)


def test_early_warning_then_volume_overflow(make_vtape_library):
    library = make_vtape_library(cartridges=1, cleaning_cartridges=0)
    library.control("add-cartridge", barcode="SMALL1L8", capacity="4MiB", early_warning="1MiB")
    drive = load(library, slot_address=0x0401)
    record = b"z" * RECORD
    for _ in range(11):  # 2.75 MiB: before early warning
        ok(drive.execute(write(RECORD), record))
    s = sense(drive.execute(write(RECORD), record))  # 3 MiB: at early warning, data still written
    assert s.code == (0, 0, 2) and s.eom and s.information == 0
    for _ in range(4):  # up to exactly 4 MiB
        assert sense(drive.execute(write(RECORD), record)).code == (0, 0, 2)
    s = sense(drive.execute(write(RECORD), record))  # full: the next block does not fit
    assert s.code == (0x0D, 0, 2) and s.eom and s.information == RECORD
    assert position(drive) == (16, 0)
    ok(drive.execute(write_filemarks(0)))
    long_form = bytes(ok(drive.execute(READ_POSITION_LONG, data_in_len=32)).data)
    assert long_form[0] & 0x40  # EOP: beyond early warning


def test_write_protected_cartridge_refuses_writes_but_reads(make_vtape_library):
    library = make_vtape_library()
    library.control("write-protect", barcode="VT0001L8")
    drive = load(library)
    assert sense(drive.execute(write(10), b"0123456789")).code == (7, 0x27, 0)
    assert sense(drive.execute(write_filemarks(1))).code == (7, 0x27, 0)
    assert sense(drive.execute(bytes([0x19, 0, 0, 0, 0, 0]))).code == (7, 0x27, 0)
    header = bytes(ok(drive.execute(bytes([0x5A, 0x08, 0x0F, 0, 0, 0, 0, 0, 64, 0]), data_in_len=64)).data)
    assert header[3] & 0x80  # WP bit in the device-specific byte


def test_worm_appends_but_never_overwrites(make_vtape_library):
    library = make_vtape_library(cartridges=1, worm_cartridges=1)
    drive = load(library, slot_address=0x0401)
    write_records(drive, b"first", b"second")
    ok(drive.execute(write_filemarks(1)))
    ok(drive.execute(REWIND))
    assert sense(drive.execute(write(3), b"new")).code == (7, 0x30, 0x0C)
    assert sense(drive.execute(bytes([0x19, 1, 0, 0, 0, 0]))).code == (7, 0x30, 0x0C)
    assert sense(drive.execute(bytes([0x04, 0, 0, 0, 0, 0]))).code == (7, 0x30, 0x0C)
    ok(drive.execute(space(3, 0)))
    write_records(drive, b"appended")
    ok(drive.execute(REWIND))
    assert bytes(ok(drive.execute(read(64), data_in_len=64)).data) == b"first"
    medium_page = bytes(ok(drive.execute(bytes([0x5A, 0, 0x1D, 0, 0, 0, 0, 0, 64, 0]), data_in_len=64)).data)
    assert medium_page[16 + 2] & 0x01  # WORMM


def test_erase_from_the_middle_and_format_at_bot(vtape_library):
    drive = load(vtape_library)
    make_files(drive, files=2)
    ok(drive.execute(locate16(2)))
    ok(drive.execute(bytes([0x19, 0, 0, 0, 0, 0])))
    ok(drive.execute(space(3, 0)))
    assert position(drive) == (2, 0)
    assert sense(drive.execute(bytes([0x04, 0, 0, 0, 0, 0]))).code == (5, 0x3B, 0x0C)  # not at BOP
    ok(drive.execute(REWIND))
    ok(drive.execute(bytes([0x04, 0, 0, 0, 0, 0])))
    assert sense(drive.execute(read(64), data_in_len=64)).code == (8, 0, 5)
    assert sense(drive.execute(bytes([0x04, 0, 2, 0, 0, 0]))).code == (5, 0x24, 0)  # partitions


def test_unload_then_load_and_prevent_removal(vtape_library):
    drive = load(vtape_library)
    write_records(drive, b"data")
    ok(drive.execute(bytes([0x1E, 0, 0, 0, 1, 0])))
    assert sense(drive.execute(UNLOAD)).code == (5, 0x53, 0x02)
    with vtape_library.client("changer") as changer:
        s = sense(changer.execute(bytes([0xA5, 0, 0, 0, 0x01, 0x00, 0x04, 0x00]) + bytes(4)))
        assert s.code == (5, 0x53, 0x02)
    ok(drive.execute(bytes([0x1E, 0, 0, 0, 0, 0])))
    ok(drive.execute(UNLOAD))
    assert sense(drive.execute(TUR)).code == (2, 0x3A, 0)
    assert vtape_library.control("status")["drives"][0]["barcode"] == "VT0001L8"  # still in the drive
    ok(drive.execute(LOAD))
    ok(drive.execute(TUR))
    assert position(drive) == (0, 0)
    assert bytes(ok(drive.execute(read(64), data_in_len=64)).data) == b"data"
    assert sense(drive.execute(bytes([0x1B, 0, 0, 0, 0x05, 0]))).code == (5, 0x24, 0)  # EOT bit


def test_read_block_limits_and_inquiry(vtape_library):
    with vtape_library.client() as drive:
        limits = bytes(ok(drive.execute(bytes([0x05, 0, 0, 0, 0, 0]), data_in_len=6)).data)
        assert int.from_bytes(limits[1:4], "big") == 8 * 1024 * 1024 and int.from_bytes(limits[4:6], "big") == 1
        inquiry = bytes(ok(drive.execute(bytes([0x12, 0, 0, 0, 96, 0]), data_in_len=96)).data)
        assert len(inquiry) == 64 and inquiry[0] == 0x01 and inquiry[4] == 59 and inquiry[6] & 0x08 == 0
        assert inquiry[8:16] == b"IBM     " and inquiry[16:32] == b"ULT3580-TD8     "
        serial = bytes(ok(drive.execute(bytes([0x12, 1, 0x80, 0, 30, 0]), data_in_len=30)).data)
        status = vtape_library.control("status")
        assert serial[4:4 + serial[3]].decode() == status["drives"][0]["serial"]
        pages = bytes(ok(drive.execute(bytes([0x12, 1, 0, 0, 64, 0]), data_in_len=64)).data)
        assert pages[4:4 + pages[3]] == bytes([0x00, 0x80, 0x83, 0xB0])
        device_id = bytes(ok(drive.execute(bytes([0x12, 1, 0x83, 0, 255, 0]), data_in_len=255)).data)
        assert device_id[4:8] == bytes([0x02, 0x01, 0x00, 34]) and device_id[8:16] == b"IBM     "
        assert sense(drive.execute(bytes([0x12, 1, 0x99, 0, 64, 0]), data_in_len=64)).code == (5, 0x24, 0)
        assert sense(drive.execute(bytes([0x12, 0, 0x80, 0, 64, 0]), data_in_len=64)).field_pointer == 2


def test_unknown_opcode_is_an_illegal_request(vtape_library):
    with vtape_library.client() as drive:
        s = sense(drive.execute(bytes([0xEE, 0, 0, 0, 0, 0])))
        assert s.code == (5, 0x20, 0x00)


def test_mode_sense_pages_and_compression_select(vtape_library):
    drive = load(vtape_library)
    reply = bytes(ok(drive.execute(bytes([0x5A, 0, 0x0F, 0, 0, 0, 0, 0x10, 0, 0]), data_in_len=4096)).data)
    assert int.from_bytes(reply[0:2], "big") == len(reply) - 2 and int.from_bytes(reply[6:8], "big") == 8
    assert reply[8] == 0x5E and reply[16] & 0x3F == 0x0F and reply[17] == 0x0E and reply[18] & 0x80
    # PBS: echo header and descriptor, block length 0, DCE off, buffered mode 1.
    parameters = bytearray(reply)
    parameters[0:2] = b"\0\0"
    parameters[18] &= 0x7F
    ok(drive.execute(bytes([0x55, 0x10, 0, 0, 0, 0, 0]) + len(parameters).to_bytes(2, "big") + b"\0",
                     bytes(parameters)))
    again = bytes(ok(drive.execute(bytes([0x5A, 0, 0x0F, 0, 0, 0, 0, 0x10, 0, 0]), data_in_len=4096)).data)
    assert not again[18] & 0x80
    six = bytes(ok(drive.execute(bytes([0x1A, 0, 0x0F, 0, 255, 0]), data_in_len=255)).data)
    assert six[0] == len(six) - 1 and six[3] == 8 and six[4] == 0x5E
    everything = bytes(ok(drive.execute(bytes([0x5A, 0, 0x3F, 0, 0, 0, 0, 0x10, 0, 0]), data_in_len=4096)).data)
    assert {0x0F, 0x10, 0x11, 0x1D} <= set(_page_codes(everything[16:]))
    assert sense(drive.execute(bytes([0x5A, 0, 0xC0 | 0x0F, 0, 0, 0, 0, 0x10, 0, 0]), data_in_len=64)).code == (5, 0x39, 0)
    assert sense(drive.execute(bytes([0x5A, 0, 0x2C, 0, 0, 0, 0, 0x10, 0, 0]), data_in_len=64)).code == (5, 0x24, 0)
    bad_page = bytes(8) + bytes([0x2C, 2, 0, 0])
    s = sense(drive.execute(bytes([0x55, 0x10, 0, 0, 0, 0, 0, 0, len(bad_page), 0]), bad_page))
    assert s.code == (5, 0x26, 0) and s.field_pointer == 8


def _page_codes(pages: bytes):
    offset = 0
    while offset < len(pages):
        yield pages[offset] & 0x3F
        offset += 2 + pages[offset + 1]


def test_report_density_support_has_exact_length(vtape_library):
    with vtape_library.client() as drive:
        reply = ok(drive.execute(bytes([0x44, 0, 0, 0, 0, 0, 0, 0x20, 0, 0]), data_in_len=8192))
        data = bytes(reply.data)
        assert int.from_bytes(data[0:2], "big") == len(data) - 2 and (len(data) - 4) % 52 == 0
        densities = [data[4 + 52 * i] for i in range((len(data) - 4) // 52)]
        assert densities == [0x5E, 0x5C] and data[6] & 0x80  # LTO-8 reads and writes LTO-8 and LTO-7
        assert reply.residual == 8192 - len(data)


def test_report_luns_and_supported_opcodes(vtape_library):
    with vtape_library.client() as drive:
        luns = bytes(ok(drive.execute(bytes([0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0]), data_in_len=64)).data)
        assert luns == (8).to_bytes(4, "big") + bytes(12)
        listing = bytes(ok(drive.execute(bytes([0xA3, 0x0C, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0]),
                                         data_in_len=8192)).data)
        opcodes = {listing[4 + 8 * i] for i in range(int.from_bytes(listing[:4], "big") // 8)}
        assert {0x00, 0x08, 0x0A, 0x10, 0x11, 0x34, 0x92, 0xA0} <= opcodes
        one = bytes(ok(drive.execute(bytes([0xA3, 0x0C, 0x01, 0x08, 0, 0, 0, 0, 0, 64, 0, 0]),
                                     data_in_len=64)).data)
        assert one[1] & 0x07 == 0x03 and int.from_bytes(one[2:4], "big") == 6
        missing = bytes(ok(drive.execute(bytes([0xA3, 0x0C, 0x01, 0xEE, 0, 0, 0, 0, 0, 64, 0, 0]),
                                         data_in_len=64)).data)
        assert missing[1] & 0x07 == 0x01


def test_injected_failures_and_media_error(vtape_library):
    drive = load(vtape_library)
    write_records(drive, b"good", b"bad", b"good again")
    vtape_library.control("fault", device="drive0", fail_next=2, sense_code="3/31/00")
    assert sense(drive.execute(TUR)).code == (3, 0x31, 0)
    assert sense(drive.execute(TUR)).code == (3, 0x31, 0)
    ok(drive.execute(TUR))
    vtape_library.control("fault", device="drive0", media_error_block=1)
    ok(drive.execute(REWIND))
    ok(drive.execute(read(64), data_in_len=64))
    assert sense(drive.execute(read(64), data_in_len=64)).code == (3, 0x11, 0)
    assert bytes(ok(drive.execute(read(64), data_in_len=64)).data) == b"good again"
    vtape_library.control("fault", device="drive0", not_ready=True)
    assert sense(drive.execute(TUR)).code == (2, 0x04, 0)
    vtape_library.control("fault", device="drive0", clear=True)
    ok(drive.execute(TUR))
    answer = vtape_library.control("fault", device="drive0", fail_next=1, sense_code="zz")
    assert not answer["ok"] and "KEY/ASC/ASCQ" in answer["error"]


def test_write_shorter_data_than_declared_is_a_data_phase_error(vtape_library):
    drive = load(vtape_library)
    assert sense(drive.execute(write(1000), b"x" * 10)).code == (0x0B, 0x4B, 0)
    assert sense(drive.execute(write(9 * 1024 * 1024), b"")).code == (5, 0x24, 0)
    assert position(drive) == (0, 0)


def test_cleaning_cartridge_cleans_and_uses_a_cycle(vtape_library):
    with vtape_library.client("changer") as changer:
        ok(changer.execute(bytes([0xA5, 0, 0, 0, 0x04, 0x0F, 0x01, 0x00]) + bytes(4)))  # slot 16 -> drive0
        with vtape_library.client() as drive:
            drive.execute(REQUEST_SENSE, data_in_len=252)
            assert sense(drive.execute(TUR)).code == (2, 0x30, 0x03)
        ok(changer.execute(bytes([0xA5, 0, 0, 0, 0x01, 0x00, 0x04, 0x0F]) + bytes(4)))
    cleaning = [c for c in vtape_library.control("status")["cartridges"] if c["cleaning"]]
    meta = (vtape_library.path / "cartridges" / "CLN001L1" / "meta.json").read_text()
    assert cleaning and '"cleaning_cycles_left": 49' in meta


def test_damaged_cartridge_index_gives_medium_error_not_a_crash(vtape_library):
    drive = load(vtape_library)
    write_records(drive, b"one", b"two")
    ok(drive.execute(REWIND))
    index = vtape_library.path / "cartridges" / "VT0001L8" / "index"
    with open(index, "r+b") as f:
        f.seek(3)
        f.write(b"\xff")
    assert sense(drive.execute(read(64), data_in_len=64)).code == (3, 0x31, 0)
    ok(drive.execute(locate16(1)))
    assert bytes(ok(drive.execute(read(64), data_in_len=64)).data) == b"two"


def test_a_cdb_of_the_wrong_length_for_its_opcode_is_refused(vtape_library):
    drive = load(vtape_library)
    s = sense(drive.execute(bytes([0x92, 0x08]) + bytes(13)))  # LOCATE(16) with 15 bytes
    assert s.code == (5, 0x24, 0) and s.field_pointer == 0
    assert sense(drive.execute(bytes(7))).code == (5, 0x24, 0)   # a 7-byte TEST UNIT READY
    assert position(drive) == (0, 0)
