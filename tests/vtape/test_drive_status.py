"""The drive's LOG SENSE pages at the CDB level: the layouts PBS, tapeinfo and sg_logs check.

Most tests drive a ``Library`` in-process (``StatusBench``); the last ones go
through a real daemon's socket to see residuals and operator faults.
"""
from __future__ import annotations

import os
import time

import pytest

from tests.helpers.cdb import REQUEST_SENSE, load, ok, sense, write, write_filemarks
from tests.helpers.status_bench import CLEANING_SLOT, MB, MIB, StatusBench
from vtape import drive as drive_module
from vtape import drive_logs


@pytest.fixture
def bench(tmp_path):
    bench = StatusBench(tmp_path / "lib")
    yield bench
    bench.library.close()


def log_sense(page: int, allocation: int, pc: int = 1, subpage: int = 0, pointer: int = 0) -> bytes:
    return bytes([0x4D, 0, pc << 6 | page, subpage, 0]) + pointer.to_bytes(2, "big") \
        + allocation.to_bytes(2, "big") + b"\0"


def parameters(page: bytes, code: int) -> dict[int, bytes]:
    """Parameter code -> value, after checking the header and that the parameters fill the page exactly."""
    assert page[0] & 0x3F == code and page[1] == 0
    assert int.from_bytes(page[2:4], "big") == len(page) - 4
    found: dict[int, bytes] = {}
    offset = 4
    while offset < len(page):
        parameter = int.from_bytes(page[offset:offset + 2], "big")
        length = page[offset + 3]
        assert not found or parameter > max(found), "parameter codes must ascend"
        found[parameter] = page[offset + 4:offset + 4 + length]
        offset += 4 + length
    assert offset == len(page)
    return found


def number(value: bytes) -> int:
    return int.from_bytes(value, "big")


def tape_alert_flags(bench) -> set[int]:
    page = parameters(bench.data(log_sense(0x2E, 2048, pc=0)), 0x2E)
    return {code for code, value in page.items() if value[0]}


def write_record(bench, record: bytes) -> None:
    ok(bench.run(write(len(record)), record))


# -- page 00h and the framing --------------------------------------------------------

REQUIRED_PAGES = [0x00, 0x0C, 0x11, 0x12, 0x17, 0x2E, 0x31]


def test_supported_pages_probe_then_full_read_as_sg_logs_does(bench):
    header = bench.data(bytes.fromhex("4d 00 40 00 00 00 00 00 04 00"))
    assert len(header) == 4 and header[:2] == b"\0\0"
    length = number(header[2:4])
    page = bench.data(log_sense(0x00, (length + 4 + 1) & ~1))
    codes = list(page[4:4 + length])
    assert codes == sorted(codes) and set(REQUIRED_PAGES) <= set(codes)
    assert {0x02, 0x03, 0x0D, 0x30, 0x32} <= set(codes)


def test_supported_pages_and_subpages_list_for_sg_logs_all(bench):
    page = bench.data(bytes.fromhex("4d 00 40 ff 00 00 00 00 04 00"))
    assert page[:2] == b"\x40\xff"
    page = bench.data(log_sense(0x00, 4 + number(page[2:4]), subpage=0xFF))
    pairs = [tuple(page[i:i + 2]) for i in range(4, len(page), 2)]
    assert pairs == sorted(pairs)
    assert (0x00, 0x00) in pairs and (0x00, 0xFF) in pairs and (0x17, 0x00) in pairs


@pytest.mark.parametrize("loaded", [False, True], ids=["empty", "loaded"])
def test_every_supported_page_is_well_formed_with_and_without_a_medium(bench, loaded):
    if loaded:
        bench.load()
    listing = bench.data(log_sense(0x00, 256))
    for code in listing[4:]:
        if code:
            parameters(bench.data(log_sense(code, 0xFFFF)), code)


def test_unsupported_page_and_subpage_are_invalid_fields(bench):
    s = sense(bench.run(log_sense(0x05, 512)))
    assert s.code == (5, 0x24, 0x00) and s.field_pointer == 2
    s = sense(bench.run(log_sense(0x17, 512, subpage=0x01)))
    assert s.code == (5, 0x24, 0x00) and s.field_pointer == 3


def test_parameter_pointer_returns_the_parameters_from_that_code_on(bench):
    page = parameters(bench.data(log_sense(0x2E, 2048, pointer=0x3F)), 0x2E)
    assert list(page) == [0x3F, 0x40]


def test_allocation_cuts_the_page_but_not_its_length_field(bench):
    bench.load()
    full = bench.data(log_sense(0x17, 8192))
    cut = bench.data(log_sense(0x17, 10))
    assert cut == full[:10] and number(cut[2:4]) == len(full) - 4


# -- 11h, 12h: what PBS reads for `pmt status` -----------------------------------------

PBS_DEVICE_STATUS = bytes.fromhex("4d 00 51 00 00 00 00 20 00 00")
PBS_TAPE_ALERT_FLAGS = bytes.fromhex("4d 00 52 00 00 00 00 02 00 00")
PBS_VOLUME_STATISTICS = bytes.fromhex("4d 00 57 00 00 00 00 20 00 00")


def vhf_data(bench) -> bytes:
    page = bench.data(PBS_DEVICE_STATUS)
    assert page[0] & 0x7F == 0x11 and page[1] == 0
    vhf = parameters(page, 0x11)[0x0000]
    assert len(vhf) == 4 and vhf[0] & 0x01, "PBS needs length 4 and DINIT=1"
    return vhf


def test_device_status_of_an_empty_drive(bench):
    vhf = vhf_data(bench)
    assert vhf[2] == 0                         # idle
    assert vhf[1] & 0x10 == 0                  # no medium present
    assert vhf[1] & 0x20                       # the robot may put a cartridge in


def test_device_status_of_a_loaded_drive_follows_prevent_and_write_protect(bench):
    bench.load(write_protected=True)
    vhf = vhf_data(bench)
    assert vhf[2] == 0
    assert vhf[1] & 0x17 == 0x17               # present, seated, threaded, mounted
    assert vhf[1] & 0x20 == 0                  # threaded: no robotic access
    assert vhf[0] & 0x08 and vhf[0] & 0x20     # write protected, MAM accessible
    assert vhf[0] & 0x80 == 0
    ok(bench.run(bytes([0x1E, 0, 0, 0, 1, 0])))
    assert vhf_data(bench)[0] & 0x80           # PAMR: medium removal prevented


def test_device_status_reports_cleaning_while_a_cleaning_cartridge_works(bench, monkeypatch):
    monkeypatch.setattr(drive_module, "CLEANING_SECONDS", 1.0)  # room for a slow machine
    bench.drive.cleaning_required = True
    assert vhf_data(bench)[0] & 0x02           # CRQRD
    bench.load(CLEANING_SLOT)
    vhf = vhf_data(bench)
    assert vhf[2] == 0x01 and vhf[0] & 0x02 == 0
    time.sleep(drive_module.CLEANING_SECONDS + 0.1)
    assert vhf_data(bench)[2] == 0x00


def test_tape_alert_response_has_the_exact_layout_and_keeps_the_flags(bench):
    bench.drive.tape_alerts |= {0x01, 0x40}
    for _ in range(2):  # reading 12h does not clear
        page = bench.data(PBS_TAPE_ALERT_FLAGS)
        assert len(page) == 16
        assert page[:8] == bytes([0x12, 0x00, 0x00, 0x0C, 0x00, 0x00, page[6], 0x08])
        assert page[8:16] == bytes([0x80, 0, 0, 0, 0, 0, 0, 0x01])


# -- 2Eh TapeAlert: tapeinfo; flags from real conditions -------------------------------

TAPEINFO_TAPE_ALERT = bytes.fromhex("4d 00 2e 00 00 00 00 08 00 00")


def test_tape_alert_page_has_64_one_byte_flags_and_reading_clears_raised_ones(bench):
    bench.drive.tape_alerts.add(0x1F)
    page = bench.data(TAPEINFO_TAPE_ALERT)
    assert number(page[2:4]) == 0x140
    flags = parameters(page, 0x2E)
    assert list(flags) == list(range(1, 0x41)) and all(len(v) == 1 for v in flags.values())
    assert flags[0x1F] == b"\x01" and sum(v[0] for v in flags.values()) == 1
    assert tape_alert_flags(bench) == set()


def test_write_to_a_write_protected_cartridge_raises_flag_09(bench):
    bench.load(write_protected=True)
    assert tape_alert_flags(bench) == set()  # loading it is no error; writing to it is
    assert bench.run(bytes([0x0A, 0, 0, 0, 4, 0]), b"data").status == 0x02
    bitmap = bench.data(PBS_TAPE_ALERT_FLAGS)[8:16]
    assert number(bitmap) == 1 << (64 - drive_logs.ALERT_WRITE_PROTECT)
    assert tape_alert_flags(bench) == {drive_logs.ALERT_WRITE_PROTECT}  # page 2Eh: read once, then cleared
    assert tape_alert_flags(bench) == set()


def test_cleaning_need_raises_clean_now_until_a_cleaning_cartridge_is_used(bench):
    bench.drive.cleaning_required = True
    assert tape_alert_flags(bench) == {drive_logs.ALERT_CLEAN_NOW}
    cleaning = parameters(bench.data(log_sense(0x0C, 512)), 0x0C)[0x0100]
    assert len(cleaning) == 8 and number(cleaning) == 1
    bench.load(CLEANING_SLOT)
    assert tape_alert_flags(bench) == set()


def test_expired_cleaning_cartridge_raises_flag_16_once(bench):
    bench.load(CLEANING_SLOT, cleaning_cycles_left=0)
    assert tape_alert_flags(bench) == {drive_logs.ALERT_EXPIRED_CLEANING_MEDIA}
    assert tape_alert_flags(bench) == set()


def test_worn_cartridge_raises_media_life(bench):
    bench.load(mot_passes=drive_logs.MEDIA_LIFE_PASSES + 1)
    assert drive_logs.ALERT_MEDIA_LIFE in tape_alert_flags(bench)


def test_fresh_cartridge_raises_no_flag(bench):
    bench.load()
    assert tape_alert_flags(bench) == set()


# -- 17h volume statistics ---------------------------------------------------------------

VOLUME_STATISTICS_LENGTHS = {
    0x0000: 1, 0x0001: 4, 0x0002: 8, 0x0003: 4, 0x0004: 2, 0x0005: 2, 0x0006: 2, 0x0007: 8, 0x0008: 4,
    0x0009: 2, 0x000C: 2, 0x000D: 2, 0x000E: 4, 0x000F: 4, 0x0010: 8, 0x0011: 8, 0x0012: 2, 0x0013: 2,
    0x0014: 6, 0x0015: 6, 0x0016: 4, 0x0017: 4, 0x0040: 32, 0x0041: 8, 0x0042: 32, 0x0043: 8, 0x0044: 4,
    0x0045: 9, 0x0080: 1, 0x0081: 1, 0x0082: 1, 0x0101: 4, 0x0102: 4,
}


def test_volume_statistics_without_a_medium_is_marked_invalid(bench):
    assert parameters(bench.data(PBS_VOLUME_STATISTICS), 0x17) == {0x0000: b"\x00"}


def test_volume_statistics_has_every_parameter_with_its_exact_length(bench):
    cart = bench.load(bop_passes=7)
    record = os.urandom(MIB)
    for _ in range(3):
        write_record(bench, record)
    stats = parameters(bench.data(PBS_VOLUME_STATISTICS), 0x17)
    assert {code: len(value) for code, value in stats.items()} == VOLUME_STATISTICS_LENGTHS
    assert number(stats[0x0000]) == 1
    assert number(stats[0x0001]) == 1
    assert number(stats[0x0002]) == 3
    assert number(stats[0x000E]) == 3 * MIB // MB
    assert number(stats[0x0010]) == 3 * MIB // MB
    assert number(stats[0x0016]) == cart.capacity // MB
    assert number(stats[0x0017]) == 3 * MIB // MB
    assert stats[0x0042].rstrip() == cart.barcode.encode()
    assert number(stats[0x0080]) == 0 and number(stats[0x0081]) == 0
    assert number(stats[0x0101]) == 7


def test_volume_statistics_count_reads_and_lifetime_across_loads(bench):
    bench.load()
    write_record(bench, os.urandom(2 * MIB))
    ok(bench.run(write_filemarks(1)))
    bench.unload()
    bench.load()
    ok(bench.run(bytes([0x08, 0x02, 0x20, 0x00, 0x00, 0x00])))  # READ 2 MiB, SILI
    stats = parameters(bench.data(PBS_VOLUME_STATISTICS), 0x17)
    assert number(stats[0x0001]) == 2
    assert number(stats[0x000E]) == 0 and number(stats[0x0010]) == 2 * MIB // MB
    assert number(stats[0x0007]) == 1 and number(stats[0x000F]) == 2 * MIB // MB


# -- 31h capacity, 0Ch sequential access ---------------------------------------------------

TAPEINFO_CAPACITY = bytes.fromhex("4d 00 31 00 00 00 00 08 00 00")


def test_tape_capacity_page_is_32_bytes_long_in_mb(bench):
    page = bench.data(TAPEINFO_CAPACITY)
    assert number(page[2:4]) == 32
    assert parameters(page, 0x31) == {code: bytes(4) for code in (1, 2, 3, 4)}
    cart = bench.load()
    write_record(bench, os.urandom(3 * MIB))
    page = bench.data(TAPEINFO_CAPACITY)
    assert number(page[2:4]) == 32
    capacity = parameters(page, 0x31)
    assert number(capacity[0x0003]) == cart.capacity // MB
    assert number(capacity[0x0001]) == (cart.capacity - 3 * MIB) // MB
    assert number(capacity[0x0002]) == number(capacity[0x0004]) == 0


def test_sequential_access_counts_this_load_and_the_positions(bench):
    cart = bench.load()
    write_record(bench, os.urandom(3 * MIB))
    page = parameters(bench.data(log_sense(0x0C, 512)), 0x0C)
    assert set(page) == {0, 1, 2, 3, 4, 5, 6, 7, 8, 0x0100}
    assert number(page[0x0000]) == number(page[0x0001]) == 3 * MIB
    assert number(page[0x0002]) == number(page[0x0003]) == 0
    assert number(page[0x0004]) == number(page[0x0007]) == 3 * MIB // MB
    assert number(page[0x0005]) == cart.early_warning_at // MB
    assert number(page[0x0100]) == 0


def test_optional_counter_pages_follow_the_transfers(bench):
    bench.load()
    written = 3 * MIB + 12345
    write_record(bench, os.urandom(written))
    assert number(parameters(bench.data(log_sense(0x02, 512)), 0x02)[0x0005]) == written
    assert number(parameters(bench.data(log_sense(0x03, 512)), 0x03)[0x0005]) == 0
    compression = parameters(bench.data(log_sense(0x32, 512)), 0x32)
    assert number(compression[0x0000]) == number(compression[0x0001]) == 100
    assert (number(compression[0x0006]), number(compression[0x0007])) == divmod(written, MB)
    assert (number(compression[0x0008]), number(compression[0x0009])) == divmod(written, MB)
    assert number(compression[0x0002]) == number(compression[0x0003]) == 0
    usage = parameters(bench.data(log_sense(0x30, 512)), 0x30)
    assert number(usage[0x0001]) == 1 and number(usage[0x0002]) == 1
    temperature = parameters(bench.data(log_sense(0x0D, 512)), 0x0D)
    assert 0 < number(temperature[0x0000]) < number(temperature[0x0001])


# -- over a real daemon ---------------------------------------------------------------------


@pytest.mark.vtape
def test_sg_logs_probe_has_no_residual_over_the_socket(vtape_library):
    with vtape_library.client() as drive:
        reply = ok(drive.execute(bytes.fromhex("4d 00 40 00 00 00 00 00 04 00"), data_in_len=4))
        assert len(reply.data) == 4 and reply.residual == 0
        length = number(bytes(reply.data[2:4]))
        reply = ok(drive.execute(log_sense(0x00, length + 4), data_in_len=length + 4))
        assert reply.residual == 0 and set(REQUIRED_PAGES) <= set(bytes(reply.data[4:]))


@pytest.mark.vtape
def test_pbs_status_sequence_with_operator_alert_and_write_protect(vtape_library):
    barcode = "VT0001L8"
    vtape_library.control("write-protect", barcode=barcode, on=True)
    drive = load(vtape_library)
    vtape_library.control("fault", device="drive0", tape_alerts=[0x1E])
    ok(drive.execute(REQUEST_SENSE, data_in_len=252))
    assert drive.execute(bytes([0x10, 0, 0, 0, 1, 0])).status == 0x02  # WRITE FILEMARKS refused
    status = bytes(ok(drive.execute(PBS_DEVICE_STATUS, data_in_len=8192)).data)
    vhf = parameters(status, 0x11)[0]
    assert vhf[0] & 0x09 == 0x09 and vhf[2] == 0
    flags = bytes(ok(drive.execute(PBS_TAPE_ALERT_FLAGS, data_in_len=512)).data)
    assert number(flags[8:16]) == 1 << (64 - 0x1E) | 1 << (64 - drive_logs.ALERT_WRITE_PROTECT)
    ok(drive.execute(bytes(6)))
    stats = parameters(bytes(ok(drive.execute(PBS_VOLUME_STATISTICS, data_in_len=8192)).data), 0x17)
    assert number(stats[0x0000]) == 1 and number(stats[0x0080]) == 1
    reply = ok(drive.execute(TAPEINFO_TAPE_ALERT, data_in_len=2048))
    assert reply.residual == 2048 - 4 - 0x140
    after = parameters(bytes(ok(drive.execute(TAPEINFO_TAPE_ALERT, data_in_len=2048)).data), 0x2E)
    assert not any(value[0] for value in after.values())  # reading page 2Eh cleared them
    drive.close()
