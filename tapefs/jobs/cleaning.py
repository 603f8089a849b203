"""Cleaning a drive of a library (proxmox-tape ``clean``).

The cleaning cartridge is found by its barcode (``CLN…``) in a storage slot of the drive's
changer. Whatever tape the drive holds goes back to its slot first and returns afterwards. A
drive cleans as soon as a cleaning cartridge arrives; the device status log page reports
"cleaning" until it is done. A cartridge with no cycles left makes the drive raise TapeAlert
16h (expired cleaning media) instead: it is put back, reported, and the next one is tried.
The cycles left come from the cartridge memory (attribute 0409h, medium type information).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from tapefs.device.changer import Changer, ChangerStatus
from tapefs.device.drive import Drive
from tapefs.device.log_pages import DEVICE_ACTIVITY_NAMES
from tapefs.jobs.errors import JobError
from tapefs.media.drive_lock import DriveLock
from tapefs.media.drive_selection import changer_of
from tapefs.media.media_admin import is_cleaning_cartridge, is_mail_slot
from tapefs.media.tape_config import ChangerConfig, DriveConfig, TapeDeviceConfig
from tapefs.media.tape_devices import open_drive
from tapefs.scsi import cdb as cdbs
from tapefs.scsi.errors import CheckCondition, UnitAttention

log = logging.getLogger(__name__)

#: Real LTO drives clean in one to two minutes.
CLEANING_TIMEOUT = 600.0
POLL_INTERVAL = 0.5
ACTIVITY_CLEANING = next(code for code, name in DEVICE_ACTIVITY_NAMES.items() if name == "cleaning")
ALERT_EXPIRED_CLEANING_MEDIA = 0x16
#: SSC: reading the TapeAlert log page (2Eh) clears the event flags, so that an expiry flag
#: raised by an earlier cartridge is not blamed on the next one.
TAPE_ALERT_PAGE = 0x2E
TAPE_ALERT_PAGE_ALLOCATION = 512
MAM_MEDIUM_TYPE_INFORMATION = 0x0409


class CleaningError(JobError):
    """No usable cleaning cartridge, or the drive did not finish cleaning."""


@dataclass
class CleaningResult:
    drive: str
    changer: str
    cleaning_cartridge: str
    slot: int
    #: as the cartridge memory reports them after this cleaning; None if it cannot be read
    cycles_left: int | None
    #: cleaning cartridges found expired on the way, put back unused
    expired: list[str] = field(default_factory=list)
    #: the tape that was in the drive and is back in it
    reloaded: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "drive": self.drive,
            "changer": self.changer,
            "cleaning-cartridge": self.cleaning_cartridge,
            "slot": self.slot,
            "cycles-left": self.cycles_left,
            "expired": self.expired,
            "reloaded": self.reloaded,
            "seconds": round(self.seconds, 3),
        }


def clean_drive(
    config: TapeDeviceConfig,
    drive: DriveConfig,
    timeout: float = CLEANING_TIMEOUT,
    poll_interval: float = POLL_INTERVAL,
) -> CleaningResult:
    """Clean ``drive`` with a cleaning cartridge of its changer; see the module docstring."""
    changer_config, number = changer_of(config, drive)
    started = time.monotonic()
    with DriveLock(drive.name), Changer.open(changer_config.path) as changer:
        status = changer.status()
        cartridges = [
            (slot.number, slot.barcode)
            for slot in status.slots
            if slot.full and is_cleaning_cartridge(slot.barcode) and not is_mail_slot(slot, changer_config)
        ]
        if not cartridges:
            raise CleaningError(
                f"no cleaning cartridge (barcode CLN…) in a storage slot of changer {changer_config.name}"
            )
        previous = _empty_the_drive(changer, status, changer_config, drive, number)
        expired: list[str] = []
        result = None
        try:
            for slot, barcode in cartridges:
                _clear_tape_alert_events(drive)
                changer.load(slot, number)
                try:
                    cycles_left, was_expired = _watch_cleaning(drive, timeout, poll_interval)
                finally:
                    changer.unload(slot, number)
                if was_expired:
                    log.warning("cleaning cartridge %s is expired (no cleaning cycles left): not used", barcode)
                    expired.append(barcode)
                    continue
                result = CleaningResult(drive.name, changer_config.name, barcode, slot, cycles_left, expired)
                break
        finally:
            if previous is not None:
                changer.load(previous[1], number)
    if result is None:
        raise CleaningError(
            f"every cleaning cartridge in changer {changer_config.name} is expired "
            f"({', '.join(expired)}): replace it (tapefs export-media {expired[0]})"
        )
    result.reloaded = previous[0] if previous is not None else None
    result.seconds = time.monotonic() - started
    log.info("drive %s cleaned with %s (%s cycles left)", drive.name, result.cleaning_cartridge, result.cycles_left)
    return result


def _empty_the_drive(
    changer: Changer, status: ChangerStatus, changer_config: ChangerConfig, drive: DriveConfig, number: int
) -> tuple[str, int] | None:
    """Put the drive's tape back into a slot; the tape and slot to reload afterwards."""
    in_drive = status.drive(number)
    if not in_drive.full:
        return None
    if is_cleaning_cartridge(in_drive.barcode):
        changer.unload(None, number)  # left behind by an interrupted cleaning: nothing to reload
        return None
    # Some libraries only take a cartridge the drive has unthreaded (PBS fix #4904).
    if changer_config.eject_before_unload:
        with open_drive(drive) as opened:
            opened.eject()
    return in_drive.barcode, changer.unload(None, number)


def _clear_tape_alert_events(drive: DriveConfig) -> None:
    with Drive.open(drive.path) as opened:
        try:
            opened.channel.run(
                cdbs.log_sense(TAPE_ALERT_PAGE, TAPE_ALERT_PAGE_ALLOCATION), data_in_len=TAPE_ALERT_PAGE_ALLOCATION
            )
        except CheckCondition as exc:
            log.info("%s: TapeAlert page not read: %s", drive.path, exc)


def _watch_cleaning(drive: DriveConfig, timeout: float, poll_interval: float) -> tuple[int | None, bool]:
    """Wait while the drive reports cleaning; (cycles left, whether the cartridge was expired)."""
    deadline = time.monotonic() + timeout
    with Drive.open(drive.path) as opened:
        try:
            opened.request_sense()  # the unit attention of the cartridge's arrival
        except UnitAttention:
            pass
        while _is_cleaning(opened):
            if time.monotonic() > deadline:
                raise CleaningError(f"drive {drive.name} is still cleaning after {timeout:g} s")
            time.sleep(poll_interval)
        try:
            expired = ALERT_EXPIRED_CLEANING_MEDIA in opened.tape_alert_flags()
        except (CheckCondition, ValueError) as exc:
            log.info("%s: no TapeAlert flags: %s", drive.path, exc)
            expired = False
        return _cycles_left(opened), expired


def _is_cleaning(opened: Drive) -> bool:
    try:
        return opened.device_status().activity == ACTIVITY_CLEANING
    except (CheckCondition, ValueError) as exc:
        # Without the device status page there is no way to watch; the drive cleans on its own.
        log.info("%s: no device status page, not waiting for the cleaning: %s", opened.path, exc)
        return False


def _cycles_left(opened: Drive) -> int | None:
    try:
        attributes = {attribute.id: attribute for attribute in opened.cartridge_memory()}
    except (CheckCondition, ValueError) as exc:
        log.info("%s: cleaning cartridge memory not readable: %s", opened.path, exc)
        return None
    attribute = attributes.get(MAM_MEDIUM_TYPE_INFORMATION)
    return int(attribute.value) if attribute is not None else None
