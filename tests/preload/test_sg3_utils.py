"""sg3-utils 1.46 tools through the shim against a real library."""
from __future__ import annotations

import re

import pytest

from tests.helpers.preload_tools import load_tape, run_tool

pytestmark = pytest.mark.vtape


def fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            out.setdefault(key.strip(), value.strip())
    return out


def test_sg_inq_drive_and_changer(vtape_library):
    lib = vtape_library
    state = lib.control("status")
    out = run_tool(lib, "sg_inq", lib.drives[0]).stdout
    assert "Peripheral device type: tape" in out
    f = fields(out)
    assert f["Vendor identification"] == "IBM" and f["Product identification"] == "ULT3580-TD8"
    assert f["Unit serial number"] == state["drives"][0]["serial"]
    out = run_tool(lib, "sg_inq", lib.changer).stdout
    assert "Peripheral device type: medium changer" in out
    assert fields(out)["Unit serial number"] == state["changer"]["serial"]


def test_sg_vpd(vtape_library):
    lib = vtape_library
    out = run_tool(lib, "sg_vpd", lib.drives[0]).stdout
    for page in ("Supported VPD pages", "Unit serial number", "Device identification"):
        assert page in out
    out = run_tool(lib, "sg_vpd", "-p", "di", lib.drives[1]).stdout
    serial = lib.control("status")["drives"][1]["serial"]
    assert "vendor id: IBM" in out
    assert re.search(rf"vendor specific: ULT3580-TD8\s+{serial}", out), out
    assert re.search(r"designator type: NAA.*\n\s+0x5[0-9a-f]{15}", out), out
    out = run_tool(lib, "sg_vpd", "-p", "sn", lib.changer).stdout
    assert lib.control("status")["changer"]["serial"] in out


def test_sg_logs_pages(vtape_library):
    lib = vtape_library
    load_tape(lib, slot=1)
    out = run_tool(lib, "sg_logs", lib.drives[0]).stdout
    listed = set(re.findall(r"^\s+0x([0-9a-f]{2})\s", out, re.M))
    assert {"00", "0c", "11", "12", "17", "2e", "31"} <= listed, out

    out = run_tool(lib, "sg_logs", "-a", lib.drives[0]).stdout
    for title in ("Sequential access device page", "DT device status page", "Volume statistics page",
                  "Tape alert page", "Tape capacity page"):
        assert title in out, (title, out)
    assert "Volume barcode: VT0001L8" in out
    assert "MPRSNT=1" in out                 # DT device status: medium present

    out = run_tool(lib, "sg_logs", "-A", lib.drives[0]).stdout
    assert "Volume statistics page" in out and "Tape alert page" in out
    assert re.search(r"0x00,0xff\s+Supported log pages and subpages", out) or "subpages" in out, out


def test_sg_logs_decodes_tape_alert(vtape_library):
    lib = vtape_library
    load_tape(lib, slot=2)
    out = run_tool(lib, "sg_logs", "-p", "0x2e", lib.drives[0]).stdout
    flags = dict(re.findall(r"^\s+([A-Za-z][^:\n]*): ([01])$", out, re.M))
    assert len(flags) == 64 and set(flags.values()) == {"0"}, out
    lib.control("fault", device="drive0", tape_alerts=[3, 20])
    out = run_tool(lib, "sg_logs", "-p", "0x2e", lib.drives[0]).stdout
    flags = dict(re.findall(r"^\s+([A-Za-z][^:\n]*): ([01])$", out, re.M))
    assert flags["Hard error"] == "1" and flags["Cleaning required"] == "1", out
    assert sum(v == "1" for v in flags.values()) == 2


def test_sg_modes_all_pages(vtape_library):
    lib = vtape_library
    load_tape(lib, slot=1)
    out = run_tool(lib, "sg_modes", "-a", lib.drives[0]).stdout
    assert "peripheral_type: tape" in out and "Density code=0x5e" in out
    for page in ("Data Compression", "Device configuration", "Medium Partition", "Medium configuration"):
        assert f">> {page}" in out, (page, out)
    out = run_tool(lib, "sg_modes", "-a", lib.changer).stdout
    for page in ("Element address assignment", "Transport geometry parameters", "Device capabilities"):
        assert f">> {page}" in out, (page, out)
    # Changeable (PC=1) and default (PC=2) values are served too.
    run_tool(lib, "sg_modes", "-a", "-c", "1", lib.drives[0])
    run_tool(lib, "sg_modes", "-a", "-c", "2", lib.drives[0])


def test_sg_read_attr(vtape_library):
    lib = vtape_library
    load_tape(lib, slot=5)
    out = run_tool(lib, "sg_read_attr", lib.drives[0]).stdout
    f = fields(out)
    assert f["Barcode"] == "VT0005L8"
    assert f["Medium density code"] == "0x5e" and int(f["Load count"]) >= 1
    assert "Maximum capacity in partition [MiB]" in f
    out = run_tool(lib, "sg_read_attr", "-s", "1", lib.drives[0]).stdout
    assert "Attribute list:" in out and "Barcode" in out
    out = run_tool(lib, "sg_read_attr", "-s", "3", lib.drives[0]).stdout
    assert "Number of partitions available: 1" in out
    out = run_tool(lib, "sg_read_attr", "-s", "5", lib.drives[0]).stdout
    assert "Supported attribute list:" in out and "Medium serial number" in out


def test_sg_opcodes(vtape_library):
    lib = vtape_library
    out = run_tool(lib, "sg_opcodes", lib.drives[0]).stdout
    for name in ("Test Unit Ready", "Read(6)", "Write(6)", "Read position", "Log sense", "Mode sense(10)",
                 "Report supported operation codes"):
        assert name in out, (name, out)
    out = run_tool(lib, "sg_opcodes", "-o", "0x08", lib.drives[0]).stdout
    assert "Command_name: Read(6)" in out and "Command is supported" in out
    out = run_tool(lib, "sg_opcodes", lib.changer).stdout
    for name in ("Move medium", "Read element status", "Exchange medium", "Initialize element status"):
        assert name in out, (name, out)


def test_sg_turs_and_sg_requests(vtape_library):
    lib = vtape_library
    proc = run_tool(lib, "sg_turs", lib.drives[0], check=False)
    assert proc.returncode == 2 and "not ready" in (proc.stdout + proc.stderr).lower()
    proc = run_tool(lib, "sg_requests", lib.drives[0])
    out = proc.stdout + proc.stderr       # sg_requests decodes the sense to stderr
    assert "Not Ready" in out and "Medium not present" in out and "sense_key=2" in out
    raw = run_tool(lib, "sg_requests", "-H", lib.drives[0]).stdout
    assert raw.split()[1:3] == ["70", "00"] and raw.split()[3] == "02" and raw.split()[13] == "3a"
    run_tool(lib, "sg_turs", lib.changer)
    load_tape(lib, slot=6)
    run_tool(lib, "sg_turs", "-n", "5", lib.drives[0])
    proc = run_tool(lib, "sg_requests", lib.drives[0])
    assert "No Sense" in proc.stdout + proc.stderr
    proc = run_tool(lib, "sg_requests", "-d", lib.drives[0])   # DESC=1: fixed format is allowed
    assert "No Sense" in proc.stdout + proc.stderr


def test_sg_raw_round_trip(vtape_library, tmp_path):
    """sg_raw: arbitrary CDBs with data-out from and data-in to files."""
    lib = vtape_library
    load_tape(lib, slot=7)
    block = bytes(range(256)) * 16
    (tmp_path / "in.bin").write_bytes(block)
    run_tool(lib, "sg_raw", "-s", len(block), "-i", tmp_path / "in.bin", lib.drives[0], "0a", "00", "00", "10", "00", "00")
    run_tool(lib, "sg_raw", lib.drives[0], "10", "00", "00", "00", "01", "00")
    run_tool(lib, "sg_raw", lib.drives[0], "01", "00", "00", "00", "00", "00")
    run_tool(lib, "sg_raw", "-r", len(block), "-o", tmp_path / "out.bin", lib.drives[0],
             "08", "00", "00", "10", "00", "00")
    assert (tmp_path / "out.bin").read_bytes() == block
