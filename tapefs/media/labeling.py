"""Labelling, reading labels, formatting and inventorying tapes
(docs/tape-admin.md, "Labelling"; docs/tape-format.md, "Labels").

``label_tape`` refuses a tape that holds anything (a label or data) unless forced, refuses a
label text another inventoried tape carries, formats, writes the media label (with the pool
in it, as current PBS does), reads it back and stores the tape in the inventory.
``barcode_label`` does that for every unlabelled, non-cleaning tape of a changer, and
``update_inventory`` loads tapes to read their labels. Progress goes to an optional callback
of ``tapefs.progress`` events counted in steps.
"""

import logging
import time
import uuid as uuidlib
from dataclasses import dataclass

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.device.changer import Changer
from tapefs.device.drive import Drive
from tapefs.media.drive_selection import changer_of
from tapefs.media.errors import MediaError
from tapefs.media.inventory import CLEANING_TAPE_PREFIX, Inventory
from tapefs.media.media_id import SAFE_ID, MediaId, MediaLabel, MediaLocation, MediaSetLabel
from tapefs.media.online_status import update_online_status
from tapefs.media.tape_config import (
    MEDIA_POOL_CONFIG_NAME,
    ChangerConfig,
    DriveConfig,
    TapeDeviceConfig,
    load_media_pool_config,
)
from tapefs.media.tape_devices import load_media_from_slot, open_drive, unload_media
from tapefs.progress import ProgressCallback, ProgressEvent
from tapefs.scsi.errors import ScsiError
from tapefs.tapeformat import labels as tape_labels
from tapefs.tapeformat.block_device import DriveBlockDevice, Mark
from tapefs.tapeformat.errors import TapeFormatError

log = logging.getLogger(__name__)

LABEL_TEXT_LENGTH = (2, 32)
#: MAM attributes PBS writes after labelling
MAM_USER_MEDIUM_TEXT_LABEL = 0x0803
MAM_MEDIA_POOL = 0x0808


class LabelError(MediaError):
    """A tape that must not be labelled, a bad label text, a label that did not read back."""


def _no_progress(event: ProgressEvent) -> None:
    pass


def _step(progress: ProgressCallback, message: str, done: int, total: int) -> None:
    progress(ProgressEvent("label", message, done, total, 0.0, unit="steps"))


def check_label_text(label_text: str) -> str:
    low, high = LABEL_TEXT_LENGTH
    if not SAFE_ID.fullmatch(label_text) or not low <= len(label_text) <= high:
        raise LabelError(
            f"invalid label text {label_text!r} (letters, digits, '_', '.', '-'; {low} to {high} characters)"
        )
    if label_text.startswith(CLEANING_TAPE_PREFIX):
        raise LabelError(f"label text {label_text!r} starts with {CLEANING_TAPE_PREFIX}, which marks cleaning tapes")
    return label_text


def media_id_from_labels(found: tape_labels.TapeLabels) -> MediaId | None:
    """The inventory's view of the labels read from a tape (None for an unlabelled tape)."""
    if found.media is None:
        return None
    label = MediaLabel(str(found.media.uuid), found.media.label_text, found.media.ctime, found.media.pool)
    set_label = None
    if found.media_set is not None:
        s = found.media_set
        set_label = MediaSetLabel(s.pool, str(s.uuid), s.seq_nr, s.ctime, s.encryption_key_fingerprint)
    return MediaId(label, set_label)


def read_media_id(drive: Drive) -> MediaId | None:
    return media_id_from_labels(tape_labels.read_labels(DriveBlockDevice(drive)))


def _holds_data(drive: Drive) -> bool:
    """Anything but end of data (or PBS's filemark at BOT, left by an erase) at the start."""
    device = DriveBlockDevice(drive)
    device.rewind()
    return device.read_block() not in (Mark.END_OF_DATA, Mark.FILEMARK)


def _clear_encryption(drive: Drive) -> None:
    # A label is never written encrypted; a drive without encryption has no key to clear.
    try:
        drive.clear_encryption_key()
    except ScsiError as exc:
        log.info("%s: encryption not cleared: %s", drive.path, exc)


def _describe_contents(drive: Drive) -> str:
    try:
        media_id = read_media_id(drive)
    except (TapeFormatError, ScsiError):
        return "it holds data that is not a tapefs/PBS label"
    if media_id is None:
        return "it holds data"
    return f"it is labelled {media_id.label_text!r} ({media_id.uuid})"


def _forget_media(inventory: Inventory, uuid: str) -> None:
    """Drop a tape that is about to be overwritten from the inventory, and its media catalog."""
    if inventory.lookup(uuid) is not None:
        inventory.remove_media(uuid)
    with MediaCatalog.open(inventory.status_dir) as catalog:
        catalog.forget_media(uuid)


def _write_mam(drive: Drive, label_text: str, pool: str | None) -> None:
    # Cartridge memory is a convenience for other tools; a drive without it still labels fine.
    try:
        drive.write_attribute(MAM_USER_MEDIUM_TEXT_LABEL, label_text)
        drive.write_attribute(MAM_MEDIA_POOL, pool)
    except (ScsiError, ValueError) as exc:
        log.info("%s: cartridge memory not written: %s", drive.path, exc)


def label_drive_tape(
    drive: Drive,
    label_text: str,
    inventory: Inventory,
    pool: str | None = None,
    force: bool = False,
    location: MediaLocation | None = None,
    progress: ProgressCallback = _no_progress,
    now: int | None = None,
) -> MediaId:
    """Label the tape loaded in ``drive``; see the module docstring for the checks."""
    check_label_text(label_text)
    steps = 4
    _step(progress, f"checking {label_text}", 0, steps)
    previous: MediaId | None = None
    if _holds_data(drive):
        if not force:
            raise LabelError(
                f"media is not empty: {_describe_contents(drive)} "
                "(format it first, or label with --force to overwrite it)"
            )
        try:
            previous = read_media_id(drive)
        except (TapeFormatError, ScsiError):
            previous = None
    for entry in inventory.find_all_media_by_label_text(label_text):
        if previous is None or entry.uuid != previous.uuid:
            raise LabelError(f"label text {label_text!r} is already used by media {entry.uuid} in the inventory")
    _step(progress, f"formatting {label_text}", 1, steps)
    _clear_encryption(drive)
    drive.format_medium(fast=True)
    _step(progress, f"writing label {label_text}", 2, steps)
    label = tape_labels.MediaLabel(uuidlib.uuid4(), label_text, int(time.time()) if now is None else now, pool)
    device = DriveBlockDevice(drive)
    tape_labels.write_media_label(device, label)
    _step(progress, f"verifying label {label_text}", 3, steps)
    media_id = read_media_id(drive)
    if media_id is None or media_id.uuid != str(label.uuid) or media_id.pool != pool:
        raise LabelError(f"label {label_text!r} did not read back as written")
    _write_mam(drive, label_text, pool)
    # Only now is the old tape gone for good: until here a failure leaves its inventory entry.
    if previous is not None:
        _forget_media(inventory, previous.uuid)
    with MediaCatalog.open(inventory.status_dir) as catalog:
        catalog.reset_media(media_id.uuid, None, None)
    inventory.store(media_id, clear_status=True)
    if location is not None:
        inventory.set_location(media_id.uuid, location)
    _step(progress, f"labelled {label_text}", steps, steps)
    log.info("labelled %s (%s) for pool %s", label_text, media_id.uuid, pool)
    return media_id


def _check_pool(pool: str | None) -> None:
    if pool is not None and pool not in load_media_pool_config():
        raise LabelError(f"no pool named {pool!r} in {MEDIA_POOL_CONFIG_NAME}")


def _location_of(drive: DriveConfig) -> MediaLocation:
    return MediaLocation.online(drive.changer) if drive.changer else MediaLocation.offline()


def label_tape(
    drive: DriveConfig,
    label_text: str,
    pool: str | None = None,
    force: bool = False,
    inventory: Inventory | None = None,
    progress: ProgressCallback = _no_progress,
) -> MediaId:
    """Label the tape in a configured drive (``tapefs label``)."""
    check_label_text(label_text)  # before the drive is touched
    _check_pool(pool)
    with _inventory(inventory) as opened, open_drive(drive, need_medium=True) as device:
        return label_drive_tape(device, label_text, opened, pool, force, _location_of(drive), progress)


class _inventory:
    """The given inventory as is, or the default one, opened and closed here."""

    def __init__(self, inventory: Inventory | None):
        self.given = inventory
        self.opened: Inventory | None = None

    def __enter__(self) -> Inventory:
        if self.given is not None:
            return self.given
        self.opened = Inventory.open()
        return self.opened

    def __exit__(self, *exc_info) -> None:
        if self.opened is not None:
            self.opened.close()


@dataclass(frozen=True)
class TapeOutcome:
    """What ``barcode-label`` or ``inventory --read-labels`` did with one tape of a changer."""

    label_text: str
    slot: int | None
    uuid: str | None
    #: "labelled", "read", "known", "skipped", "failed"
    result: str
    message: str | None = None

    def to_dict(self) -> dict:
        return {
            "label-text": self.label_text,
            "slot": self.slot,
            "uuid": self.uuid,
            "result": self.result,
            "message": self.message,
        }


def _tapes_in_storage_slots(changer_config: ChangerConfig) -> list[tuple[int, str]]:
    with Changer.open(changer_config.path) as changer:
        status = changer.status()
    tapes = [
        (s.number, s.barcode)
        for s in status.slots
        if s.full
        and s.barcode
        and not s.import_export
        and s.number not in changer_config.export_slots
        and not s.barcode.startswith(CLEANING_TAPE_PREFIX)
    ]
    return sorted(tapes, key=lambda tape: tape[1])


def barcode_label(
    config: TapeDeviceConfig,
    drive: DriveConfig,
    pool: str | None = None,
    inventory: Inventory | None = None,
    progress: ProgressCallback = _no_progress,
) -> list[TapeOutcome]:
    """Label every tape of the drive's changer that the inventory does not know, with its
    barcode, in barcode order (cleaning tapes excluded). A tape that turns out to hold data is
    skipped and reported, never overwritten."""
    _check_pool(pool)
    changer_config, _ = changer_of(config, drive)
    if _tape_in_drive(changer_config, drive):
        unload_media(config, drive)
    outcomes: list[TapeOutcome] = []
    with _inventory(inventory) as opened:
        todo = [
            (slot, text)
            for slot, text in _tapes_in_storage_slots(changer_config)
            if not opened.find_all_media_by_label_text(text)
        ]
        for index, (slot, label_text) in enumerate(todo):
            _step(progress, f"labelling {label_text}", index, len(todo))
            load_media_from_slot(config, drive, slot)
            try:
                with open_drive(drive, need_medium=True) as device:
                    media_id = label_drive_tape(
                        device, label_text, opened, pool, location=MediaLocation.online(changer_config.name)
                    )
                outcomes.append(TapeOutcome(label_text, slot, media_id.uuid, "labelled"))
            except (LabelError, TapeFormatError, ScsiError) as exc:
                outcomes.append(TapeOutcome(label_text, slot, None, "skipped", str(exc)))
            finally:
                unload_media(config, drive, slot)
        _step(progress, "done", len(todo), len(todo))
    return outcomes


def _tape_in_drive(changer_config: ChangerConfig, drive: DriveConfig) -> bool:
    with Changer.open(changer_config.path) as changer:
        return changer.status().drive(drive.changer_drivenum or 0).full


@dataclass(frozen=True)
class LabelReading:
    """What ``read-label`` found on the tape in a drive."""

    media_id: MediaId | None
    inventorized: bool


def read_label(drive: DriveConfig, inventorize: bool = False, inventory: Inventory | None = None) -> LabelReading:
    """Read the labels of the tape in a configured drive; with ``inventorize``, store them."""
    with open_drive(drive, need_medium=True) as device:
        media_id = read_media_id(device)
    if media_id is None or not inventorize:
        return LabelReading(media_id, False)
    with _inventory(inventory) as opened:
        _store_read_labels(opened, media_id, _location_of(drive))
    return LabelReading(media_id, True)


def _store_read_labels(inventory: Inventory, media_id: MediaId, location: MediaLocation) -> None:
    # A catalog belongs to one media set: after the tape was relabelled or reused in another
    # set, the old catalog describes data that is gone (PBS's "destroy an unrelated catalog").
    old = inventory.lookup(media_id.uuid)
    new_set = _set_uuid(media_id)
    if old is not None and _set_uuid(old.id) != new_set:
        seq_nr = media_id.media_set_label.seq_nr if new_set is not None else None
        with MediaCatalog.open(inventory.status_dir) as catalog:
            catalog.reset_media(media_id.uuid, new_set, seq_nr)
    inventory.store(media_id)
    inventory.set_location(media_id.uuid, location)


def _set_uuid(media_id: MediaId) -> str | None:
    label = media_id.media_set_label
    return label.uuid if label is not None and not label.is_unassigned else None


def update_inventory(
    config: TapeDeviceConfig,
    drive: DriveConfig,
    read_labels: bool = False,
    read_all: bool = False,
    inventory: Inventory | None = None,
    progress: ProgressCallback = _no_progress,
) -> list[TapeOutcome]:
    """The tapes in the drive's changer and what the inventory knows of them (``tapefs
    inventory``), after recording which tapes are online. With ``read_labels``, tapes the
    inventory does not know (all tapes, with ``read_all``) are loaded and their labels read and
    stored; a label whose text differs from the barcode is reported and not stored."""
    changer_config, _ = changer_of(config, drive)
    outcomes: list[TapeOutcome] = []
    with _inventory(inventory) as opened:
        update_online_status(opened, config)
        tapes = _tapes_in_storage_slots(changer_config)
        todo = [
            (slot, text)
            for slot, text in tapes
            if read_all or (read_labels and not opened.find_all_media_by_label_text(text))
        ]
        for slot, label_text in tapes:
            if (slot, label_text) not in todo:
                known = opened.find_all_media_by_label_text(label_text)
                outcomes.append(
                    TapeOutcome(
                        label_text,
                        slot,
                        known[0].uuid if len(known) == 1 else None,
                        "known" if known else "not-inventoried",
                    )
                )
        if todo and _tape_in_drive(changer_config, drive):
            unload_media(config, drive)
        for index, (slot, label_text) in enumerate(todo):
            _step(progress, f"reading {label_text}", index, len(todo))
            load_media_from_slot(config, drive, slot)
            try:
                outcomes.append(
                    _inventorize_loaded(drive, label_text, slot, opened, MediaLocation.online(changer_config.name))
                )
            finally:
                unload_media(config, drive, slot)
        _step(progress, "done", len(todo), len(todo))
    return sorted(outcomes, key=lambda outcome: outcome.label_text)


def _inventorize_loaded(
    drive: DriveConfig, barcode: str, slot: int, inventory: Inventory, location: MediaLocation
) -> TapeOutcome:
    try:
        with open_drive(drive, need_medium=True) as device:
            media_id = read_media_id(device)
    except (TapeFormatError, ScsiError) as exc:
        return TapeOutcome(barcode, slot, None, "failed", f"cannot read the label: {exc}")
    if media_id is None:
        return TapeOutcome(barcode, slot, None, "skipped", "not labelled")
    if media_id.label_text != barcode:
        return TapeOutcome(
            barcode, slot, media_id.uuid, "skipped", f"label text {media_id.label_text!r} does not match the barcode"
        )
    _store_read_labels(inventory, media_id, location)
    return TapeOutcome(barcode, slot, media_id.uuid, "read")


def format_tape(
    drive: DriveConfig,
    fast: bool = True,
    label_text: str | None = None,
    inventory: Inventory | None = None,
    progress: ProgressCallback = _no_progress,
) -> MediaId | None:
    """Erase the tape in a configured drive (``tapefs format``). With ``label_text``, refuse
    unless the tape carries that label (a guard against formatting the wrong tape). A labelled
    tape leaves the inventory, with its catalog. Returns the labels the tape had."""
    with _inventory(inventory) as opened, open_drive(drive, need_medium=True) as device:
        _step(progress, "reading the label", 0, 2)
        try:
            media_id = read_media_id(device)
        except TapeFormatError:
            media_id = None
        if label_text is not None and (media_id is None or media_id.label_text != label_text):
            found = f"{media_id.label_text!r}" if media_id is not None else "no label"
            raise LabelError(f"the tape in drive {drive.name!r} has {found}, not label {label_text!r}: not formatted")
        _step(progress, "formatting", 1, 2)
        device.format_medium(fast=fast)
        if media_id is not None:
            _forget_media(opened, media_id.uuid)
        _step(progress, "formatted", 2, 2)
        return media_id
