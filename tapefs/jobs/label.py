"""Labelling a blank tape: write file 0 and record the tape in the inventory and the catalog
(spec §2.2). A tape that holds anything is refused: labelling would destroy it."""
from __future__ import annotations

import logging
import time
import uuid as uuidlib

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.jobs.drive_session import DriveSession
from tapefs.jobs.errors import JobError
from tapefs.media import media_id
from tapefs.media.inventory import Inventory
from tapefs.tapeformat.block_device import Mark
from tapefs.tapeformat.errors import TapeFormatError
from tapefs.tapeformat.labels import MediaLabel, read_labels, write_media_label

log = logging.getLogger(__name__)


def label_media(session: DriveSession, inventory: Inventory, catalog: MediaCatalog, label_text: str,
                pool: str | None = None, now: int | None = None) -> media_id.MediaId:
    """Label the tape `label_text` (loaded through the changer, or already in a standalone
    drive); the new media id."""
    if inventory.find_all_media_by_label_text(label_text):
        raise JobError(f"media with label {label_text!r} already exists in the inventory")
    device = _load_any(session, label_text)
    _refuse_data(device, label_text)
    label = MediaLabel(uuidlib.uuid4(), label_text, int(time.time()) if now is None else now, pool)
    write_media_label(device, label)
    new_id = media_id.MediaId(media_id.MediaLabel(str(label.uuid), label_text, label.ctime, pool))
    inventory.store(new_id, clear_status=True)
    catalog.reset_media(str(label.uuid), None, None)
    log.info("labelled %s as %s (pool %s)", label_text, label.uuid, pool)
    return new_id


def _load_any(session: DriveSession, label_text: str):
    if session.setup.changer_path is not None:
        return session.load(label_text)
    # A standalone drive: whatever tape is in it gets the label.
    return session.open_device()


def _refuse_data(device, label_text: str) -> None:
    try:
        labels = read_labels(device)
    except TapeFormatError as error:
        raise JobError(f"tape {label_text} holds data that is not a tapefs/PBS label ({error}); "
                       "not labelling it") from None
    if labels.media is not None:
        raise JobError(f"tape {label_text} is already labelled {labels.media.label_text} "
                       f"({labels.media.uuid}); not labelling it")
    device.rewind()
    if device.read_block() is not Mark.END_OF_DATA:
        raise JobError(f"tape {label_text} holds data; not labelling it")
    device.rewind()
