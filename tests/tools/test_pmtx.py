"""Every pmtx subcommand as a real subprocess against a real vtape daemon, over vtape's socket
protocol and again through the Linux SG_IO transport."""
import json

import pytest

from tests.helpers.commands import isolated_env, one_error_line, run, run_json
from vtape.preload import preload_env

pytestmark = pytest.mark.vtape


# A second run through the Linux SG_IO transport is slow: the socket run is in the quick subset.
@pytest.fixture(params=["socket", pytest.param("sg_io", marks=pytest.mark.slow)])
def env(request, vtape_library, tmp_path):
    """The library's device paths, spoken to over vtape's socket protocol or, under vtape's
    LD_PRELOAD shim (a device path is then a character device with the sg major), through
    SgIoTransport's SG_IO ioctls: every test that reaches a device runs both ways."""
    env = isolated_env(tmp_path, CHANGER=vtape_library.changer)
    return preload_env(env) if request.param == "sg_io" else env


def test_inquiry_text_and_json(env):
    text = run("pmtx", "inquiry", env=env).stdout
    assert "Type" in text and "changer" in text
    data = run_json("pmtx", "inquiry", env=env)
    assert data["peripheral-type"] == 8 and data["type"] == "changer" and data["vendor"]


def test_status_text_shows_slots_drives_and_serials(env, vtape_library):
    run("pmtx", "load", "4", "--drivenum", "1", env=env)
    text = run("pmtx", "status", env=env).stdout
    drive_line = next(line for line in text.splitlines() if "drive 1" in line)
    serial = run_json("pmtx", "status", env=env)["drives"][1]["serial"]
    assert "VT0004L8" in drive_line and serial in drive_line and " 4 " in drive_line
    assert any("import/export 17" in line and "empty" in line for line in text.splitlines())
    assert any("slot 16" in line and "CLN001L1" in line for line in text.splitlines())


def test_status_json_pretty(env):
    proc = run("pmtx", "status", "--output-format", "json-pretty", env=env)
    assert proc.stdout.startswith("{\n  ")
    data = json.loads(proc.stdout)
    assert len(data["drives"]) == 2 and len(data["slots"]) == 18 and len(data["transports"]) == 1
    assert data["slots"][0] == {"slot": 1, "element-address": data["slots"][0]["element-address"],
                                "import-export": False, "full": True, "barcode": "VT0001L8"}


@pytest.mark.slow
def test_load_unload_transfer(env):
    run("pmtx", "load", "2", env=env)
    drive = run_json("pmtx", "status", env=env)["drives"][0]
    assert (drive["barcode"], drive["loaded-slot"]) == ("VT0002L8", 2)
    run("pmtx", "transfer", "3", "2", env=env)
    run("pmtx", "unload", env=env)          # slot 2 is taken now: the first free slot is 3
    slots = run_json("pmtx", "status", env=env)["slots"]
    assert slots[2]["barcode"] == "VT0002L8" and slots[1]["barcode"] == "VT0003L8"
    run("pmtx", "load", "3", "--drivenum", "1", env=env)
    run("pmtx", "unload", "--slot", "17", "--drivenum", "1", env=env)
    assert run_json("pmtx", "status", env=env)["slots"][16]["barcode"] == "VT0002L8"


def test_inventory(env):
    proc = run("pmtx", "--trace", "inventory", env=env)
    assert "INITIALIZE ELEMENT STATUS [07 00 00 00 00 00]" in proc.stderr


def test_scan_lists_the_changer(env, vtape_library):
    text = run("pmtx", "scan", "--vtape-library", str(vtape_library.path), env=env).stdout
    assert f"{vtape_library.changer} (VTAPE/" in text
    found = run_json("pmtx", "scan", env=dict(env, VTAPE_LIBRARIES=str(vtape_library.path)))
    assert [d["path"] for d in found] == [vtape_library.changer] and found[0]["kind"] == "changer"


def test_raw_read_element_status(env):
    proc = run("pmtx", "raw", "b8", "14", "00", "00", "00", "02", "00", "00", "ff", "ff", "00", "00", env=env)
    out = proc.stdout
    assert out.startswith("READ ELEMENT STATUS [b8 14 00 00 00 02 00 00 ff ff 00 00]: GOOD")
    assert "00000000  " in out


def test_raw_json_reports_sense_and_fails(env):
    proc = run("pmtx", "raw", "a5 00 00 00 04 09 01 00 00 00 00 00", "--output-format", "json", env=env, check=False)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["status-name"] == "CHECK CONDITION"
    assert data["sense"]["condition"] == "source element empty"


def test_trace_prints_every_cdb(env):
    proc = run("pmtx", "status", "--trace", env=env)
    trace = proc.stderr
    assert "MODE SENSE(6) [1a 08 1d 00 ff 00]" in trace
    assert "READ ELEMENT STATUS [b8 04 00 00 03 e8 01 00 ff ff 00 00]" in trace
    assert all(line.startswith("trace: ") for line in trace.splitlines())


def test_nonexistent_slot(env, vtape_library):
    line = one_error_line(run("pmtx", "load", "99", env=env, check=False))
    assert line == f"pmtx: error: {vtape_library.changer}: slot 99 does not exist (the library has slots 1-18)"


def test_loading_into_a_full_drive(env, vtape_library):
    run("pmtx", "load", "1", env=env)
    line = one_error_line(run("pmtx", "load", "2", env=env, check=False))
    assert line.startswith(f"pmtx: error: {vtape_library.changer}: MOVE MEDIUM: destination element full (sense 5/3B/0D")


def test_loading_from_an_empty_slot(env, vtape_library):
    line = one_error_line(run("pmtx", "load", "12", env=env, check=False))
    assert "MOVE MEDIUM: source element empty (sense 5/3B/0E" in line


def test_unloading_an_empty_drive(env, vtape_library):
    line = one_error_line(run("pmtx", "unload", "--drivenum", "1", env=env, check=False))
    assert line == f"pmtx: error: {vtape_library.changer}: drive 1 is empty"


def test_a_drive_is_not_a_changer(env, vtape_library):
    line = one_error_line(run("pmtx", "status", "--device", vtape_library.drives[0], env=env, check=False))
    assert line == f"pmtx: error: {vtape_library.drives[0]}: not a medium changer (INQUIRY reports tape)"


def test_missing_changer_device(env, tmp_path):
    line = one_error_line(run("pmtx", "status", "--device", str(tmp_path / "gone"), env=env, check=False))
    assert line == f"pmtx: error: {tmp_path / 'gone'}: no such device"


def test_no_changer_given(tmp_path):
    proc = run("pmtx", "status", env=isolated_env(tmp_path), check=False)
    assert proc.returncode == 2
    assert one_error_line(proc).startswith("pmtx: error: no changer specified")


def test_changer_by_name_from_tape_cfg(vtape_library, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "tape.cfg").write_text(f"changer: vlib\n\tpath {vtape_library.changer}\n")
    data = run_json("pmtx", "inquiry", "--changer", "vlib", env=isolated_env(tmp_path))
    assert data["type"] == "changer"
    line = one_error_line(run("pmtx", "inquiry", "--changer", "other", env=isolated_env(tmp_path), check=False))
    assert "no changer named 'other'" in line
