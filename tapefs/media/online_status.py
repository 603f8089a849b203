"""Which tapes are in which changer: query every configured changer and record the result in
the inventory (docs/media-pools.md, "The inventory").

A tape counts as online in a changer when its barcode shows in one of the changer's drives or
storage slots; tapes in import/export slots (flagged by the changer, or listed in the changer's
``export-slots``) are on their way out and do not count. A changer that cannot be queried is
reported as unknown, so its tapes keep their location.
"""

import logging
from collections.abc import Callable, Collection

from tapefs.device.changer import Changer, ChangerStatus
from tapefs.media.errors import UnknownConfigEntry
from tapefs.media.inventory import Inventory
from tapefs.media.media_id import MediaLocation
from tapefs.media.tape_config import ChangerConfig, TapeDeviceConfig
from tapefs.scsi.errors import ScsiError

log = logging.getLogger(__name__)


def label_texts_in_changer(status: ChangerStatus, export_slots: Collection[int] = ()) -> set[str]:
    """Barcodes in the drives and storage slots of a changer status."""
    label_texts = {drive.barcode for drive in status.drives if drive.full and drive.barcode}
    label_texts.update(
        slot.barcode
        for slot in status.slots
        if slot.full and slot.barcode and not slot.import_export and slot.number not in export_slots
    )
    return label_texts


def query_changer(config: ChangerConfig, open_changer: Callable[[str], Changer] = Changer.open) -> set[str] | None:
    """The label texts in one changer, or None (logged) if it cannot be reached."""
    try:
        with open_changer(config.path) as changer:
            status = changer.status()
    except (ScsiError, OSError) as exc:
        log.warning(
            "changer %s (%s) could not be queried, its tapes keep their location: %s", config.name, config.path, exc
        )
        return None
    return label_texts_in_changer(status, config.export_slots)


def update_online_status(
    inventory: Inventory,
    tape_config: TapeDeviceConfig,
    changer: str | None = None,
    open_changer: Callable[[str], Changer] = Changer.open,
) -> dict[str, MediaLocation]:
    """Query every configured changer (or only ``changer``: the others count as not queried)
    and update the inventory; returns the tapes that moved."""
    if changer is not None and changer not in tape_config.changers:
        raise UnknownConfigEntry(f"no changer named {changer!r} in tape.cfg")
    contents = {
        name: query_changer(config, open_changer) if changer in (None, name) else None
        for name, config in tape_config.changers.items()
    }
    return inventory.update_online_status(contents)
