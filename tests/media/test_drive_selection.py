"""Drive and changer selection (pmt, pmtx, tape jobs), with a real tape.cfg in a private config directory."""
import pytest

from tapefs.jobs.drive_session import DriveSetup, drive_setup
from tapefs.media.drive_selection import DeviceSelectionError, select_changer_path, select_drive_path
from tapefs.media.tape_config import load_tape_config

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
    assert select_drive_path("right", "/dev/other", {"TAPE": "/dev/env"}) == "/dev/right"


def test_device_before_environment(config):
    assert select_drive_path(None, "/dev/other", {"TAPE": "/dev/env"}) == "/dev/other"


def test_drive_name_from_environment_before_tape(config):
    assert select_drive_path(None, None, {"PROXMOX_TAPE_DRIVE": "left", "TAPE": "/dev/env"}) == "/dev/left"
    assert select_drive_path(None, None, {"TAPE": "/dev/env"}) == "/dev/env"


def test_two_configured_drives_need_a_choice(config):
    with pytest.raises(DeviceSelectionError, match="no drive/device specified"):
        select_drive_path(None, None, {})


def test_the_only_configured_drive_is_used(config):
    (config / "tape.cfg").write_text("lto: solo\n\tpath /dev/solo\n")
    assert select_drive_path(None, None, {}) == "/dev/solo"


def test_unknown_drive_name(config):
    with pytest.raises(DeviceSelectionError, match="no drive named 'nope'"):
        select_drive_path("nope", None, {})
    with pytest.raises(DeviceSelectionError, match="no drive named 'robot'"):
        select_drive_path("robot", None, {})


def test_changer_selection_order(config):
    assert select_changer_path("robot", "/dev/x", {}) == "/dev/robot"
    assert select_changer_path(None, "/dev/x", {"CHANGER": "/dev/env"}) == "/dev/x"
    assert select_changer_path(None, None, {"PROXMOX_TAPE_DRIVE": "left", "CHANGER": "/dev/env"}) == "/dev/robot"
    assert select_changer_path(None, None, {"CHANGER": "/dev/env"}) == "/dev/env"
    with pytest.raises(DeviceSelectionError, match="'right'.*not in a changer"):
        select_changer_path(None, None, {"PROXMOX_TAPE_DRIVE": "right"})
    with pytest.raises(DeviceSelectionError, match="no changer specified"):
        select_changer_path(None, None, {})


def test_a_tape_job_takes_its_drive_as_every_tape_command_does(config, monkeypatch):
    # Jobs used to choose their drive on their own and ignored PROXMOX_TAPE_DRIVE.
    monkeypatch.setenv("PROXMOX_TAPE_DRIVE", "left")
    assert drive_setup(load_tape_config(), None) == DriveSetup("left", "/dev/left", "robot", "/dev/robot", 0, ())
    assert drive_setup(load_tape_config(), "right") == DriveSetup("right", "/dev/right")
    monkeypatch.delenv("PROXMOX_TAPE_DRIVE")
    with pytest.raises(DeviceSelectionError, match=r"^2 drives are configured \(left, right\): choose one with --drive$"):
        drive_setup(load_tape_config(), None)
