"""The rows of ``media list``: every tape with the status a backup job of its pool would see
right now (docs/media-pools.md, "Computed media status"), as PBS's media list computes them.

Each configured pool is opened without locks and with every non-vaulted tape counted as
reachable, and a write session is started in memory only, so that a set the job would close is
shown as closed. Tapes of no pool are writable unless a status was stored; tapes of a pool that
is no longer configured show as unknown.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from tapefs.media.inventory import Inventory
from tapefs.media.media_id import InventoryEntry, MediaLocation, MediaStatus
from tapefs.media.pool import MediaPool
from tapefs.media.tape_config import MediaPoolConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaListEntry:
    uuid: str
    label_text: str
    ctime: int
    pool: str | None
    media_set_uuid: str | None
    media_set_name: str | None
    media_set_ctime: int | None
    seq_nr: int | None
    status: MediaStatus
    location: MediaLocation
    expired: bool
    #: whether the tape's media catalog (``<uuid>.log``) exists; a tape in no set needs none
    catalog: bool
    bytes_used: int | None


def _row(
    inventory: Inventory,
    entry: InventoryEntry,
    status: MediaStatus,
    pool: str | None,
    *,
    expired: bool = False,
    template: str | None = None,
    empty_needs_catalog: bool = False,
) -> MediaListEntry:
    set_label = entry.id.media_set_label
    if set_label is not None and set_label.is_unassigned:
        set_label = None
    has_catalog = (inventory.status_dir / f"{entry.uuid}.log").is_file()
    return MediaListEntry(
        uuid=entry.uuid,
        label_text=entry.id.label_text,
        ctime=entry.id.label.ctime,
        pool=pool,
        media_set_uuid=set_label.uuid if set_label else None,
        media_set_name=inventory.media_set_name(set_label.uuid, template) if set_label else None,
        media_set_ctime=set_label.ctime if set_label else None,
        seq_nr=set_label.seq_nr if set_label else None,
        status=status,
        location=entry.effective_location,
        expired=expired,
        # An empty tape needs no catalog; PBS still asks for one on tapes of unconfigured pools.
        catalog=has_catalog or (set_label is None and not empty_needs_catalog),
        bytes_used=entry.bytes_used,
    )


def list_media(
    inventory: Inventory, pool_configs: Mapping[str, MediaPoolConfig], now: int, pool: str | None = None
) -> list[MediaListEntry]:
    """All tapes (or those of ``pool``), pool by pool in configuration order, then the rest."""
    rows: list[MediaListEntry] = []
    for config in pool_configs.values():
        if pool is not None and config.name != pool:
            continue
        with MediaPool.from_config(
            config, inventory, force_media_availability=True, no_media_set_locking=True
        ) as media_pool:
            media_pool.start_write_session(now)
            for media in media_pool.list_media():
                rows.append(
                    _row(
                        inventory,
                        media.entry,
                        media.status,
                        config.name,
                        expired=media_pool.media_is_expired(media, now),
                        template=config.template,
                    )
                )
    if pool is None:
        for entry in inventory.list_unassigned_media():
            status = entry.status if entry.status is not None else MediaStatus.WRITABLE
            rows.append(_row(inventory, entry, status, None))
    for entry in inventory.list_media():
        entry_pool = entry.id.pool
        if entry_pool is None or entry_pool in pool_configs or (pool is not None and entry_pool != pool):
            continue
        rows.append(_row(inventory, entry, MediaStatus.UNKNOWN, entry_pool, empty_needs_catalog=True))
    return rows
