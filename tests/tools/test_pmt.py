"""Every pmt subcommand as a real subprocess against a real vtape daemon, over vtape's socket protocol
and again through the Linux SG_IO transport."""
import json

import pytest

from tapefs.device.changer import Changer
from tapefs.device.drive import Drive
from tapefs_tools.pmt import pmt as pmt_group
from tests.helpers.commands import isolated_env, one_error_line, run, run_json
from vtape.preload import preload_env

pytestmark = pytest.mark.vtape


# A second run through the Linux SG_IO transport is slow: the socket run is in the quick subset.
@pytest.fixture(params=["socket", pytest.param("sg_io", marks=pytest.mark.slow)])
def env(request, vtape_library, tmp_path):
    """The library's device paths, spoken to over vtape's socket protocol or, under vtape's
    LD_PRELOAD shim (a device path is then a character device with the sg major), through
    SgIoTransport's SG_IO ioctls: every test that reaches a device runs both ways."""
    env = isolated_env(tmp_path, TAPE=vtape_library.drives[0], CHANGER=vtape_library.changer)
    return preload_env(env) if request.param == "sg_io" else env


@pytest.fixture
def loaded(env, vtape_library):
    """Drive 0 holds VT0001L8, its unit attention already consumed (set up through the API,
    so each test spends its subprocesses on what it tests)."""
    with Changer.open(vtape_library.changer) as changer:
        changer.load(1, 0)
    with Drive.open(vtape_library.drives[0]) as drive:
        drive.request_sense()
    return env


def position(env) -> tuple[int, int]:
    status = run_json("pmt", "status", env=env)
    return status["file-number"], status["block-number"]


def write_file(env, data: bytes) -> None:
    run("pmt", "write", env=env, text=False, input=data)
    run("pmt", "weof", env=env)


def test_status_text_and_json(loaded):
    text = run("pmt", "status", env=loaded).stdout
    rows = dict(line.split(None, 1) for line in text.splitlines() if line.strip())
    assert rows["density"].strip() == "LTO8" and rows["medium-present"].strip() == "yes"
    data = run_json("pmt", "status", env=loaded)
    assert (data["vendor"], data["product"], data["density"]) == ("IBM", "ULT3580-TD8", "LTO8")
    assert (data["file-number"], data["block-number"], data["compression"]) == (0, 0, True)
    assert data["volume-mounts"] >= 1 and data["manufactured"] and data["alert-flags"] == []


def test_status_of_an_empty_drive(env):
    data = run_json("pmt", "status", env=env)
    assert data["medium-present"] is False and data["file-number"] is None


@pytest.mark.slow
def test_write_read_session_with_weof_fsf_bsf_asf_eod(loaded):
    write_file(loaded, b"file zero\n")
    write_file(loaded, b"file one\n")
    write_file(loaded, b"file two\n")
    assert position(loaded) == (3, 6)
    run("pmt", "rewind", env=loaded)
    assert position(loaded) == (0, 0)
    run("pmt", "fsf", "2", env=loaded)
    assert position(loaded) == (2, 4)
    assert run("pmt", "read", env=loaded, text=False).stdout == b"file two\n"
    run("pmt", "bsf", "2", env=loaded)              # before the filemark that ends file 1
    assert position(loaded) == (1, 3)
    run("pmt", "asf", "1", env=loaded)
    assert position(loaded) == (1, 2)
    assert run("pmt", "read", env=loaded, text=False).stdout == b"file one\n"
    run("pmt", "asf", "0", env=loaded)
    assert run("pmt", "read", env=loaded, text=False).stdout == b"file zero\n"
    run("pmt", "eod", env=loaded)
    assert position(loaded) == (3, 6)


@pytest.mark.slow
def test_record_and_filemark_spacing(loaded):
    run("pmt", "write", "--block-size", "4", env=loaded, text=False, input=b"aaaabbbbcccc")  # three records
    run("pmt", "weof", "2", env=loaded)
    assert position(loaded) == (2, 5)
    run("pmt", "rewind", env=loaded)
    run("pmt", "fsr", "2", env=loaded)
    assert run("pmt", "read", "--block-size", "4", env=loaded, text=False).stdout == b"cccc"
    assert position(loaded) == (1, 4)              # the read passed the filemark
    run("pmt", "bsfm", "1", env=loaded)             # back before the filemark, then over it again
    assert position(loaded) == (1, 4)
    line = one_error_line(run("pmt", "bsr", "1", env=loaded, check=False))
    assert "SPACE(6): filemark detected (sense 0/00/01" in line
    assert position(loaded) == (0, 3)              # stopped on the filemark's beginning side
    run("pmt", "bsr", "2", env=loaded)
    assert position(loaded) == (0, 1)
    run("pmt", "rewind", env=loaded)
    run("pmt", "fsfm", "2", env=loaded)             # over two filemarks, then back before the second
    assert position(loaded) == (1, 4)


def test_fsf_past_end_of_data(loaded):
    write_file(loaded, b"only")
    run("pmt", "rewind", env=loaded)
    line = one_error_line(run("pmt", "fsf", "5", env=loaded, check=False))
    assert "SPACE(6): end of data (sense 8/00/05" in line


def test_weof_default_and_count(loaded):
    run("pmt", "weof", env=loaded)
    run("pmt", "weof", "3", env=loaded)
    assert position(loaded) == (4, 4)


@pytest.mark.slow
def test_eject_and_load(loaded):
    run("pmt", "eject", env=loaded)
    assert run_json("pmt", "status", env=loaded)["medium-present"] is False
    run("pmt", "load", env=loaded)
    run("pmt", "status", env=loaded)                # consumes the unit attention of the load
    assert run_json("pmt", "status", env=loaded)["medium-present"] is True


@pytest.mark.slow
def test_lock_and_unlock(loaded, vtape_library):
    run("pmt", "lock", env=loaded)
    line = one_error_line(run("pmt", "eject", env=loaded, check=False))
    assert line.startswith(f"pmt: error: {vtape_library.drives[0]}: LOAD/UNLOAD: medium removal prevented")
    assert "medium removal prevented" in one_error_line(run("pmtx", "unload", env=loaded, check=False))
    run("pmt", "unlock", env=loaded)
    run("pmtx", "unload", env=loaded)


@pytest.mark.slow
def test_erase_from_the_current_position(loaded):
    write_file(loaded, b"first")
    write_file(loaded, b"second")
    run("pmt", "asf", "1", env=loaded)
    run("pmt", "erase", env=loaded)
    run("pmt", "rewind", env=loaded)
    run("pmt", "eod", env=loaded)
    assert position(loaded) == (1, 2)
    run("pmt", "rewind", env=loaded)
    run("pmt", "erase", "--no-fast", env=loaded)
    run("pmt", "eod", env=loaded)
    assert position(loaded) == (0, 0)


@pytest.mark.slow
def test_format(loaded):
    write_file(loaded, b"data")
    run("pmt", "format", env=loaded)
    assert position(loaded) == (0, 0)
    line = one_error_line(run("pmt", "read", env=loaded, text=False, check=False))
    assert "READ(6): end of data" in line


def test_options(loaded):
    data = run_json("pmt", "options", "--compression", "false", "--blocksize", "65536", env=loaded)
    assert data == {"compression": False, "blocksize": 65536, "buffer-mode": True}
    assert run_json("pmt", "status", env=loaded)["blocksize"] == 65536
    assert run_json("pmt", "options", "--buffer_mode", "false", env=loaded)["buffer-mode"] is False
    text = run("pmt", "options", "--defaults", env=loaded).stdout
    assert "compression  yes" in text and "blocksize    0" in text


def test_tape_alert_flags(loaded, vtape_library):
    assert run("pmt", "tape-alert-flags", env=loaded).stdout.strip() == "no TapeAlert flags set"
    vtape_library.control("fault", device="drive0", tape_alerts=[0x14])
    assert run("pmt", "tape-alert-flags", env=loaded).stdout.strip() == "0x14 clean now"
    assert run_json("pmt", "tape-alert-flags", env=loaded) == [{"flag": 20, "name": "clean now"}]
    assert run_json("pmt", "status", env=loaded)["alert-flags"] == ["clean now"]


def test_volume_statistics(loaded):
    data = run_json("pmt", "volume-statistics", env=loaded)
    assert data["barcode"] == "VT0001L8" and data["volume-mounts"] >= 1 and 0 <= data["medium-wearout"] < 1
    text = run("pmt", "volume-statistics", env=loaded).stdout
    assert any(line.startswith("barcode") and "VT0001L8" in line for line in text.splitlines())


def test_cartridge_memory(loaded):
    attributes = {a["id"]: a for a in run_json("pmt", "cartridge-memory", env=loaded)}
    assert attributes["0806"]["value"] == "VT0001L8" and attributes["0806"]["name"] == "Barcode"
    assert len(attributes["0406"]["value"]) == 8
    text = run("pmt", "cartridge-memory", env=loaded).stdout
    assert any("0003" in line and "Load Count" in line for line in text.splitlines())


def test_scan(env, vtape_library):
    lines = run("pmt", "scan", "--vtape-library", str(vtape_library.path), env=env).stdout.splitlines()
    assert [line.split(" (")[0] for line in lines] == vtape_library.drives
    assert all(" (IBM/ULT3580-TD8/VT" in line and line.endswith(")") for line in lines)
    found = run_json("pmt", "scan", env=dict(env, VTAPE_LIBRARIES=str(vtape_library.path)))
    assert [d["kind"] for d in found] == ["drive", "drive"] and all(d["serial"] for d in found)


def test_raw_inquiry_hex_dump(env):
    out = run("pmt", "raw", "12", "00", "00", "00", "24", "00", env=env).stdout
    assert out.startswith("INQUIRY [12 00 00 00 24 00]: GOOD, 36 bytes in")
    assert "49 42 4d 20" in out and "IBM" in out


def test_raw_check_condition_shows_decoded_sense(env):
    proc = run("pmt", "raw", "01 00 00 00 00 00", env=env, check=False)
    assert proc.returncode == 1
    out = proc.stdout
    assert "CHECK CONDITION" in out and "sense: medium not present (sense 2/3A/00 NOT READY" in out
    data = json.loads(run("pmt", "raw", "010000000000", "--output-format", "json", env=env, check=False).stdout)
    assert data["sense"]["asc"] == 0x3A and data["status"] == 2


def test_raw_with_data_out_writes_a_block(loaded):
    run("pmt", "raw", "0a 00 00 00 05 00", "--data-out-hex", "68656c6c6f", env=loaded)
    run("pmt", "rewind", env=loaded)
    assert run("pmt", "read", env=loaded, text=False).stdout == b"hello"


def test_raw_rejects_a_bad_cdb(env):
    line = one_error_line(run("pmt", "raw", "12", "00", env=env, check=False))
    assert line == "pmt: error: a CDB is 6 to 16 bytes, '12 00' has 2"


def test_trace_prints_cdbs_status_sense_and_duration(env, vtape_library):
    proc = run("pmt", "--trace", "rewind", env=env, check=False)
    trace = [line for line in proc.stderr.splitlines() if line.startswith("trace: ")]
    assert trace[0].startswith(f"trace: {vtape_library.drives[0]}: INQUIRY [12 00 00 00 24 00] out=0 in=36 -> GOOD")
    assert "TEST UNIT READY [00 00 00 00 00 00]" in trace[1]  # opening checks for a load to absorb
    assert "REWIND [01 00 00 00 00 00]" in trace[2] and "sense: medium not present" in trace[2]
    assert " ms)" in trace[2]


def test_empty_drive_error_line(env, vtape_library):
    line = one_error_line(run("pmt", "rewind", env=env, check=False))
    assert line == (f"pmt: error: {vtape_library.drives[0]}: REWIND: medium not present "
                    "(sense 2/3A/00 NOT READY, medium not present)")


def test_the_first_command_after_a_changer_load_works(env):
    # A real drive reports "medium may have changed" once after a load; pmt absorbs it on open,
    # as the Linux st driver does, instead of failing the user's first command.
    run("pmtx", "load", "1", env=env)
    run("pmt", "rewind", env=env)


# Each command right after a fresh load, and what it should then do: succeed, or fail with its own
# condition (spacing backwards from the beginning of the tape), never with the load's unit attention.
AFTER_LOAD = [
    (("asf", "1"), None), (("fsf", "1"), None), (("fsfm", "1"), None), (("fsr", "1"), None),
    (("bsf", "1"), "beginning of"), (("bsfm", "1"), "beginning of"), (("bsr", "1"), "beginning of"),
    (("eod",), None), (("rewind",), None), (("weof",), None), (("erase",), None), (("format",), None),
    (("load",), None), (("eject",), None), (("lock",), None), (("unlock",), None), (("status",), None),
    (("options",), None), (("tape-alert-flags",), None), (("volume-statistics",), None),
    (("cartridge-memory",), None), (("encryption",), None), (("read",), None), (("write",), None),
]


def test_the_after_load_list_covers_every_command_that_opens_the_drive():
    opening = set(pmt_group.commands) - {"scan", "raw"}
    assert opening == {args[0] for args, _ in AFTER_LOAD}


@pytest.mark.slow
def test_every_command_works_right_after_a_load(vtape_library, tmp_path):
    env = isolated_env(tmp_path, TAPE=vtape_library.drives[0], CHANGER=vtape_library.changer)
    with Changer.open(vtape_library.changer) as changer:
        for args, expected_error in AFTER_LOAD:
            if changer.status().drive(0).full:
                changer.unload(drive=0)
            changer.load(1, 0)  # queues "medium may have changed" on the drive
            if args[0] in ("read", "fsf", "fsfm", "asf", "fsr"):
                with Drive.open(vtape_library.drives[0]) as drive:  # something to read, then a new load
                    drive.write_block(b"file zero")
                    drive.write_filemarks(2)
                changer.unload(drive=0)
                changer.load(1, 0)
            proc = run("pmt", *args, env=env, check=False, input=b"data" if args[0] == "write" else None,
                       text=False)
            stderr = proc.stderr.decode()
            if expected_error is None:
                assert proc.returncode == 0, f"pmt {' '.join(args)} after a load: {stderr}"
            else:
                assert expected_error in one_error_line(proc), f"pmt {' '.join(args)}: {stderr}"
            assert "medium may have changed" not in stderr
            if args[0] == "lock":  # let the changer take the tape for the next command
                with Drive.open(vtape_library.drives[0]) as drive:
                    drive.unlock()


@pytest.mark.slow
def test_a_tape_that_does_not_become_ready_in_time(make_vtape_library, tmp_path):
    library = make_vtape_library(timing=True, drives=1, cartridges=1, cleaning_cartridges=0,
                                 timing_overrides={"load_seconds": 60.0})
    env = isolated_env(tmp_path, TAPE=library.drives[0])
    with Changer.open(library.changer) as changer:
        changer.load(1, 0)
    for argv in (("--ready-timeout", "0.5", "rewind"), ("rewind", "--ready-timeout", "0.5")):
        proc = run("pmt", *argv, env=env, check=False)
        assert proc.returncode == 5
        assert one_error_line(proc) == (f"pmt: error: {library.drives[0]}: the drive did not become ready "
                                        "within 0.5 s (it still reports: drive is becoming ready)")


def test_write_protected_cartridge(env, vtape_library):
    vtape_library.control("write-protect", barcode="VT0002L8", on=True)
    run("pmtx", "load", "2", env=env)
    run("pmt", "status", env=env)
    line = one_error_line(run("pmt", "weof", env=env, check=False))
    assert "WRITE FILEMARKS(6): write protected (sense 7/27/00" in line


def test_a_changer_is_not_a_drive(env, vtape_library):
    line = one_error_line(run("pmt", "status", "--device", vtape_library.changer, env=env, check=False))
    assert line == f"pmt: error: {vtape_library.changer}: not a tape drive (INQUIRY reports changer)"


@pytest.mark.parametrize("name, make", [
    ("missing", None),
    ("regular", lambda p: p.write_text("not a tape")),
    ("directory", lambda p: p.mkdir()),
])
def test_paths_that_are_not_drives(env, tmp_path, name, make):
    path = tmp_path / name
    if make:
        make(path)
    line = one_error_line(run("pmt", "rewind", "--device", str(path), env=env, check=False))
    assert line.startswith(f"pmt: error: {path}: ")
    assert ("no such device" if make is None else "not a vtape device socket or a SCSI generic device") in line


def test_no_device_given(tmp_path):
    proc = run("pmt", "status", env=isolated_env(tmp_path), check=False)
    assert proc.returncode == 2
    assert one_error_line(proc) == ("pmt: error: no drive/device specified "
                                "(use --drive, --device or the TAPE environment variable)")


def test_drive_by_name_from_tape_cfg(vtape_library, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "tape.cfg").write_text(f"lto: left\n\tpath {vtape_library.drives[0]}\n\n"
                                     f"lto: right\n\tpath {vtape_library.drives[1]}\n")
    env = isolated_env(tmp_path)
    assert run_json("pmt", "status", "--drive", "right", env=env)["serial"].endswith("01")
    assert run_json("pmt", "status", env=dict(env, PROXMOX_TAPE_DRIVE="left"))["serial"].endswith("00")


def test_hardware_encryption(loaded, tmp_path):
    assert run_json("pmt", "encryption", env=loaded)["mode"] == "off"
    key = tmp_path / "key"
    key.write_text("00112233445566778899aabbccddeeff" * 2 + "\n")
    status = run_json("pmt", "encryption", "--key-file", str(key), env=loaded)
    assert status["mode"] == "mixed" and status["key-instance-counter"] >= 1
    assert run_json("pmt", "encryption", "--clear", env=loaded)["mode"] == "off"
    key.write_bytes(b"short")
    line = one_error_line(run("pmt", "encryption", "--key-file", str(key), env=loaded, check=False))
    assert line.endswith("an AES-256 key is 32 raw bytes or 64 hex digits; the key file has 5 bytes")
    key.write_text("zz" * 32 + "\n")
    line = one_error_line(run("pmt", "encryption", "--key-file", str(key), env=loaded, check=False))
    assert line.endswith("the key file has 64 characters, but they are not hex digits "
                         "(an AES-256 key is 32 raw bytes or 64 hex digits)")


def test_raw_rejects_bad_data_out_hex(env):
    proc = run("pmt", "raw", "0a 00 00 00 01 00", "--data-out-hex", "zz", env=env, check=False)
    assert proc.returncode == 2 and "Invalid value for --data-out-hex: 'zz' is not hex" in proc.stderr
