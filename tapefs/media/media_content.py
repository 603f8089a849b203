"""``media content``: the snapshots each tape holds, from the media catalogs in the tape status
directory (``<uuid>.log``). A tape without a catalog contributes nothing: rebuilding catalogs
from tape is the catalog command's work.
"""

import logging
import uuid as uuidlib
from dataclasses import dataclass

from tapefs.media.inventory import Inventory
from tapefs.tapeformat.errors import MediaCatalogError
from tapefs.tapeformat.media_catalog_log import MediaCatalogLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotOnTape:
    label_text: str
    uuid: str
    pool: str | None
    media_set_uuid: str | None
    seq_nr: int | None
    store: str
    snapshot: str
    file_number: int

    def to_dict(self) -> dict:
        return {"label-text": self.label_text, "uuid": self.uuid, "pool": self.pool,
                "media-set-uuid": self.media_set_uuid, "seq-nr": self.seq_nr, "store": self.store,
                "snapshot": self.snapshot, "file-number": self.file_number}


def media_content(inventory: Inventory, pool: str | None = None, label_text: str | None = None,
                  media_set: str | None = None) -> list[SnapshotOnTape]:
    """Every cataloged snapshot of the inventory's tapes, filtered; by label text, then file number."""
    rows: list[SnapshotOnTape] = []
    for entry in inventory.list_media():
        media_id = entry.id
        set_label = media_id.media_set_label
        if set_label is None or set_label.is_unassigned:
            continue
        if (pool is not None and media_id.pool != pool) or (label_text is not None and media_id.label_text != label_text) \
                or (media_set is not None and set_label.uuid != media_set):
            continue
        path = inventory.status_dir / f"{entry.uuid}.log"
        if not path.is_file():
            continue
        try:
            catalog = MediaCatalogLog.load(path, uuidlib.UUID(entry.uuid))
        except MediaCatalogError as exc:
            log.warning("media %s: catalog not readable: %s", media_id.label_text, exc)
            continue
        for store, snapshots in catalog.content.snapshots.items():
            for snapshot, file_number in snapshots.items():
                rows.append(SnapshotOnTape(media_id.label_text, entry.uuid, media_id.pool, set_label.uuid,
                                           set_label.seq_nr, store, snapshot, file_number))
    return sorted(rows, key=lambda row: (row.label_text, row.file_number))
