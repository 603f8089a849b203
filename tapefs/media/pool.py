"""Media pool logic: computed media status, location availability, the current media set, when
a new set starts, and which tape a job writes next (docs/media-pools.md).

A :class:`MediaPool` is built for one job: it picks the pool's latest set as current set and,
unless told otherwise, holds that set's lock until :meth:`MediaPool.close`. All times are epoch
seconds passed in by the caller, so every rule can be tested at exact boundaries.
"""

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from tapefs.media.errors import InventoryError, LockTimeoutError, MediaSetError, NoWritableMediaError
from tapefs.media.inventory import Inventory
from tapefs.media.locks import FileLock, lock_media_set, lock_pool, lock_unassigned_media
from tapefs.media.media_id import (
    InventoryEntry,
    LocationKind,
    MediaId,
    MediaLocation,
    MediaSetLabel,
    MediaStatus,
)
from tapefs.media.media_set import MediaSet
from tapefs.media.policy import (
    AllocationPolicy,
    AlwaysCreate,
    ContinueCurrent,
    CreateAt,
    KeepForever,
    OverwriteAlways,
    ProtectFor,
    RetentionPolicy,
)
from tapefs.media.tape_config import MediaPoolConfig

log = logging.getLogger(__name__)

NEVER = math.inf


@dataclass(frozen=True)
class PoolMedia:
    """A tape as the pool sees it: inventory entry plus computed status and effective location."""

    entry: InventoryEntry
    status: MediaStatus
    location: MediaLocation

    @property
    def uuid(self) -> str:
        return self.entry.uuid

    @property
    def id(self) -> MediaId:
        return self.entry.id


class MediaPool:
    def __init__(
        self,
        name: str,
        inventory: Inventory,
        *,
        changer: str | None = None,
        allocation: AllocationPolicy = ContinueCurrent(),
        retention: RetentionPolicy = KeepForever(),
        encrypt_fingerprint: str | None = None,
        force_media_availability: bool = False,
        no_media_set_locking: bool = False,
        on_media_added: Callable[[MediaId], None] | None = None,
    ):
        """``changer`` is the changer of the drive the job uses, None for a standalone drive.

        ``on_media_added`` is called with the new id of every tape added to the current set,
        after the inventory is updated; the backup job uses it to overwrite the tape's media
        catalog (PBS's catalog ``overwrite``).
        """
        self.name = name
        self.inventory = inventory
        self.changer = changer
        self.allocation = allocation
        self.retention = retention
        self.encrypt_fingerprint = encrypt_fingerprint
        self.force_media_availability = force_media_availability
        self.no_media_set_locking = no_media_set_locking
        self.on_media_added = on_media_added
        self._set_lock: FileLock | None = None
        with self._pool_lock():
            latest = inventory.latest_media_set(name)
            if latest is None:
                self.current_set = MediaSet()
            else:
                self.current_set = MediaSet(latest, inventory.compute_media_set_members(latest))
            self._lock_current_set()
        log.debug(
            "pool %s: current media set %s with %d media", name, self.current_set.uuid, len(self.current_set.members)
        )

    @classmethod
    def from_config(cls, config: MediaPoolConfig, inventory: Inventory, **options) -> "MediaPool":
        """Build from a media-pool.cfg section; ``options`` as for the constructor."""
        return cls(
            config.name,
            inventory,
            allocation=config.allocation_policy,
            retention=config.retention_policy,
            encrypt_fingerprint=config.encrypt,
            **options,
        )

    # -- locks -------------------------------------------------------------------------------

    def _pool_lock(self) -> "FileLock | _NoLock":
        return _NoLock() if self.no_media_set_locking else lock_pool(self.inventory.status_dir, self.name)

    def _lock_current_set(self) -> None:
        if self.no_media_set_locking:
            return
        new_lock = lock_media_set(self.inventory.status_dir, self.current_set.uuid)
        if self._set_lock is not None:
            self._set_lock.release()
        self._set_lock = new_lock

    def close(self) -> None:
        if self._set_lock is not None:
            self._set_lock.release()
            self._set_lock = None

    def __enter__(self) -> "MediaPool":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- status and location -----------------------------------------------------------------

    def compute_media_status(self, media_id: MediaId, stored_status: MediaStatus | None) -> MediaStatus:
        """The computed media status (docs/media-pools.md), relative to this pool and its current set."""
        if stored_status in (MediaStatus.FULL, MediaStatus.DAMAGED, MediaStatus.RETIRED):
            return stored_status
        set_label = media_id.media_set_label
        if set_label is None:
            return MediaStatus.WRITABLE
        if set_label.pool != self.name:
            return MediaStatus.UNKNOWN
        if set_label.is_unassigned:
            return MediaStatus.WRITABLE
        if set_label.uuid != self.current_set.uuid:
            return MediaStatus.FULL
        if self.current_set.last_media == media_id.uuid:
            return MediaStatus.WRITABLE
        return MediaStatus.FULL

    def location_is_available(self, location: MediaLocation) -> bool:
        """Could a job of this pool use a tape there without an operator?"""
        if location.kind is LocationKind.VAULT:
            return False
        if self.force_media_availability:
            return True
        if location.kind is LocationKind.ONLINE:
            # Standalone drives never use tapes inside a library.
            return self.changer is not None and location.name == self.changer
        return self.changer is None

    def pool_media(self, entry: InventoryEntry) -> PoolMedia:
        return PoolMedia(entry, self.compute_media_status(entry.id, entry.status), entry.effective_location)

    def list_media(self) -> list[PoolMedia]:
        """The pool's tapes with the status a job would compute (for ``media list``)."""
        return [self.pool_media(entry) for entry in self.inventory.list_pool_media(self.name)]

    def lookup_media(self, uuid: str) -> PoolMedia:
        """A tape of this pool (or of no pool); an error if it is unknown or belongs to another pool."""
        entry = self.inventory.get(uuid)
        if entry.id.pool is not None and entry.id.pool != self.name:
            raise InventoryError(
                f"media {entry.id.label_text} ({uuid}) does not belong to pool {self.name!r} but to {entry.id.pool!r}"
            )
        return self.pool_media(entry)

    def set_media_status_full(self, uuid: str) -> None:
        """Record that a tape of this pool is full (the drive reported the end of the tape)."""
        if self.lookup_media(uuid).status is not MediaStatus.FULL:
            self.inventory.set_status(uuid, MediaStatus.FULL)

    # -- current set -------------------------------------------------------------------------

    def current_set_usable(self) -> bool:
        """True if the current set's last tape can be written now; False if the set
        is empty or its last tape is not here; MediaSetError if the set must not be used again."""
        members = self.current_set.members
        if not members:
            return False
        last_is_writable = False
        for seq_nr, uuid in enumerate(members):
            if uuid is None:
                raise MediaSetError("media set is incomplete (missing media information)")
            media = self.lookup_media(uuid)
            set_label = media.id.media_set_label
            if set_label is None:
                raise MediaSetError("media owner error (no owner)")
            if set_label.uuid != self.current_set.uuid:
                raise MediaSetError(f"media owner error ({set_label.uuid} != {self.current_set.uuid})")
            if set_label.seq_nr != seq_nr:
                raise MediaSetError(f"media sequence error ({set_label.seq_nr} != {seq_nr})")
            # Every member must carry the pool's key, so members cannot disagree among themselves.
            if set_label.encryption_key_fingerprint != self.encrypt_fingerprint:
                raise MediaSetError("pool encryption key changed")
            is_last = seq_nr == len(members) - 1
            if media.status is MediaStatus.FULL:
                continue
            if media.status is MediaStatus.WRITABLE and is_last:
                if self.location_is_available(media.location):
                    last_is_writable = True
                elif media.location.kind is LocationKind.VAULT:
                    raise MediaSetError(f"writable media offsite in vault {media.location.name!r}")
                continue
            raise MediaSetError(f"unable to use media set - wrong media status {media.status.value}")
        return last_is_writable

    def start_write_session(self, now: int, force: bool = False) -> str | None:
        """Start a new (empty, in-memory) set if needed; returns the reason, or None
        when the job continues the current set."""
        with self._pool_lock():
            reason = "forced" if force else None
            if reason is None:
                try:
                    self.current_set_usable()
                except (MediaSetError, InventoryError) as exc:
                    reason = str(exc)
            if reason is None:
                reason = self._policy_reason(now)
            if reason is None:
                return None
            self.current_set = MediaSet()
            self._lock_current_set()
        log.info("pool %s: starting new media set %s - reason: %s", self.name, self.current_set.uuid, reason)
        return reason

    def _policy_reason(self, now: int) -> str | None:
        if isinstance(self.allocation, AlwaysCreate):
            return "policy is AlwaysCreate"
        if isinstance(self.allocation, CreateAt):
            start = self.inventory.media_set_start_time(self.current_set.uuid)
            if start is not None:
                event_time = self.allocation.event.next_after(start)
                if event_time is not None and now >= event_time:
                    return "policy CreateAt event triggered"
        return None

    # -- expiry ------------------------------------------------------------------------------

    def media_expire_time(self, media_id: MediaId) -> float:
        """When a full tape may be overwritten; ``NEVER`` is +inf."""
        if isinstance(self.retention, KeepForever):
            return NEVER
        set_label = media_id.media_set_label
        if set_label is None:
            return NEVER
        start = self.inventory.media_set_start_time(set_label.uuid)
        if start is None:
            start = set_label.ctime
        next_start = self.inventory.media_set_next_start_time(set_label.uuid)
        if next_start is not None:
            max_use = start if isinstance(self.allocation, AlwaysCreate) else next_start
        elif isinstance(self.allocation, ContinueCurrent):
            max_use = NEVER
        elif isinstance(self.allocation, AlwaysCreate):
            max_use = start
        else:
            event_time = self.allocation.event.next_after(start)
            max_use = NEVER if event_time is None else event_time
        if isinstance(self.retention, OverwriteAlways):
            return max_use
        assert isinstance(self.retention, ProtectFor)
        return max_use + self.retention.seconds

    def media_is_expired(self, media: PoolMedia, now: int) -> bool:
        return media.status is MediaStatus.FULL and now >= self.media_expire_time(media.id)

    # -- candidates --------------------------------------------------------------------------

    def _available(self, entries: list[InventoryEntry]) -> list[PoolMedia]:
        return [media for media in map(self.pool_media, entries) if self.location_is_available(media.location)]

    def next_empty_media(self) -> PoolMedia | None:
        """A writable tape of this pool in no set: oldest label first, then label text."""
        candidates = [
            media
            for media in self._available(self.inventory.list_pool_media(self.name))
            if media.id.media_set_label is None and media.status is MediaStatus.WRITABLE
        ]
        return min(candidates, key=_label_order, default=None)

    def expired_media_candidates(self, now: int) -> list[PoolMedia]:
        """Expired tapes of other sets of this pool, in the order they are reused."""
        candidates = [
            media
            for media in self._available(self.inventory.list_pool_media(self.name))
            if media.id.media_set_label is not None
            and media.id.media_set_label.uuid != self.current_set.uuid
            and self.media_is_expired(media, now)
        ]
        return sorted(
            candidates, key=lambda media: (media.id.media_set_label.ctime, media.id.label_text.encode("utf-8"))
        )

    def next_expired_media(self, now: int) -> PoolMedia | None:
        """The first expired tape whose set nobody holds (a restore may be reading it)."""
        for media in self.expired_media_candidates(now):
            if self.no_media_set_locking or self._set_is_free(media.id.media_set_label.uuid):
                return media
            log.info("pool %s: media set of %s is in use, not reusing it", self.name, media.id.label_text)
        return None

    def _set_is_free(self, media_set_uuid: str) -> bool:
        try:
            lock_media_set(self.inventory.status_dir, media_set_uuid, timeout=0).release()
        except LockTimeoutError:
            return False
        return True

    def next_unassigned_media(self) -> PoolMedia | None:
        candidates = [
            media
            for media in self._available(self.inventory.list_unassigned_media())
            if media.status is MediaStatus.WRITABLE
        ]
        return min(candidates, key=_label_order, default=None)

    # -- allocation --------------------------------------------------------------------------

    def alloc_writable_media(self, now: int) -> str:
        """The UUID of the tape to write, adding a tape to the current set if needed."""
        if self._set_lock is None:
            # Only the holder of the set lock may add tapes to the set; a pool opened without
            # locking is for listing and guessing.
            raise MediaSetError(
                f"pool {self.name}: the media set lock is not held (pool closed or opened without locking)"
            )
        if self.current_set_usable():
            return self.current_set.last_media
        with self._pool_lock():
            media = self.next_empty_media() or self.next_expired_media(now)
            if media is not None:
                self.add_media_to_current_set(media.id, now)
                return media.uuid
        with lock_unassigned_media(self.inventory.status_dir):
            media = self.next_unassigned_media()
            if media is not None:
                self.add_media_to_current_set(media.id, now)
                return media.uuid
        raise NoWritableMediaError(f"alloc writable media in pool '{self.name}' failed: no usable media found")

    def guess_next_writable_media(self, now: int) -> str:
        """Which tape :meth:`alloc_writable_media` would pick, without changing anything."""
        if self.current_set_usable():
            return self.current_set.last_media
        media = self.next_empty_media() or self.next_expired_media(now) or self.next_unassigned_media()
        if media is None:
            raise NoWritableMediaError(f"guess next writable media in pool '{self.name}' failed: no usable media found")
        return media.uuid

    def add_media_to_current_set(self, media_id: MediaId, now: int) -> MediaId:
        """Make the tape the next member of the current set. This is recorded before the tape
        is loaded and relabelled, as in PBS."""
        set_label = MediaSetLabel(
            pool=self.name,
            uuid=self.current_set.uuid,
            seq_nr=len(self.current_set.members),
            ctime=now,
            encryption_key_fingerprint=self.encrypt_fingerprint,
        )
        new_id = MediaId(media_id.label, set_label)
        self.inventory.store(new_id, clear_status=True)
        self.current_set.members.append(new_id.uuid)
        log.info(
            "pool %s: added %s (%s) to media set %s as number %d",
            self.name,
            new_id.label_text,
            new_id.uuid,
            set_label.uuid,
            set_label.seq_nr,
        )
        if self.on_media_added is not None:
            self.on_media_added(new_id)
        return new_id


class _NoLock:
    """Stands in for a lock when the caller asked for no locking (tests, single-user tools)."""

    def __enter__(self) -> "_NoLock":
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def release(self) -> None:
        pass


def _label_order(media: PoolMedia) -> tuple[int, bytes]:
    return media.id.label.ctime, media.id.label_text.encode("utf-8")
