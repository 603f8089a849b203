"""The drives and changers of ``tape.cfg`` as a command line uses them: opening a drive, and
moving tapes between slots and drives by label text or slot number (proxmox-tape's
``load-media``, ``load-media-from-slot``, ``unload``, ``changer status``, ``transfer`` and
``changer reset``).
Which drive or changer a command means is decided in ``tapefs.media.drive_selection``.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from tapefs.device.changer import Changer, ChangerStatus
from tapefs.device.drive import Drive
from tapefs.media.drive_lock import DriveLock
from tapefs.media.drive_selection import changer_of
from tapefs.media.errors import TapeDeviceError
from tapefs.media.inventory import CLEANING_TAPE_PREFIX, Inventory
from tapefs.media.online_status import label_texts_in_changer
from tapefs.media.tape_config import ChangerConfig, DriveConfig, TapeDeviceConfig
from tapefs.scsi.channel import Channel
from tapefs.scsi.errors import ScsiError
from tapefs.scsi.inquiry import inquiry, unit_serial_number

log = logging.getLogger(__name__)


@contextmanager
def open_drive(drive: DriveConfig, need_medium: bool = False, exclusive: bool = True) -> Iterator[Drive]:
    """Open a configured drive, consuming the unit attention a freshly loaded tape raises, so
    that the first real command does not fail with "medium may have changed".

    ``exclusive`` holds the drive's lock while open (DriveBusy if another tapefs process has
    it); queries that neither move the tape nor change the drive (status, cartridge memory,
    volume statistics) pass False so that they work while a job or a mount uses the drive."""
    with DriveLock(drive.name) if exclusive else nullcontext(), Drive.open(drive.path) as opened:
        if not opened.is_ready() and need_medium:
            raise TapeDeviceError(f"drive {drive.name!r} has no tape loaded")
        yield opened


def _eject_if_required(changer: ChangerConfig, drive: DriveConfig) -> None:
    # Some libraries only take a cartridge the drive has unthreaded (PBS fix #4904).
    if changer.eject_before_unload:
        with open_drive(drive) as opened:
            opened.eject()


def _unload(
    changer: Changer, changer_config: ChangerConfig, drive: DriveConfig, drivenum: int, target_slot: int | None
) -> int:
    _eject_if_required(changer_config, drive)
    return changer.unload(target_slot, drivenum)


def load_media(config: TapeDeviceConfig, drive: DriveConfig, label_text: str) -> int:
    """Load the tape with this barcode into the drive, unloading whatever it holds first.
    Returns the slot the tape came from (0 if it was already in the drive)."""
    if label_text.startswith(CLEANING_TAPE_PREFIX):
        raise TapeDeviceError(f"{label_text} is a cleaning cartridge, not a data tape (use 'tapefs clean')")
    changer_config, drivenum = changer_of(config, drive)
    with DriveLock(drive.name), Changer.open(changer_config.path) as changer:
        status = changer.status()
        in_drive = status.drive(drivenum)
        if in_drive.full and in_drive.barcode == label_text:
            return 0
        slot = next((s for s in status.slots if s.full and s.barcode == label_text), None)
        if slot is None:
            raise TapeDeviceError(f"media {label_text!r} is not in a slot of changer {changer_config.name!r}")
        if slot.import_export or slot.number in changer_config.export_slots:
            raise TapeDeviceError(
                f"media {label_text!r} is in import/export slot {slot.number}; "
                "move it to a storage slot first ('tapefs changer transfer')"
            )
        if in_drive.full:
            _unload(changer, changer_config, drive, drivenum, None)
        changer.load(slot.number, drivenum)
        return slot.number


def load_media_from_slot(config: TapeDeviceConfig, drive: DriveConfig, slot: int) -> str | None:
    """Load the tape in ``slot`` into the drive (unloading the drive first); returns its barcode."""
    changer_config, drivenum = changer_of(config, drive)
    with DriveLock(drive.name), Changer.open(changer_config.path) as changer:
        status = changer.status()
        source = status.slot(slot)
        if not source.full:
            raise TapeDeviceError(f"slot {slot} of changer {changer_config.name!r} is empty")
        if source.barcode and source.barcode.startswith(CLEANING_TAPE_PREFIX):
            raise TapeDeviceError(
                f"slot {slot} holds cleaning cartridge {source.barcode}, not a data tape (use 'tapefs clean')"
            )
        if status.drive(drivenum).full:
            _unload(changer, changer_config, drive, drivenum, None)
        changer.load(slot, drivenum)
        return source.barcode


def unload_media(config: TapeDeviceConfig, drive: DriveConfig, target_slot: int | None = None) -> int:
    """Put the drive's tape back (by default into the slot it came from); returns the slot."""
    changer_config, drivenum = changer_of(config, drive)
    with DriveLock(drive.name), Changer.open(changer_config.path) as changer:
        return _unload(changer, changer_config, drive, drivenum, target_slot)


def eject_media(config: TapeDeviceConfig, drive: DriveConfig) -> int | None:
    """Eject the drive's tape; in a changer, also put it back into a slot (returned)."""
    with DriveLock(drive.name):
        with open_drive(drive) as opened:
            opened.eject()
        if drive.changer is None:
            return None
        changer_config, drivenum = changer_of(config, drive)
        with Changer.open(changer_config.path) as changer:
            return changer.unload(None, drivenum)


def transfer_media(changer_config: ChangerConfig, from_slot: int, to_slot: int) -> None:
    with Changer.open(changer_config.path) as changer:
        status = changer.status()
        if not status.slot(from_slot).full:
            raise TapeDeviceError(f"slot {from_slot} of changer {changer_config.name!r} is empty")
        if status.slot(to_slot).full:
            raise TapeDeviceError(f"slot {to_slot} of changer {changer_config.name!r} is full")
        changer.transfer(from_slot, to_slot)


@dataclass(frozen=True)
class DeviceIdentity:
    vendor: str | None
    model: str | None
    serial: str | None


def device_identity(path: str) -> DeviceIdentity:
    """Vendor, model and serial of a configured device; all None when it does not answer
    (a list of configured devices must not fail because one of them is switched off)."""
    try:
        with Channel.open(path) as channel:
            identity = inquiry(channel)
            return DeviceIdentity(identity.vendor, identity.product, unit_serial_number(channel))
    except (ScsiError, OSError) as exc:
        log.info("%s does not answer: %s", path, exc)
        return DeviceIdentity(None, None, None)


@dataclass(frozen=True)
class ChangerEntry:
    """One row of ``changer status``: a drive, storage slot or import/export slot."""

    kind: str  # "drive", "slot" or "import-export"
    id: int
    label_text: str | None
    #: for a drive, the slot its tape came from
    loaded_slot: int | None
    #: the inventory's UUID for that label text, if the tape is known (and not ambiguous)
    uuid: str | None

    def to_dict(self) -> dict:
        return {
            "entry-kind": self.kind,
            "entry-id": self.id,
            "label-text": self.label_text,
            "loaded-slot": self.loaded_slot,
            "uuid": self.uuid,
        }


def _known_uuid(inventory: Inventory, label_text: str | None) -> str | None:
    if not label_text:
        return None
    entries = inventory.find_all_media_by_label_text(label_text)
    return entries[0].uuid if len(entries) == 1 else None


def changer_entries(status: ChangerStatus, changer_config: ChangerConfig, inventory: Inventory) -> list[ChangerEntry]:
    entries = [
        ChangerEntry(
            "drive",
            d.number,
            d.barcode if d.full else None,
            d.loaded_slot,
            _known_uuid(inventory, d.barcode if d.full else None),
        )
        for d in status.drives
    ]
    for slot in status.slots:
        kind = "import-export" if slot.import_export or slot.number in changer_config.export_slots else "slot"
        label_text = slot.barcode if slot.full else None
        entries.append(ChangerEntry(kind, slot.number, label_text, None, _known_uuid(inventory, label_text)))
    return entries


def changer_status(changer_config: ChangerConfig, inventory: Inventory) -> list[ChangerEntry]:
    """What each drive and slot of the changer holds, with the inventory's UUID of each tape."""
    with Changer.open(changer_config.path) as changer:
        status = changer.status()
    return changer_entries(status, changer_config, inventory)


def reset_changer(
    changer_config: ChangerConfig, tape_config: TapeDeviceConfig, inventory: Inventory
) -> list[ChangerEntry]:
    """Library reset: INITIALIZE ELEMENT STATUS (the library rescans every element), then a
    fresh READ ELEMENT STATUS recorded in the inventory; what each element holds afterwards.

    For a changer whose element status went stale, e.g. slots that hold tapes reported empty
    after an operator filled the magazine by hand. Other changers keep their tapes' locations.
    """
    with Changer.open(changer_config.path) as changer:
        changer.inventory()
        status = changer.status()
    contents: dict[str, set[str] | None] = {name: None for name in tape_config.changers}
    contents[changer_config.name] = label_texts_in_changer(status, changer_config.export_slots)
    moved = inventory.update_online_status(contents)
    for uuid, location in moved.items():
        log.info("changer %s reset: %s is now %s", changer_config.name, uuid, location)
    return changer_entries(status, changer_config, inventory)
