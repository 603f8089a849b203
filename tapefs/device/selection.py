"""Which device a command talks to: the selection order of Proxmox's pmt and pmtx.

Drive: ``--drive NAME`` (an ``lto`` section of tape.cfg) → ``--device PATH`` → env
``PROXMOX_TAPE_DRIVE`` (a drive name) → env ``TAPE`` (a path) → the only drive in tape.cfg.
Changer: ``--changer NAME`` (a ``changer`` section) → ``--device PATH`` → env ``PROXMOX_TAPE_DRIVE``
(that drive's changer) → env ``CHANGER`` (a path).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from tapefs.errors import InvalidInput
from tapefs.config import section_config
from tapefs.config.paths import config_file

log = logging.getLogger(__name__)

TAPE_CONFIG = "tape.cfg"
DRIVE_SECTION = "lto"
CHANGER_SECTION = "changer"
DRIVE_NAME_ENV = "PROXMOX_TAPE_DRIVE"
TAPE_ENV = "TAPE"
CHANGER_ENV = "CHANGER"


class DeviceSelectionError(InvalidInput):
    """No device could be chosen, or the configuration names one that does not exist."""


def load_tape_config() -> section_config.SectionConfig:
    return section_config.load(config_file(TAPE_CONFIG))


def _section_path(config: section_config.SectionConfig, section_type: str, name: str) -> str:
    section = config.get(name)
    if section is None or section.type != section_type:
        kind = "drive" if section_type == DRIVE_SECTION else "changer"
        raise DeviceSelectionError(f"no {kind} named {name!r} in {config_file(TAPE_CONFIG)}")
    path = section.properties.get("path")
    if not path:
        raise DeviceSelectionError(f"{section_type} {name!r} in {config_file(TAPE_CONFIG)} has no path")
    return path


def select_drive(drive: str | None = None, device: str | None = None,
                 environ: Mapping[str, str] | None = None) -> str:
    """The device path of the drive to use."""
    environ = os.environ if environ is None else environ
    if drive:
        return _section_path(load_tape_config(), DRIVE_SECTION, drive)
    if device:
        return device
    if environ.get(DRIVE_NAME_ENV):
        return _section_path(load_tape_config(), DRIVE_SECTION, environ[DRIVE_NAME_ENV])
    if environ.get(TAPE_ENV):
        return environ[TAPE_ENV]
    drives = load_tape_config().of_type(DRIVE_SECTION)
    if len(drives) == 1:
        return _section_path(load_tape_config(), DRIVE_SECTION, drives[0].id)
    raise DeviceSelectionError("no drive/device specified (use --drive, --device or the TAPE environment variable)")


def select_changer(changer: str | None = None, device: str | None = None,
                   environ: Mapping[str, str] | None = None) -> str:
    """The device path of the changer to use."""
    environ = os.environ if environ is None else environ
    if changer:
        return _section_path(load_tape_config(), CHANGER_SECTION, changer)
    if device:
        return device
    if environ.get(DRIVE_NAME_ENV):
        config = load_tape_config()
        name = environ[DRIVE_NAME_ENV]
        _section_path(config, DRIVE_SECTION, name)
        changer_name = config.get(name).properties.get("changer")
        if not changer_name:
            raise DeviceSelectionError(f"drive {name!r} ({DRIVE_NAME_ENV}) is not in a changer")
        return _section_path(config, CHANGER_SECTION, changer_name)
    if environ.get(CHANGER_ENV):
        return environ[CHANGER_ENV]
    raise DeviceSelectionError("no changer specified (use --changer, --device or the CHANGER environment variable)")
