"""Cleaning a drive of a real vtape library: the cleaning cartridge's cycles count down, the
drive's tape goes back in, expired cartridges are reported and skipped, and a cleaning
cartridge is never taken for a data tape."""
import json

import pytest

from tapefs.device.changer import Changer
from tapefs.jobs.cleaning import CleaningError, clean_drive
from tapefs.jobs.errors import JobError
from tapefs.media.errors import TapeDeviceError
from tapefs.media.tape_config import load_tape_config
from tapefs.media.tape_devices import load_media, load_media_from_slot
from tests.helpers.tape_setup import add_cartridges

pytestmark = pytest.mark.vtape


def add_cleaning_cartridge(library, barcode: str, cycles_left: int | None = None) -> None:
    """A new cleaning cartridge in a free slot; with ``cycles_left``, a worn one (its state is
    written before the daemon first opens it, as if it had been used that often)."""
    library.control("add-cartridge", barcode=barcode)
    if cycles_left is not None:
        meta_path = library.path / "cartridges" / barcode / "meta.json"
        meta = json.loads(meta_path.read_text())
        meta["cleaning_cycles_left"] = cycles_left
        meta_path.write_text(json.dumps(meta))


def cycles_on_cartridge(library, barcode: str) -> int:
    return json.loads((library.path / "cartridges" / barcode / "meta.json").read_text())["cleaning_cycles_left"]


def contents(library) -> tuple[list, list]:
    with Changer.open(str(library.changer)) as changer:
        status = changer.status()
    return [d.barcode for d in status.drives], [s.barcode for s in status.slots]


def drive0():
    config = load_tape_config()
    return config, config.drives["drive0"]


def test_cleaning_counts_a_cycle_down_and_puts_the_tape_back(tape_setup):
    library = tape_setup.library
    add_cartridges(library, 1, "16MiB", "2MiB")
    add_cleaning_cartridge(library, "CLN001L1")
    config, drive = drive0()
    load_media(config, drive, "SM0001L8")
    before = contents(library)

    first = clean_drive(config, drive, poll_interval=0.05)
    assert (first.cleaning_cartridge, first.slot, first.cycles_left, first.expired, first.reloaded) == (
        "CLN001L1", 2, 49, [], "SM0001L8")
    second = clean_drive(config, drive, poll_interval=0.05)
    assert second.cycles_left == 48
    assert cycles_on_cartridge(library, "CLN001L1") == 48
    assert contents(library) == before
    assert second.to_dict()["cycles-left"] == 48


def test_an_expired_cleaning_cartridge_is_reported_and_the_next_one_used(tape_setup):
    library = tape_setup.library
    add_cleaning_cartridge(library, "CLN001L1", cycles_left=0)
    add_cleaning_cartridge(library, "CLN002L1", cycles_left=3)
    config, drive = drive0()
    result = clean_drive(config, drive, poll_interval=0.05)
    assert (result.cleaning_cartridge, result.cycles_left, result.expired, result.reloaded) == (
        "CLN002L1", 2, ["CLN001L1"], None)
    assert cycles_on_cartridge(library, "CLN001L1") == 0
    assert contents(library)[1][:2] == ["CLN001L1", "CLN002L1"]


def test_only_expired_cleaning_cartridges_fail_by_name_and_leave_the_drive_as_it_was(tape_setup):
    library = tape_setup.library
    add_cartridges(library, 1, "16MiB", "2MiB")
    add_cleaning_cartridge(library, "CLN001L1", cycles_left=0)
    config, drive = drive0()
    load_media(config, drive, "SM0001L8")
    before = contents(library)
    with pytest.raises(CleaningError, match=r"every cleaning cartridge in changer lib is expired \(CLN001L1\)"):
        clean_drive(config, drive, poll_interval=0.05)
    assert contents(library) == before


def test_no_cleaning_cartridge_is_a_clear_error_and_moves_nothing(tape_setup):
    library = tape_setup.library
    add_cartridges(library, 1, "16MiB", "2MiB")
    config, drive = drive0()
    load_media(config, drive, "SM0001L8")
    before = contents(library)
    with pytest.raises(CleaningError, match="no cleaning cartridge .* in a storage slot of changer lib"):
        clean_drive(config, drive)
    assert contents(library) == before


def test_a_cleaning_cartridge_is_never_loaded_as_a_data_tape(tape_setup):
    library = tape_setup.library
    add_cleaning_cartridge(library, "CLN001L1")
    config, drive = drive0()
    with tape_setup.session() as session, pytest.raises(JobError, match="CLN001L1 is a cleaning cartridge"):
        session.load("CLN001L1")
    with pytest.raises(TapeDeviceError, match="CLN001L1 is a cleaning cartridge"):
        load_media(config, drive, "CLN001L1")
    with pytest.raises(TapeDeviceError, match="slot 1 holds cleaning cartridge CLN001L1"):
        load_media_from_slot(config, drive, 1)
    assert contents(library)[0] == [None, None]
    assert cycles_on_cartridge(library, "CLN001L1") == 50
