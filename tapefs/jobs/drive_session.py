"""One drive for one job: bring the tape with a given label text into it (through the drive's
changer, or by checking what a standalone drive holds) and check its labels."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from tapefs.device.changer import Changer
from tapefs.device.drive import Drive
from tapefs.jobs.errors import JobError, MediaOffline
from tapefs.media.inventory import Inventory
from tapefs.media.online_status import query_changer
from tapefs.media.tape_config import ChangerConfig, TapeDeviceConfig
from tapefs.tapeformat.block_device import DriveBlockDevice
from tapefs.tapeformat.labels import TapeLabels, read_labels

log = logging.getLogger(__name__)

READY_TIMEOUT = 120.0


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
    """The named drive, or the only configured one."""
    if name is None:
        if len(tape_config.drives) != 1:
            raise JobError(f"{len(tape_config.drives)} drives configured: name one with --drive")
        name = next(iter(tape_config.drives))
    try:
        drive = tape_config.drive(name)
    except KeyError as error:
        raise JobError(error.args[0]) from None
    if drive.changer is None:
        return DriveSetup(drive.name, drive.path)
    changer = tape_config.changer(drive.changer)
    return DriveSetup(drive.name, drive.path, changer.name, changer.path, drive.changer_drivenum or 0,
                      changer.export_slots)


class DriveSession:
    """Holds the drive open between tape changes; `close` releases it."""

    def __init__(self, setup: DriveSetup):
        self.setup = setup
        self._drive: Drive | None = None
        self.label_text: str | None = None

    def close(self) -> None:
        if self._drive is not None:
            self._drive.close()
            self._drive = None

    def __enter__(self) -> "DriveSession":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def device(self) -> DriveBlockDevice | None:
        """The loaded tape where it stands, or None when no drive is open."""
        return DriveBlockDevice(self._drive) if self._drive is not None else None

    def open_device(self) -> DriveBlockDevice:
        if self._drive is None:
            self._drive = Drive.open(self.setup.path)
            self._drive.request_sense()  # consume the unit attention of a load
            self._drive.wait_until_ready(READY_TIMEOUT)
        return DriveBlockDevice(self._drive)

    def load(self, label_text: str) -> DriveBlockDevice:
        """The device with tape `label_text` in the drive, rewound."""
        if self.setup.changer_path is None:
            device = self.open_device()
            labels = read_labels(device)
            found = labels.media.label_text if labels.media else None
            if found != label_text:
                raise JobError(f"drive {self.setup.name} holds {found or 'an unlabelled tape'}: "
                               f"insert tape {label_text}")
            device.rewind()
            self.label_text = label_text
            return device
        if self.label_text != label_text:
            self.close()
            with Changer.open(self.setup.changer_path) as changer:
                self._bring_into_drive(changer, label_text)
            self.label_text = label_text
        device = self.open_device()
        device.rewind()
        return device

    def _bring_into_drive(self, changer: Changer, label_text: str) -> None:
        number = self.setup.drive_number
        status = changer.status()
        ours = status.drive(number)
        if ours.full and ours.barcode == label_text:
            return
        if ours.full:
            changer.unload(drive=number)
        status = changer.status()
        for other in status.drives:
            if other.full and other.barcode == label_text:
                log.info("tape %s is in drive %d of changer %s: moving it back to a slot", label_text,
                         other.number, self.setup.changer_name)
                changer.unload(drive=other.number)
                status = changer.status()
        slots = [slot for slot in status.slots if slot.full and slot.barcode == label_text
                 and not slot.import_export and slot.number not in self.setup.export_slots]
        if not slots:
            raise MediaOffline(label_text, f"tape {label_text} is not in changer {self.setup.changer_name}")
        changer.load(slots[0].number, number)
        log.info("loaded %s into drive %s", label_text, self.setup.name)

    def update_online_status(self, inventory: Inventory) -> None:
        """Record which tapes are in this drive's changer (spec §8 step 1)."""
        if self.setup.changer_path is None:
            return
        config = ChangerConfig(self.setup.changer_name, self.setup.changer_path, self.setup.export_slots)
        inventory.update_online_status({self.setup.changer_name: query_changer(config)})

    def read_labels(self, label_text: str) -> tuple[DriveBlockDevice, TapeLabels]:
        device = self.load(label_text)
        labels = read_labels(device)
        if labels.media is None:
            raise JobError(f"tape {label_text} in drive {self.setup.name} has no media label")
        if labels.media.label_text != label_text:
            raise JobError(f"tape in drive {self.setup.name} is labelled {labels.media.label_text}, "
                           f"expected {label_text}")
        return device, labels

    def eject(self) -> None:
        """Eject; in a library the tape then goes back to a storage slot."""
        if self._drive is not None:
            self._drive.eject()
        self.close()
        if self.setup.changer_path is not None and self.label_text is not None:
            with Changer.open(self.setup.changer_path) as changer:
                if changer.status().drive(self.setup.drive_number).full:
                    changer.unload(drive=self.setup.drive_number)
        self.label_text = None

    def export(self, label_texts: list[str]) -> list[str]:
        """Move the tapes that are in the changer to import/export slots; those not found."""
        self.eject()
        if self.setup.changer_path is None:
            return []
        missing = []
        with Changer.open(self.setup.changer_path) as changer:
            for label_text in label_texts:
                status = changer.status()
                source = next((slot for slot in status.slots if slot.full and slot.barcode == label_text
                               and not slot.import_export), None)
                target = next((slot for slot in status.slots if not slot.full
                               and (slot.import_export or slot.number in self.setup.export_slots)), None)
                if source is None or target is None:
                    log.warning("tape %s: %s", label_text,
                                "not online" if source is None else "no free import/export slot")
                    missing.append(label_text)
                    continue
                changer.transfer(source.number, target.number)
        return missing
