"""mtx, tapeinfo and loaderinfo (Debian mtx 1.3.12) through the shim against a real library."""
from __future__ import annotations

import re

import pytest

from tests.helpers.preload_tools import drive_state, load_tape, run_tool

pytestmark = pytest.mark.vtape

DRIVE_LINE = re.compile(r"^Data Transfer Element (\d+):(Empty|Full)(?: \(Storage Element (\d+) Loaded\))?"
                        r"(?::VolumeTag = (\S+))?")
SLOT_LINE = re.compile(r"^\s+Storage Element (\d+)( IMPORT/EXPORT)?:(Empty|Full)(?: :VolumeTag=(\S+))?")


def parse_status(text: str) -> dict:
    """mtx status -> {"drives": {n: (barcode, source slot)}, "slots": {n: barcode}, "ie": {n, ...}}."""
    drives, slots, ie = {}, {}, set()
    header = None
    for line in text.splitlines():
        if "Storage Changer" in line:
            header = re.search(r"(\d+) Drives, (\d+) Slots \( (\d+) Import/Export \)", line).groups()
        elif m := DRIVE_LINE.match(line):
            full = m.group(2) == "Full"
            drives[int(m.group(1))] = (m.group(4) if full else None, int(m.group(3)) if m.group(3) else None)
        elif m := SLOT_LINE.match(line):
            slots[int(m.group(1))] = m.group(4) if m.group(3) == "Full" else None
            if m.group(2):
                ie.add(int(m.group(1)))
    return {"header": tuple(map(int, header)) if header else None, "drives": drives, "slots": slots, "ie": ie}


def library_view(lib) -> dict:
    """The same shape from the daemon's own status (the control socket)."""
    state = lib.control("status")
    drives = {i: (d["barcode"], d.get("source_slot")) for i, d in enumerate(state["drives"])}
    slots = {e["slot"]: e["barcode"] for e in state["storage"] + state["import_export"]}
    ie = {e["slot"] for e in state["import_export"]}
    return {"header": (len(drives), len(slots), len(ie)), "drives": drives, "slots": slots, "ie": ie}


def mtx(lib, *args, check=True):
    return run_tool(lib, "mtx", "-f", lib.changer, *args, check=check)


def test_status_matches_library(vtape_library):
    lib = vtape_library
    status = parse_status(mtx(lib, "status").stdout)
    assert status == library_view(lib)
    assert status["header"] == (2, 18, 2)
    assert status["slots"][1] == "VT0001L8" and status["slots"][8] == "VT0008L8"
    assert status["slots"][16] == "CLN001L1" and status["slots"][9] is None
    assert status["ie"] == {17, 18} and status["drives"] == {0: (None, None), 1: (None, None)}


def test_status_with_changer_from_environment(vtape_library):
    """run-with sets CHANGER, so plain `mtx status` finds the library."""
    proc = run_tool(vtape_library, "mtx", "status")
    assert parse_status(proc.stdout)["slots"][2] == "VT0002L8"


def test_load_unload_transfer(vtape_library):
    lib = vtape_library
    out = mtx(lib, "load", "1", "0").stdout
    assert "Loading media from Storage Element 1 into drive 0...done" in out
    status = parse_status(mtx(lib, "status").stdout)
    assert status["drives"][0] == ("VT0001L8", 1) and status["slots"][1] is None
    assert status == library_view(lib)
    assert drive_state(lib)["loaded"] is True

    out = mtx(lib, "unload", "1", "0").stdout
    assert "Unloading drive 0 into Storage Element 1...done" in out
    mtx(lib, "load", "2", "1")
    assert library_view(lib)["drives"][1] == ("VT0002L8", 2)
    proc = mtx(lib, "unload", "5", "1", check=False)   # slot 5 is full: refused, tape stays put
    assert proc.returncode != 0
    assert library_view(lib)["drives"][1] == ("VT0002L8", 2)


def test_unload_to_other_slot_and_transfer(vtape_library):
    lib = vtape_library
    mtx(lib, "load", "3", "1")
    mtx(lib, "unload", "10", "1")
    view = library_view(lib)
    assert view["slots"][10] == "VT0003L8" and view["slots"][3] is None and view["drives"][1] == (None, None)
    mtx(lib, "transfer", "10", "11")
    view = library_view(lib)
    assert view["slots"][11] == "VT0003L8" and view["slots"][10] is None
    mtx(lib, "transfer", "11", "17")          # into a mail slot
    assert parse_status(mtx(lib, "status").stdout)["slots"][17] == "VT0003L8"


def test_errors_are_reported(vtape_library):
    lib = vtape_library
    proc = mtx(lib, "load", "9", "0", check=False)        # slot 9 is empty
    assert proc.returncode != 0
    proc = mtx(lib, "transfer", "1", "2", check=False)    # slot 2 is full
    assert proc.returncode != 0
    proc = mtx(lib, "unload", "1", "0", check=False)      # drive 0 is empty
    assert proc.returncode != 0
    assert library_view(lib)["slots"][1] == "VT0001L8"


def test_inventory_position_inquiry(vtape_library):
    lib = vtape_library
    mtx(lib, "inventory")
    mtx(lib, "position", "1")
    out = mtx(lib, "inquiry").stdout
    assert "Product Type: Medium Changer" in out and "VTL-LTO" in out
    assert parse_status(mtx(lib, "status").stdout) == library_view(lib)


def test_exchange(vtape_library):
    lib = vtape_library
    mtx(lib, "exchange", "1", "2")          # EXCHANGE MEDIUM: swap two full slots
    view = library_view(lib)
    assert view["slots"][1] == "VT0002L8" and view["slots"][2] == "VT0001L8"
    mtx(lib, "exchange", "1", "2", "9")     # 1 -> 2, 2 -> 9
    view = library_view(lib)
    assert (view["slots"][1], view["slots"][2], view["slots"][9]) == (None, "VT0002L8", "VT0001L8")


def test_tapeinfo_empty_drive(vtape_library):
    lib = vtape_library
    out = run_tool(lib, "tapeinfo", "-f", lib.drives[0]).stdout
    serial = lib.control("status")["drives"][0]["serial"]
    assert "Product Type: Tape Drive" in out
    assert "Product ID: 'ULT3580-TD8     '" in out and f"SerialNumber: '{serial}'" in out
    assert "SCSI LUN: 0" in out and "Ready: no" in out


def test_tapeinfo_loaded_drive(vtape_library):
    lib = vtape_library
    load_tape(lib, slot=4, drive=1)
    out = run_tool(lib, "tapeinfo", "-f", lib.drives[1]).stdout
    serial = lib.control("status")["drives"][1]["serial"]
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    assert fields["Vendor ID"] == "'IBM     '" and fields["Product ID"] == "'ULT3580-TD8     '"
    assert fields["SerialNumber"] == f"'{serial}'"
    assert fields["Ready"] == "yes" and fields["BOP"] == "yes" and fields["Block Position"] == "0"
    assert fields["Density Code"] == "0x5e"            # LTO-8
    assert fields["MinBlock"] == "1" and int(fields["MaxBlock"]) >= 262144
    assert fields["BlockSize"] == "0"                  # variable block mode


def test_tapeinfo_shows_tape_alerts(vtape_library):
    lib = vtape_library
    load_tape(lib, slot=4, drive=0)
    lib.control("fault", device="drive0", tape_alerts=[0x14])   # 20: cleaning required
    out = run_tool(lib, "tapeinfo", "-f", lib.drives[0]).stdout
    assert re.search(r"^TapeAlert\[20\]:\s+Clean Now", out, re.M), out


def test_loaderinfo(vtape_library):
    lib = vtape_library
    out = run_tool(lib, "loaderinfo", "-f", lib.changer).stdout
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    assert fields["Product Type"] == "Medium Changer"
    assert fields["Number of Storage Elements"] == "16"
    assert fields["Number of Import/Export Elements"] == "2"
    assert fields["Number of Data Transfer Elements"] == "2"
    assert fields["Number of Medium Transport Elements"] == "1"
    assert fields["Bar Code Reader"] == "Yes"


def test_status_of_a_large_library(make_vtape_library):
    """More element data than mtx's first READ ELEMENT STATUS allocation: mtx must re-issue it with
    the byte count the changer reports."""
    lib = make_vtape_library(drives=4, storage_slots=120, import_export_slots=6, cartridges=90)
    status = parse_status(mtx(lib, "status").stdout)
    assert status == library_view(lib)
    assert status["header"] == (4, 126, 6)
    assert sum(1 for b in status["slots"].values() if b) == 91   # 90 data + 1 cleaning cartridge
