"""Device selection order of pmt and pmtx, with a real tape.cfg in a private config directory."""
import pytest

from tapefs.device.selection import DeviceSelectionError, select_changer, select_drive

TAPE_CFG = """\
changer: robot
\tpath /dev/robot

lto: left
\tpath /dev/left
\tchanger robot
\tchanger-drivenum 0

lto: right
\tpath /dev/right
"""


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEFS_CONFIG_DIR", str(tmp_path))
    (tmp_path / "tape.cfg").write_text(TAPE_CFG)
    return tmp_path


def test_drive_option_wins(config):
    assert select_drive("right", "/dev/other", {"TAPE": "/dev/env"}) == "/dev/right"


def test_device_before_environment(config):
    assert select_drive(None, "/dev/other", {"TAPE": "/dev/env"}) == "/dev/other"


def test_drive_name_from_environment_before_tape(config):
    assert select_drive(None, None, {"PROXMOX_TAPE_DRIVE": "left", "TAPE": "/dev/env"}) == "/dev/left"
    assert select_drive(None, None, {"TAPE": "/dev/env"}) == "/dev/env"


def test_two_configured_drives_need_a_choice(config):
    with pytest.raises(DeviceSelectionError, match="no drive/device specified"):
        select_drive(None, None, {})


def test_the_only_configured_drive_is_used(config):
    (config / "tape.cfg").write_text("lto: solo\n\tpath /dev/solo\n")
    assert select_drive(None, None, {}) == "/dev/solo"


def test_unknown_drive_name(config):
    with pytest.raises(DeviceSelectionError, match="no drive named 'nope'"):
        select_drive("nope", None, {})
    with pytest.raises(DeviceSelectionError, match="no drive named 'robot'"):
        select_drive("robot", None, {})


def test_changer_selection_order(config):
    assert select_changer("robot", "/dev/x", {}) == "/dev/robot"
    assert select_changer(None, "/dev/x", {"CHANGER": "/dev/env"}) == "/dev/x"
    assert select_changer(None, None, {"PROXMOX_TAPE_DRIVE": "left", "CHANGER": "/dev/env"}) == "/dev/robot"
    assert select_changer(None, None, {"CHANGER": "/dev/env"}) == "/dev/env"
    with pytest.raises(DeviceSelectionError, match="'right'.*not in a changer"):
        select_changer(None, None, {"PROXMOX_TAPE_DRIVE": "right"})
    with pytest.raises(DeviceSelectionError, match="no changer specified"):
        select_changer(None, None, {})
