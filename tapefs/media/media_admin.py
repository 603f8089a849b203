"""What an operator does to tapes as inventory items (proxmox-tape ``export-media``, ``media
destroy``, ``media status``, ``media move``; docs/tape-admin.md).

* ``export_media`` moves a tape to a free import/export (mail) slot, from a storage slot or a
  drive, and records it offline: it is on its way out of the library.
* ``move_media`` records where a tape that left the library is kept: a vault, or just offline.
  A tape still in a changer cannot be moved on paper; export it first.
* ``set_media_status`` stores or clears full, damaged or retired.
* ``destroy_media`` forgets a tape: its inventory entry, media catalog and ``.log`` copy. A tape
  whose data the pool's retention still protects is refused unless forced.

Every refusal happens before anything is changed, with a message that says why.
"""

import logging
import math
import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.device.changer import Changer, ChangerStatus, StorageSlot
from tapefs.media.drive_lock import DriveLock
from tapefs.media.errors import MediaError
from tapefs.media.inventory import CLEANING_TAPE_PREFIX, Inventory
from tapefs.media.media_id import InventoryEntry, LocationKind, MediaLocation, MediaStatus
from tapefs.media.pool import MediaPool
from tapefs.media.tape_config import ChangerConfig, DriveConfig, MediaPoolConfig
from tapefs.media.tape_devices import open_drive

log = logging.getLogger(__name__)


class MediaAdminError(MediaError):
    """An operator request that cannot be carried out; nothing was changed."""


def is_cleaning_cartridge(label_text: str | None) -> bool:
    return bool(label_text) and label_text.startswith(CLEANING_TAPE_PREFIX)


def is_mail_slot(slot: StorageSlot, changer_config: ChangerConfig) -> bool:
    """An import/export slot: flagged so by the library, or listed in the changer's export-slots."""
    return slot.import_export or slot.number in changer_config.export_slots


def free_storage_slot(status: ChangerStatus, changer_config: ChangerConfig) -> int | None:
    return next((s.number for s in status.slots if not s.full and not is_mail_slot(s, changer_config)), None)


# -- finding a tape ---------------------------------------------------------------------------


def find_media(inventory: Inventory, label_text: str, uuid: str | None = None) -> InventoryEntry:
    """The inventory entry of a tape, by label text (and UUID when several tapes share it)."""
    if uuid is not None:
        entry = inventory.lookup(uuid)
        if entry is None or entry.id.label_text != label_text:
            raise MediaAdminError(f"no media labelled {label_text!r} with UUID {uuid} in the inventory")
        return entry
    entries = inventory.find_all_media_by_label_text(label_text)
    if not entries:
        raise MediaAdminError(f"no media labelled {label_text!r} in the inventory")
    if len(entries) > 1:
        uuids = ", ".join(entry.uuid for entry in entries)
        raise MediaAdminError(f"{len(entries)} media are labelled {label_text!r} ({uuids}): choose one with --uuid")
    return entries[0]


# -- export -----------------------------------------------------------------------------------


def export_media(
    changer_config: ChangerConfig,
    label_text: str,
    inventory: Inventory | None = None,
    drives: Iterable[DriveConfig] = (),
) -> int:
    """Move the tape to a free import/export slot of the changer (unloading it from a drive
    first) and record it offline; returns that slot. ``drives`` are the configured drives, for
    changers that need a drive to eject before the robot takes the tape."""
    with Changer.open(changer_config.path) as changer:
        status = changer.status()
        in_drive = next((d for d in status.drives if d.full and d.barcode == label_text), None)
        in_slot = next((s for s in status.slots if s.full and s.barcode == label_text), None)
        if in_slot is not None and is_mail_slot(in_slot, changer_config):
            target = in_slot.number
        elif in_drive is None and in_slot is None:
            raise MediaAdminError(f"tape {label_text} is not in changer {changer_config.name}: nothing to export")
        else:
            target = _free_mail_slot(status, changer_config, label_text)
            if in_drive is not None:
                source = _unload_drive(changer, changer_config, in_drive.number, drives)
            else:
                source = in_slot.number
            changer.transfer(source, target)
            log.info("exported %s to import/export slot %d of changer %s", label_text, target, changer_config.name)
    if inventory is not None and not is_cleaning_cartridge(label_text):
        for entry in inventory.find_all_media_by_label_text(label_text):
            inventory.set_location(entry.uuid, MediaLocation.offline())
    return target


def _free_mail_slot(status: ChangerStatus, changer_config: ChangerConfig, label_text: str) -> int:
    mail_slots = [slot for slot in status.slots if is_mail_slot(slot, changer_config)]
    free = [slot.number for slot in mail_slots if not slot.full]
    if free:
        return free[0]
    if not mail_slots:
        raise MediaAdminError(
            f"changer {changer_config.name} has no import/export slot "
            f"(set some with 'tapefs changer update {changer_config.name} --export-slots'): "
            f"tape {label_text} not exported"
        )
    full = ", ".join(str(slot.number) for slot in mail_slots)
    raise MediaAdminError(
        f"no free import/export slot in changer {changer_config.name} (slots {full} are full): "
        f"tape {label_text} not exported, nothing moved"
    )


def _unload_drive(
    changer: Changer, changer_config: ChangerConfig, drive_number: int, drives: Iterable[DriveConfig]
) -> int:
    drive = next(
        (d for d in drives if d.changer == changer_config.name and (d.changer_drivenum or 0) == drive_number), None
    )
    with DriveLock(drive.name) if drive is not None else nullcontext():
        # Some libraries only take a cartridge the drive has unthreaded (PBS fix #4904).
        if drive is not None and changer_config.eject_before_unload:
            with open_drive(drive) as opened:
                opened.eject()
        return changer.unload(None, drive_number)


# -- location, status -------------------------------------------------------------------------


def move_media(inventory: Inventory, entry: InventoryEntry, location: MediaLocation) -> None:
    """Record that a tape outside the library is kept in a vault, or just offline."""
    if location.kind is LocationKind.ONLINE:
        raise MediaAdminError("a tape becomes online by being put into a changer, not by a move")
    refuse_if_online(entry)
    inventory.set_location(entry.uuid, location)
    log.info("media %s (%s) is now %s", entry.id.label_text, entry.uuid, location)


def refuse_if_online(entry: InventoryEntry) -> None:
    """A tape still in a changer cannot be recorded elsewhere on paper."""
    current = entry.effective_location
    if current.kind is LocationKind.ONLINE:
        raise MediaAdminError(
            f"tape {entry.id.label_text} is online in changer {current.name}: "
            f"export it first (tapefs export-media {entry.id.label_text})"
        )


def set_media_status(inventory: Inventory, entry: InventoryEntry, status: MediaStatus | None) -> None:
    """Store full, damaged or retired; None clears the stored status."""
    if status is None:
        inventory.clear_status(entry.uuid)
    else:
        inventory.set_status(entry.uuid, status)


# -- destroy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Protection:
    """Why the data on a tape may not be thrown away yet (None from ``data_protection``: it may)."""

    reason: str


def data_protection(
    inventory: Inventory, entry: InventoryEntry, pool_configs: dict[str, MediaPoolConfig], now: int
) -> Protection | None:
    """Whether a tape still holds data its pool's retention protects (docs/media-pools.md, "When a tape expires")."""
    set_label = entry.id.media_set_label
    if set_label is None or set_label.is_unassigned:
        return None
    config = pool_configs.get(set_label.pool)
    if config is None:
        return Protection(f"its pool {set_label.pool!r} is not configured, so its retention is unknown")
    with MediaPool.from_config(config, inventory, force_media_availability=True, no_media_set_locking=True) as pool:
        pool.start_write_session(now)
        media = pool.lookup_media(entry.uuid)
        if pool.media_is_expired(media, now):
            return None
        if media.status is not MediaStatus.FULL:
            return Protection(f"it is {media.status.value} in the current media set of pool {config.name}")
        expires = pool.media_expire_time(media.id)
    if math.isinf(expires):
        return Protection(f"pool {config.name} keeps it (retention {config.retention or 'keep'})")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(expires))
    return Protection(f"pool {config.name} protects it until {when}")


def destroy_media(
    inventory: Inventory,
    entry: InventoryEntry,
    pool_configs: dict[str, MediaPoolConfig],
    force: bool = False,
    now: int | None = None,
) -> None:
    """Forget a tape: inventory entry, media catalog and ``<uuid>.log``."""
    now = int(time.time()) if now is None else now
    protection = data_protection(inventory, entry, pool_configs, now)
    if protection is not None and not force:
        raise MediaAdminError(
            f"media {entry.id.label_text} holds data of media set "
            f"{entry.id.media_set_label.uuid} that has not expired: {protection.reason} "
            "(nothing destroyed; use --force to destroy it anyway)"
        )
    inventory.remove_media(entry.uuid)
    with MediaCatalog.open(inventory.status_dir) as catalog:
        catalog.forget_media(entry.uuid)
    (inventory.status_dir / f"{entry.uuid}.log").unlink(missing_ok=True)
    log.info("destroyed media %s (%s)%s", entry.id.label_text, entry.uuid, " (forced)" if protection else "")
