"""Which drive or changer of ``tape.cfg`` a command means: the one place that decides it.

proxmox-tape commands and tape jobs: ``--drive NAME`` → env ``PROXMOX_TAPE_DRIVE`` → the only
configured drive; a changer is the named one, else the chosen drive's, else the only one.
pmt and pmtx also take a device path: ``--drive NAME`` → ``--device PATH`` → env
``PROXMOX_TAPE_DRIVE`` → env ``TAPE`` (a path) → the only drive; ``--changer NAME`` →
``--device PATH`` → env ``PROXMOX_TAPE_DRIVE`` (that drive's changer) → env ``CHANGER``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tapefs.errors import InvalidInput, NotFound
from tapefs.media.errors import TapeDeviceError
from tapefs.media.tape_config import TAPE_CONFIG_NAME, ChangerConfig, DriveConfig, TapeDeviceConfig, load_tape_config

DRIVE_NAME_ENV = "PROXMOX_TAPE_DRIVE"
TAPE_ENV = "TAPE"
CHANGER_ENV = "CHANGER"


class DeviceSelectionError(InvalidInput, TapeDeviceError):
    """No device could be chosen: none given and none or several configured (a usage error)."""


class UnknownDeviceError(NotFound, DeviceSelectionError):
    """tape.cfg has no drive or changer of the name given."""


def choose_drive(
    config: TapeDeviceConfig, name: str | None = None, environ: Mapping[str, str] | None = None
) -> DriveConfig:
    environ = os.environ if environ is None else environ
    name = name or environ.get(DRIVE_NAME_ENV) or None
    if name is not None:
        if name not in config.drives:
            known = ", ".join(config.drives) or "none configured"
            raise UnknownDeviceError(f"no drive named {name!r} in {TAPE_CONFIG_NAME} (drives: {known})")
        return config.drives[name]
    if len(config.drives) == 1:
        return next(iter(config.drives.values()))
    if not config.drives:
        raise DeviceSelectionError(f"no drive configured in {TAPE_CONFIG_NAME} (add one with 'tapefs drive create')")
    raise DeviceSelectionError(
        f"{len(config.drives)} drives are configured ({', '.join(config.drives)}): choose one with --drive"
    )


def choose_changer(
    config: TapeDeviceConfig,
    name: str | None = None,
    drive_name: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ChangerConfig:
    """The named changer, else the changer of the chosen drive, else the only changer."""
    if name is not None:
        if name not in config.changers:
            known = ", ".join(config.changers) or "none configured"
            raise UnknownDeviceError(f"no changer named {name!r} in {TAPE_CONFIG_NAME} (changers: {known})")
        return config.changers[name]
    environ = os.environ if environ is None else environ
    if drive_name or environ.get(DRIVE_NAME_ENV):
        return changer_of(config, choose_drive(config, drive_name, environ))[0]
    if len(config.changers) == 1:
        return next(iter(config.changers.values()))
    if not config.changers:
        raise DeviceSelectionError(
            f"no changer configured in {TAPE_CONFIG_NAME} (add one with 'tapefs changer create')"
        )
    raise DeviceSelectionError(
        f"{len(config.changers)} changers are configured ({', '.join(config.changers)}): name one"
    )


def changer_of(config: TapeDeviceConfig, drive: DriveConfig) -> tuple[ChangerConfig, int]:
    """The drive's changer and its drive number in it."""
    if drive.changer is None:
        raise DeviceSelectionError(
            f"drive {drive.name!r} is not in a changer (set one with 'tapefs drive update --changer')"
        )
    return config.changer(drive.changer), drive.changer_drivenum or 0


def select_drive_path(
    drive: str | None = None, device: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The device path pmt talks to."""
    environ = os.environ if environ is None else environ
    if drive:
        return choose_drive(load_tape_config(), drive, {}).path
    if device:
        return device
    if environ.get(DRIVE_NAME_ENV):
        return choose_drive(load_tape_config(), None, environ).path
    if environ.get(TAPE_ENV):
        return environ[TAPE_ENV]
    config = load_tape_config()
    if len(config.drives) == 1:
        return choose_drive(config, None, {}).path
    raise DeviceSelectionError("no drive/device specified (use --drive, --device or the TAPE environment variable)")


def select_changer_path(
    changer: str | None = None, device: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The device path pmtx talks to."""
    environ = os.environ if environ is None else environ
    if changer:
        return choose_changer(load_tape_config(), changer, None, {}).path
    if device:
        return device
    if environ.get(DRIVE_NAME_ENV):
        return choose_changer(load_tape_config(), None, None, environ).path
    if environ.get(CHANGER_ENV):
        return environ[CHANGER_ENV]
    raise DeviceSelectionError("no changer specified (use --changer, --device or the CHANGER environment variable)")
