"""``media content``: the snapshots each tape holds, from the media catalog
(``tapefs.catalog.media_catalog``). A tape the catalog does not describe contributes nothing:
rebuilding catalogs from tape is the catalog command's work.
"""

import logging
from dataclasses import dataclass

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.media.inventory import Inventory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotOnTape:
    label_text: str
    uuid: str
    pool: str | None
    media_set_uuid: str
    seq_nr: int
    store: str
    snapshot: str
    file_number: int

    def to_dict(self) -> dict:
        return {
            "label-text": self.label_text,
            "uuid": self.uuid,
            "pool": self.pool,
            "media-set-uuid": self.media_set_uuid,
            "seq-nr": self.seq_nr,
            "store": self.store,
            "snapshot": self.snapshot,
            "file-number": self.file_number,
        }


def media_content(
    inventory: Inventory, pool: str | None = None, label_text: str | None = None, media_set: str | None = None
) -> list[SnapshotOnTape]:
    """Every cataloged snapshot of the inventory's tapes, filtered; by label text, then file number."""
    rows: list[SnapshotOnTape] = []
    with MediaCatalog.open(inventory.status_dir) as catalog:
        for entry in inventory.list_media():
            media_id = entry.id
            set_label = media_id.media_set_label
            if set_label is None or set_label.is_unassigned:
                continue
            if pool is not None and media_id.pool != pool:
                continue
            if label_text is not None and media_id.label_text != label_text:
                continue
            if media_set is not None and set_label.uuid != media_set:
                continue
            for file_number, kind, store, snapshot, _chunks in catalog.media_content(entry.uuid):
                if kind == "snapshot":
                    rows.append(
                        SnapshotOnTape(
                            media_id.label_text,
                            entry.uuid,
                            media_id.pool,
                            set_label.uuid,
                            set_label.seq_nr,
                            store,
                            snapshot,
                            file_number,
                        )
                    )
    return sorted(rows, key=lambda row: (row.label_text, row.file_number))
