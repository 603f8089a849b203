"""The drive API against a real vtape daemon: positions after every motion, status, options,
TapeAlert, MAM, encryption and the errors a drive reports."""
import pytest

from tapefs.device.changer import Changer
from tapefs.device.drive import Drive, DriveNotReady
from tapefs.scsi import errors
from tapefs.scsi.trace import TraceRecord

pytestmark = pytest.mark.vtape


@pytest.fixture
def drive(vtape_library):
    with Changer.open(vtape_library.changer) as changer:
        changer.load(1, 0)
    with Drive.open(vtape_library.drives[0]) as opened:
        opened.request_sense()  # the "medium may have changed" unit attention of the load
        yield opened


def write_files(drive: Drive, files: list[list[bytes]]) -> None:
    for blocks in files:
        for block in blocks:
            drive.write_block(block)
        drive.write_filemarks(1)


def where(drive: Drive) -> tuple[int, int]:
    position = drive.read_position()
    return position.file_number, position.block_number


def test_opening_a_drive_absorbs_the_unit_attention_of_a_load(vtape_library):
    with Changer.open(vtape_library.changer) as changer:
        changer.load(2, 1)
    records: list[TraceRecord] = []
    with Drive.open(vtape_library.drives[1], records.append) as drive:
        drive.rewind()
        assert where(drive) == (0, 0)
    ready_checks = [r for r in records if r.cdb[0] == 0x00]
    assert [r.sense.condition if r.sense else "GOOD" for r in ready_checks] == ["medium may have changed", "GOOD"]


def test_opening_a_drive_waits_while_the_tape_becomes_ready(make_vtape_library):
    library = make_vtape_library(timing=True, drives=1, cartridges=1, cleaning_cartridges=0,
                                 timing_overrides={"load_seconds": 1.0})
    with Changer.open(library.changer) as changer:
        changer.load(1, 0)
    records: list[TraceRecord] = []
    with Drive.open(library.drives[0], records.append) as drive:
        drive.rewind()
    conditions = [r.sense.condition if r.sense else "GOOD" for r in records if r.cdb[0] == 0x00]
    assert conditions[0] == "medium may have changed" and conditions[-1] == "GOOD"
    assert "drive is becoming ready" in conditions


def test_opening_a_drive_gives_up_on_a_tape_that_stays_becoming_ready(make_vtape_library):
    library = make_vtape_library(timing=True, drives=1, cartridges=1, cleaning_cartridges=0,
                                 timing_overrides={"load_seconds": 60.0})
    with Changer.open(library.changer) as changer:
        changer.load(1, 0)
    with pytest.raises(DriveNotReady, match=r"did not become ready within 0\.3 s .*becoming ready"):
        Drive.open(library.drives[0], ready_timeout=0.3)


def test_write_read_session_positions(drive):
    # Three files: [a0 a1] FM [b0] FM [c0 c1 c2] FM; LON counts blocks and filemarks.
    files = [[b"a0" * 100, b"a1" * 100], [b"b0" * 50], [b"c0", b"c1", b"c2"]]
    write_files(drive, files)
    assert where(drive) == (3, 9)

    drive.rewind()
    assert where(drive) == (0, 0)
    assert drive.read_block() == b"a0" * 100
    assert drive.read_block() == b"a1" * 100
    with pytest.raises(errors.FilemarkDetected) as filemark:
        drive.read_block()
    assert filemark.value.sense.filemark
    assert where(drive) == (1, 3)

    drive.space_filemarks(1)                   # fsf 1: start of file 2
    assert where(drive) == (2, 5)
    assert drive.read_block() == b"c0"

    drive.space_filemarks(-1)                  # bsf 1: before the filemark ending file 1
    assert where(drive) == (1, 4)
    drive.backward_space_filemarks_then_forward(1)   # bsfm 1: start of file 1
    assert where(drive) == (1, 3)
    drive.forward_space_filemarks_then_back(2)       # fsfm 2: before the filemark ending file 2
    assert where(drive) == (2, 8)

    assert drive.locate_file(1).block_number == 3    # asf 1
    assert drive.read_block() == b"b0" * 50
    drive.locate_file(0)
    assert where(drive) == (0, 0)
    drive.locate_file(2)
    drive.space_blocks(2)                      # fsr 2
    assert drive.read_block() == b"c2"
    drive.space_blocks(-1)                     # bsr 1
    assert drive.read_block() == b"c2"

    drive.space_to_end_of_data()               # eod
    assert where(drive) == (3, 9)
    with pytest.raises(errors.EndOfData):
        drive.read_block()


def test_append_at_end_of_data_keeps_earlier_files(drive):
    write_files(drive, [[b"first"]])
    drive.rewind()
    drive.space_to_end_of_data()
    write_files(drive, [[b"second"]])
    drive.locate_file(1)
    assert drive.read_block() == b"second"
    drive.locate_file(0)
    assert drive.read_block() == b"first"


def test_spacing_past_the_last_filemark_hits_end_of_data(drive):
    write_files(drive, [[b"x"]])
    drive.rewind()
    with pytest.raises(errors.EndOfData) as end:
        drive.space_filemarks(3)
    assert end.value.sense.information == 2
    assert where(drive) == (1, 2)


def test_spacing_back_past_the_beginning_hits_bom(drive):
    write_files(drive, [[b"x"]])
    drive.rewind()
    drive.space_blocks(1)
    with pytest.raises(errors.BeginningOfMedium):
        drive.space_blocks(-3)
    assert where(drive) == (0, 0)


def test_locate_to_a_missing_file_is_end_of_data(drive):
    write_files(drive, [[b"x"]])
    with pytest.raises(errors.EndOfData):
        drive.locate_file(5)


def test_blank_tape_read_is_end_of_data(drive):
    drive.rewind()
    with pytest.raises(errors.EndOfData, match="end of data"):
        drive.read_block()


def test_short_block_read_returns_the_block(drive):
    drive.write_block(b"z" * 1000)
    drive.rewind()
    assert drive.read_block(4096) == b"z" * 1000


def test_erase_from_position_truncates(drive):
    write_files(drive, [[b"a"], [b"b"]])
    drive.locate_file(1)
    drive.erase(fast=True)
    drive.rewind()
    drive.space_to_end_of_data()
    assert where(drive) == (1, 2)


def test_format_empties_the_tape(drive):
    write_files(drive, [[b"a"], [b"b"]])
    drive.format_medium(fast=True)
    assert where(drive) == (0, 0)
    with pytest.raises(errors.EndOfData):
        drive.read_block()


def test_options_round_trip(drive):
    options = drive.set_options(compression=False, block_length=65536, buffer_mode=False)
    assert (options.compression, options.block_length, options.buffer_mode) == (False, 65536, False)
    options = drive.set_default_options()
    assert (options.compression, options.block_length, options.buffer_mode) == (True, 0, True)


def test_status_of_a_loaded_drive(drive, vtape_library):
    write_files(drive, [[b"a" * 1024]])
    status = drive.status()
    assert (status.vendor, status.density, status.medium_present) == ("IBM", "LTO8", True)
    assert (status.file_number, status.block_number) == (1, 2)
    assert status.volume_mounts >= 1 and status.manufactured is not None
    assert status.serial and status.drive_activity == "no activity"


def test_status_of_an_empty_drive(vtape_library):
    with Drive.open(vtape_library.drives[1]) as drive:
        status = drive.status()
    assert not status.medium_present and status.file_number is None


def test_tape_alert_flags_set_by_the_library(drive, vtape_library):
    assert drive.tape_alert_flags() == []
    vtape_library.control("fault", device="drive0", tape_alerts=[0x14, 0x03])
    assert drive.tape_alert_flags() == [0x03, 0x14]


def test_volume_statistics_count_the_mount(drive):
    statistics = drive.volume_statistics()
    assert statistics.volume_mounts >= 1 and statistics.barcode == "VT0001L8"


def test_cartridge_memory_round_trip(drive):
    drive.write_attribute(0x0800, "tapefs")
    attributes = {a.id: a.value for a in drive.cartridge_memory()}
    assert attributes[0x0806] == "VT0001L8" and attributes[0x0800] == "tapefs"
    drive.write_attribute(0x0800, None)
    assert 0x0800 not in {a.id for a in drive.cartridge_memory()}


def test_read_only_attribute_is_refused(drive):
    with pytest.raises(errors.InvalidField):
        drive.write_attribute(0x0003, 5)


def test_hardware_encryption_set_status_clear(drive):
    assert drive.encryption_status().mode == "off"
    drive.set_encryption_key(bytes(range(32)))
    status = drive.encryption_status()
    assert status.mode == "mixed" and status.key_instance_counter >= 1
    drive.write_block(b"secret")
    drive.rewind()
    assert drive.read_block() == b"secret"
    drive.clear_encryption_key()
    assert drive.encryption_status().mode == "off"


def test_locked_drive_refuses_eject(drive):
    drive.lock()
    with pytest.raises(errors.MediumRemovalPrevented):
        drive.eject()
    drive.unlock()
    drive.eject()
    with pytest.raises(errors.NotReady):
        drive.test_unit_ready()
    drive.load()
    drive.request_sense()
    drive.test_unit_ready()


def test_write_protected_cartridge(vtape_library):
    vtape_library.control("write-protect", barcode="VT0003L8", on=True)
    with Changer.open(vtape_library.changer) as changer:
        changer.load(3, 0)
    with Drive.open(vtape_library.drives[0]) as drive:
        drive.request_sense()
        assert drive.status().write_protect
        with pytest.raises(errors.WriteProtected, match="write protected"):
            drive.write_block(b"x")


def test_empty_drive_reports_medium_not_present(vtape_library):
    with Drive.open(vtape_library.drives[0]) as drive:
        with pytest.raises(errors.MediumNotPresent, match="REWIND: medium not present"):
            drive.rewind()


def test_changer_is_not_a_drive(vtape_library):
    with pytest.raises(errors.WrongDeviceType, match="not a tape drive"):
        Drive.open(vtape_library.changer)


def test_injected_failure_carries_its_sense(drive, vtape_library):
    vtape_library.control("fault", device="drive0", fail_next=1, sense_code="3/11/00")
    with pytest.raises(errors.MediumError, match="unrecovered read error"):
        drive.rewind()
    drive.rewind()


def test_trace_sees_every_command(vtape_library):
    records: list[TraceRecord] = []
    with Drive.open(vtape_library.drives[0], records.append) as drive:
        with pytest.raises(errors.MediumNotPresent):
            drive.rewind()
    assert [r.cdb[0] for r in records] == [0x12, 0x00, 0x01]  # INQUIRY and TEST UNIT READY open it
    assert records[2].sense.condition == "medium not present"
    assert "REWIND [01 00 00 00 00 00]" in records[2].format() and "CHECK CONDITION" in records[2].format()


def test_readiness_check_consumes_the_unit_attention_of_a_reload(drive):
    drive.eject()
    assert not drive.is_ready()
    drive.load()                   # queues "medium may have changed"
    assert drive.is_ready()
    drive.rewind()                 # the unit attention is gone


def test_lto9_format_is_immediate_and_polled(make_vtape_library):
    library = make_vtape_library(generation=9, drives=1, cartridges=1, cleaning_cartridges=0)
    with Changer.open(library.changer) as changer:
        changer.load(1, 0)
    records: list[TraceRecord] = []
    with Drive.open(library.drives[0], records.append) as drive:
        drive.request_sense()
        drive.write_block(b"old")
        drive.format_medium(fast=True)
        with pytest.raises(errors.EndOfData):
            drive.read_block()
    formats = [r.cdb for r in records if r.cdb[0] == 0x04]
    assert formats == [bytes.fromhex("04 01 00 00 00 00")]


def test_queued_reads_give_each_block_or_its_error_in_place(drive, vtape_library):
    # [a0 a1] FM [b0] FM: four READs queued at once run on the drive one after the other,
    # past the filemark, as four READs sent singly would.
    write_files(drive, [[b"a0" * 100, b"a1" * 100], [b"b0" * 50]])
    drive.rewind()
    records: list[TraceRecord] = []
    drive.channel.tracer = records.append
    outcomes = drive.read_blocks(4, 1024)
    assert outcomes[:2] == [b"a0" * 100, b"a1" * 100]
    assert isinstance(outcomes[2], errors.FilemarkDetected) and outcomes[3] == b"b0" * 50
    assert [r.cdb[0] for r in records] == [0x08] * 4 and records[2].sense.filemark
    assert where(drive) == (1, 4)
    drive.rewind()
    vtape_library.control("fault", device="drive0", fail_next=1, sense_code="3/11/00")
    failed, after = drive.read_blocks(2, 1024)
    assert isinstance(failed, errors.MediumError) and after == b"a0" * 100


def test_block_device_stops_queued_reads_at_the_first_mark(drive):
    from tapefs.tapeformat.block_device import DriveBlockDevice, Mark

    write_files(drive, [[b"x" * 300], [b"y" * 300]])
    drive.rewind()
    device = DriveBlockDevice(drive)
    assert device.read_blocks(3) == [b"x" * 300, Mark.FILEMARK]
    assert where(drive) == (1, 3)  # the third READ ran: the caller locates before reading on
    drive.locate_file(1)
    assert device.read_blocks(4) == [b"y" * 300, Mark.FILEMARK]
    assert device.read_blocks(2) == [Mark.END_OF_DATA]
