"""One drive for one job: bring the tape with a given label text into it (through the drive's
changer, or by checking what a standalone drive holds) and check its labels.

A tape that is not in the changer raises MediaOffline at once, unless the session was given an
OperatorWait: then the operator is asked to insert it and the session waits (the FUSE mount
relies on the immediate error and does its own waiting)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tapefs.device.changer import Changer
from tapefs.device.drive import Drive
from tapefs.jobs.errors import DeviceConnectionLost, JobError, MediaOffline
from tapefs.jobs.operator_wait import OperatorWait
from tapefs.media.drive_lock import DriveLock
from tapefs.media.drive_selection import changer_of, choose_drive
from tapefs.media.inventory import Inventory
from tapefs.media.media_admin import MediaAdminError, export_media, is_cleaning_cartridge, is_mail_slot
from tapefs.media.online_status import query_changer
from tapefs.media.tape_config import ChangerConfig, TapeDeviceConfig
from tapefs.notify import events
from tapefs.notify.dispatch import send
from tapefs.scsi.errors import ConnectionLost
from tapefs.tapeformat.block_device import DriveBlockDevice
from tapefs.tapeformat.labels import TapeLabels, read_labels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriveSetup:
    """A drive of tape.cfg and, if it sits in a library, that library's changer."""

    name: str
    path: str
    changer_name: str | None = None
    changer_path: str | None = None
    drive_number: int = 0
    export_slots: tuple[int, ...] = ()


def drive_setup(tape_config: TapeDeviceConfig, name: str | None = None) -> DriveSetup:
    """The drive a job uses: chosen as every tape command chooses it (see ``drive_selection``)."""
    drive = choose_drive(tape_config, name)
    if drive.changer is None:
        return DriveSetup(drive.name, drive.path)
    changer, drive_number = changer_of(tape_config, drive)
    return DriveSetup(drive.name, drive.path, changer.name, changer.path, drive_number, changer.export_slots)


class DriveSession:
    """Holds the drive open between tape changes; `close` releases it."""

    def __init__(self, setup: DriveSetup, wait: OperatorWait | None = None):
        self.setup = setup
        self.wait = wait
        self._drive: Drive | None = None
        self.label_text: str | None = None
        self._lock = DriveLock(setup.name)

    @property
    def holds_drive(self) -> bool:
        return self._lock.held

    def close(self) -> None:
        """Close the drive and let other processes have it."""
        self._close_drive()
        self._lock.release()

    def _close_drive(self) -> None:
        if self._drive is not None:
            self._drive.close()
            self._drive = None

    def __enter__(self) -> DriveSession:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def device(self) -> DriveBlockDevice | None:
        """The loaded tape where it stands, or None when no drive is open."""
        return DriveBlockDevice(self._drive) if self._drive is not None else None

    def open_device(self) -> DriveBlockDevice:
        self._lock.acquire()
        if self._drive is None:
            self._drive = Drive.open(self.setup.path)  # waits while a loaded tape becomes ready
        return DriveBlockDevice(self._drive)

    def load(self, label_text: str) -> DriveBlockDevice:
        """The device with tape `label_text` in the drive, rewound."""
        if is_cleaning_cartridge(label_text):
            raise JobError(f"tape {label_text} is a cleaning cartridge, not a data tape (clean with 'tapefs clean')")
        self._lock.acquire()  # before the changer moves anything into or out of this drive
        if self.setup.changer_path is None:
            device = self.open_device()
            labels = read_labels(device)
            found = labels.media.label_text if labels.media else None
            if found != label_text:
                reason = f"Drive {self.setup.name} holds {found or 'an unlabelled tape'}."
                send(events.tape_load(label_text, self.setup.name, reason, is_changer=False))
                raise JobError(
                    f"drive {self.setup.name} holds {found or 'an unlabelled tape'}: insert tape {label_text}"
                )
            device.rewind()
            self.label_text = label_text
            return device
        if self.label_text != label_text:
            self._close_drive()
            with Changer.open(self.setup.changer_path) as changer:
                loaded = self._bring_into_drive(changer, label_text)
            if not loaded:
                if self.wait is None or self.wait.timeout == 0:
                    # The drive is empty now: nothing to keep from other processes while the
                    # caller waits for the tape.
                    self.label_text = None
                    self._lock.release()
                    raise MediaOffline(label_text, f"tape {label_text} is not in changer {self.setup.changer_name}")
                self.wait.wait_for_tape(self._changer_config(), label_text)
                with Changer.open(self.setup.changer_path) as changer:
                    if not self._bring_into_drive(changer, label_text):
                        raise MediaOffline(
                            label_text,
                            f"tape {label_text} left changer {self.setup.changer_name} again before it could be loaded",
                        )
            self.label_text = label_text
        device = self.open_device()
        device.rewind()
        return device

    def tapes_in_changer(self, label_texts: set[str]) -> set[str]:
        """Which of `label_texts` this drive's changer could load now (in a storage slot or a
        drive; an import/export slot does not count), asked without moving anything. Without a
        changer every tape counts: only loading it tells."""
        if self.setup.changer_path is None:
            return set(label_texts)
        config = self._changer_config()
        with Changer.open(self.setup.changer_path) as changer:
            status = changer.status()
        held = {drive.barcode for drive in status.drives if drive.full}
        held |= {slot.barcode for slot in status.slots if slot.full and not is_mail_slot(slot, config)}
        return label_texts & held

    def device_name(self, path: str) -> str:
        """``drive NAME`` or ``changer NAME`` for a device path of this session, as tape.cfg names it."""
        if path == self.setup.path:
            return f"drive {self.setup.name}"
        if path == self.setup.changer_path:
            return f"changer {self.setup.changer_name}"
        return path

    def connection_lost(self, lost: ConnectionLost, where: str = "") -> DeviceConnectionLost:
        """The job error for a lost device: its name, the cause, then ``where`` the job stands."""
        command = f" during {lost.command}" if lost.command else ""
        detail = f"; {where}" if where else ""
        return DeviceConnectionLost(f"{self.device_name(lost.device)}: connection lost{command} ({lost.cause}){detail}")

    def _changer_config(self) -> ChangerConfig:
        return ChangerConfig(self.setup.changer_name, self.setup.changer_path, self.setup.export_slots)

    def _bring_into_drive(self, changer: Changer, label_text: str) -> bool:
        """Load the tape from its storage slot; False if it is not in the changer (a tape in an
        import/export slot counts as not there: an operator put it there to take it away)."""
        number = self.setup.drive_number
        status = changer.status()
        ours = status.drive(number)
        if ours.full and ours.barcode == label_text:
            return True
        if ours.full:
            changer.unload(drive=number)
        status = changer.status()
        for other in status.drives:
            if other.full and other.barcode == label_text:
                log.info(
                    "tape %s is in drive %d of changer %s: moving it back to a slot",
                    label_text,
                    other.number,
                    self.setup.changer_name,
                )
                changer.unload(drive=other.number)
                status = changer.status()
        config = self._changer_config()
        slots = [
            slot for slot in status.slots if slot.full and slot.barcode == label_text and not is_mail_slot(slot, config)
        ]
        if not slots:
            return False
        changer.load(slots[0].number, number)
        log.info("loaded %s into drive %s", label_text, self.setup.name)
        return True

    def update_online_status(self, inventory: Inventory) -> None:
        """Record which tapes are in this drive's changer (the first step of a tape backup)."""
        if self.setup.changer_path is None:
            return
        inventory.update_online_status({self.setup.changer_name: query_changer(self._changer_config())})

    def read_labels(self, label_text: str) -> tuple[DriveBlockDevice, TapeLabels]:
        device = self.load(label_text)
        labels = read_labels(device)
        if labels.media is None:
            raise JobError(f"tape {label_text} in drive {self.setup.name} has no media label")
        if labels.media.label_text != label_text:
            raise JobError(
                f"tape in drive {self.setup.name} is labelled {labels.media.label_text}, expected {label_text}"
            )
        return device, labels

    def eject(self) -> None:
        """Eject; in a library the tape then goes back to a storage slot."""
        if self._drive is not None:
            self._drive.eject()
        self._close_drive()
        if self.setup.changer_path is not None and self.label_text is not None:
            with Changer.open(self.setup.changer_path) as changer:
                if changer.status().drive(self.setup.drive_number).full:
                    changer.unload(drive=self.setup.drive_number)
        self.label_text = None
        self._lock.release()

    def export(self, label_texts: list[str], inventory: Inventory | None = None) -> list[str]:
        """Move the tapes that are in the changer to import/export slots and record them
        offline; returns those not exported (not in the changer, or no free mail slot)."""
        self.eject()
        if self.setup.changer_path is None:
            return []
        missing = []
        for label_text in label_texts:
            try:
                export_media(self._changer_config(), label_text, inventory)
            except MediaAdminError as error:
                log.warning("%s", error)
                missing.append(label_text)
        return missing
