"""The vtape command line as real subprocesses."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers.commands import one_error_line, vtape

pytestmark = pytest.mark.vtape


@pytest.fixture
def libdir():
    root = Path(tempfile.mkdtemp(prefix="vt", dir="/tmp"))
    yield root / "lib"
    if (root / "lib" / "control").exists():
        vtape("stop", root / "lib", check=False)
    shutil.rmtree(root)


def one_line_error(result, text):
    assert text in one_error_line(result, program="vtape")


def test_create_start_status_stop(libdir):
    assert "2 drives" in vtape("create", libdir, "--cartridges", "3", "--ie-slots", "1").stdout
    assert "serving" in vtape("start", libdir).stdout
    state = json.loads(vtape("status", libdir, "--output-format", "json").stdout)
    assert state["daemon"] and [d["path"] for d in state["drives"]] == [str(libdir / "drive0"), str(libdir / "drive1")]
    assert [s["barcode"] for s in state["storage"][:4]] == ["VT0001L8", "VT0002L8", "VT0003L8", None]
    assert state["storage"][-1]["barcode"] == "CLN001L1" and len(state["import-export"]) == 1
    text = vtape("status", libdir).stdout
    assert "drive0" in text and "VT0002L8" in text
    assert "stopped" in vtape("stop", libdir).stdout
    assert "daemon: stopped" in vtape("status", libdir).stdout


def test_create_refuses_an_existing_library_and_leaves_it_alone(libdir):
    vtape("create", libdir)
    before = (libdir / "state.json").read_bytes()
    one_line_error(vtape("create", libdir, check=False), "already exists")
    assert (libdir / "state.json").read_bytes() == before


def test_bad_options_are_refused(libdir):
    one_line_error(vtape("create", libdir, "--cartridges", "20", check=False), "do not fit")
    assert not (libdir / "library.json").exists()
    result = vtape("create", libdir, "--capacity", "lots", check=False)
    assert result.returncode == 2 and "bad size" in result.stderr
    result = vtape("create", libdir, "--generation", "12", check=False)
    assert result.returncode == 2


def test_serve_and_stop_on_a_missing_library(libdir):
    one_line_error(vtape("serve", libdir, check=False), "no vtape library here")
    one_line_error(vtape("start", libdir, check=False), "no vtape library here")
    one_line_error(vtape("stop", libdir, check=False), "no vtape library here")


@pytest.mark.slow
def test_operator_actions_without_and_with_a_daemon(libdir):
    vtape("create", libdir, "--cartridges", "2")
    assert "on the shelf" in vtape("add-cartridge", libdir, "EX0001L8", "--shelf").stdout
    assert "slot 17" in vtape("insert", libdir, "EX0001L8").stdout
    one_line_error(vtape("insert", libdir, "EX0001L8", check=False), "already in the library")
    vtape("start", libdir)
    assert "on the shelf" in vtape("remove", libdir, "EX0001L8").stdout
    one_line_error(vtape("remove", libdir, "EX0001L8", check=False), "not in an import/export slot")
    assert "slot 3" in vtape("add-cartridge", libdir, "EX0002L8", "--capacity", "64MiB").stdout
    one_line_error(vtape("add-cartridge", libdir, "bad", check=False), "is not 6 characters")
    one_line_error(vtape("add-cartridge", libdir, "EX0002L8", check=False), "already exists")
    assert "write protect on" in vtape("write-protect", libdir, "EX0002L8").stdout
    state = json.loads(vtape("status", libdir, "--output-format", "json").stdout)
    cart = next(c for c in state["cartridges"] if c["barcode"] == "EX0002L8")
    assert cart["write-protected"] and cart["capacity"] == 64 * 1024 * 1024
    assert [c["in-library"] for c in state["cartridges"] if c["barcode"] == "EX0001L8"] == [False]


def test_fault_command_validates_its_input(libdir):
    vtape("create", libdir)
    vtape("start", libdir)
    assert json.loads(vtape("fault", libdir, "drive0", "--fail-next", "2").stdout)["pending-failures"] == 2
    one_line_error(vtape("fault", libdir, "drive7", "--fail-next", "1", check=False), "no device 'drive7'")
    one_line_error(vtape("fault", libdir, "drive0", "--tape-alert", "99", check=False), "outside 1..64")
    one_line_error(vtape("fault", libdir, "drive0", "--media-error-at", "3", check=False), "holds no cartridge")
    one_line_error(vtape("fault", libdir, "drive0", "--stale-inventory", check=False), "applies to the changer")


@pytest.mark.slow
def test_demo_runs_the_whole_tour():
    result = vtape("demo")
    assert "identical" in result.stdout and "daemon stopped" in result.stdout


def test_add_cartridges_from_a_label_list(libdir, tmp_path):
    vtape("create", libdir, "--cartridges", "1", "--cleaning", "0", "--slots", "6")
    labels = tmp_path / "labels.txt"
    labels.write_text("# new tapes\nTAP001L9\ntap002lz\n\nTAP003L7\n")
    assert "3 cartridges created in slots 2, 3, 4" in vtape("add-cartridges", libdir, "--from", labels).stdout
    state = json.loads(vtape("status", libdir, "--output-format", "json").stdout)
    cartridges = {c["barcode"]: c for c in state["cartridges"]}
    assert [s["barcode"] for s in state["storage"][:4]] == ["VT0001L8", "TAP001L9", "TAP002LZ", "TAP003L7"]
    assert cartridges["TAP002LZ"]["worm"] and not cartridges["TAP001L9"]["worm"]
    assert (cartridges["TAP001L9"]["generation"], cartridges["TAP003L7"]["generation"]) == (9, 7)
    # one bad label: nothing of the list is created
    labels.write_text("TAP004L9\nTAP05L9\n")
    one_line_error(vtape("add-cartridges", libdir, "--from", labels, check=False), "TAP05L9")
    assert "TAP004L9" not in vtape("status", libdir).stdout
    labels.write_text("TAP004L9\nTAP005L9\nTAP006L9\n")
    one_line_error(vtape("add-cartridges", libdir, "--from", labels, check=False), "only 2 free storage slots")
    assert "TAP004L9" not in vtape("status", libdir).stdout
