"""The changer API against a real vtape daemon."""
import pytest

from tapefs.device.changer import Changer, ChangerError
from tapefs.device.drive import Drive
from tapefs.device.element_status import IMPORT_EXPORT
from tapefs.scsi import errors

pytestmark = pytest.mark.vtape


@pytest.fixture
def changer(vtape_library):
    with Changer.open(vtape_library.changer) as opened:
        yield opened


def test_status_of_a_fresh_library(changer):
    status = changer.status()
    assert len(status.transports) == 1 and len(status.drives) == 2
    assert [s.barcode for s in status.slots[:8]] == [f"VT{n:04d}L8" for n in range(1, 9)]
    assert status.slot(16).barcode == "CLN001L1"
    assert [s.number for s in status.slots if s.import_export] == [17, 18]
    assert not any(d.full for d in status.drives)


def test_drive_serials_match_the_drives_own(changer, vtape_library):
    status = changer.status()
    for number, path in enumerate(vtape_library.drives):
        with Drive.open(path) as drive:
            assert status.drive(number).serial == drive.serial_number()
    assert status.drive(0).product == "ULT3580-TD8"


def test_load_records_the_source_slot(changer):
    changer.load(3, 1)
    status = changer.status()
    assert (status.drive(1).barcode, status.drive(1).loaded_slot) == ("VT0003L8", 3)
    assert not status.slot(3).full


def test_unload_returns_to_the_source_slot(changer):
    changer.load(2, 0)
    assert changer.unload(drive=0) == 2
    assert changer.status().slot(2).barcode == "VT0002L8"


def test_unload_goes_to_first_free_slot_when_source_is_taken(changer):
    changer.load(2, 0)
    changer.transfer(1, 2)
    assert changer.unload(drive=0) == 1
    status = changer.status()
    assert (status.slot(1).barcode, status.slot(2).barcode) == ("VT0002L8", "VT0001L8")


def test_unload_to_a_chosen_slot(changer):
    changer.load(1, 0)
    assert changer.unload(slot=12, drive=0) == 12
    assert changer.status().slot(12).barcode == "VT0001L8"


def test_unload_of_a_threaded_tape_unloads_it_first(changer, vtape_library):
    changer.load(1, 0)
    with Drive.open(vtape_library.drives[0]) as drive:
        drive.request_sense()
        drive.write_block(b"data")
    changer.unload(drive=0)
    assert not changer.status().drive(0).full


def test_transfer_to_import_export_slot(changer):
    changer.transfer(5, 17)
    status = changer.status()
    assert status.slot(17).barcode == "VT0005L8" and status.slot(17).import_export


def test_loading_a_full_drive_is_refused(changer):
    changer.load(1, 0)
    with pytest.raises(errors.DestinationElementFull, match="MOVE MEDIUM: destination element full"):
        changer.load(2, 0)


def test_loading_from_an_empty_slot_is_refused(changer):
    with pytest.raises(errors.SourceElementEmpty, match="source element empty"):
        changer.load(10, 0)


def test_nonexistent_slot_and_drive(changer):
    with pytest.raises(ChangerError, match="slot 99 does not exist"):
        changer.load(99, 0)
    with pytest.raises(ChangerError, match="drive 5 does not exist"):
        changer.load(1, 5)


def test_unload_of_an_empty_drive(changer):
    with pytest.raises(ChangerError, match="drive 1 is empty"):
        changer.unload(drive=1)


def test_locked_drive_cannot_be_unloaded(changer, vtape_library):
    changer.load(1, 0)
    with Drive.open(vtape_library.drives[0]) as drive:
        drive.request_sense()
        drive.lock()
        with pytest.raises(errors.MediumRemovalPrevented):
            changer.unload(drive=0)
        drive.unlock()
    changer.unload(drive=0)


def test_inventory_and_inquiry(changer):
    changer.inventory()
    identity = changer.inquiry()
    assert identity.device_type == 8 and identity.vendor


def test_library_without_import_export_slots(make_vtape_library):
    library = make_vtape_library(import_export_slots=0, storage_slots=4, cartridges=2, cleaning_cartridges=0)
    with Changer.open(library.changer) as changer:
        status = changer.status()
    assert [s.number for s in status.slots] == [1, 2, 3, 4] and not any(s.import_export for s in status.slots)


def test_drive_is_not_a_changer(vtape_library):
    with pytest.raises(errors.WrongDeviceType, match="not a medium changer"):
        Changer.open(vtape_library.drives[0])


def test_more_than_1000_slots_are_read_in_batches(make_vtape_library):
    library = make_vtape_library(storage_slots=1100, cartridges=3, cleaning_cartridges=0, import_export_slots=0)
    records = []
    with Changer.open(library.changer, records.append) as changer:
        status = changer.status()
    assert len(status.slots) == 1100 and status.slot(3).barcode == "VT0003L8"
    storage_queries = [r.cdb for r in records if r.cdb[0] == 0xB8 and r.cdb[1] & 0x0F == 2]
    assert len(storage_queries) == 2
    assert int.from_bytes(storage_queries[1][2:4], "big") == status.slot(1000).address + 1


def test_unit_attention_after_mail_slot_import_does_not_fail_status(vtape_library):
    vtape_library.control("add-cartridge", barcode="VT0100L8", shelf=True)
    vtape_library.control("insert", barcode="VT0100L8")
    records = []
    with Changer.open(vtape_library.changer, records.append) as changer:
        status = changer.status()
        assert status.slot(17).barcode == "VT0100L8" and status.slot(17).import_export
        changer.load(17, 0)
        assert changer.status().drive(0).loaded_slot == 17
    assert [r.sense.condition for r in records if r.sense] == ["import/export element accessed"]


@pytest.mark.parametrize("command", ["read element status", "move medium"])
def test_mail_slot_used_between_two_commands_does_not_fail_the_second(vtape_library, command):
    """The operator may put a tape in at any moment: a unit attention can answer any changer
    command, not just the first one after opening."""
    vtape_library.control("add-cartridge", barcode="VT0100L8", shelf=True)
    records = []
    with Changer.open(vtape_library.changer, records.append) as changer:
        status = changer.status()
        vtape_library.control("insert", barcode="VT0100L8")
        if command == "read element status":
            assert any(slot.volume_tag == "VT0100L8" for slot in changer.elements(IMPORT_EXPORT))
        else:
            changer.move(status.slot(1).address, status.drive(0).address, status)
            assert changer.status().drive(0).barcode == "VT0001L8"
    assert [r.sense.condition for r in records if r.sense] == ["import/export element accessed"]
