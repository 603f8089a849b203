"""Exceptions of the media-management layer. Each message is one line a user can act on."""

import logging

from tapefs.errors import Busy, DeviceFailure, InvalidInput, NotFound, TapefsError

log = logging.getLogger(__name__)


class MediaError(TapefsError):
    """Base class: anything wrong with the inventory, a pool, a media set or a tape config."""


class InventoryError(MediaError):
    """Unknown media, ambiguous label text, an inconsistent media set, a bad inventory file."""


class BadInventoryFile(InvalidInput, InventoryError):
    """A PBS inventory.json that cannot be read: not JSON, or an entry of the wrong shape."""


class UnknownConfigEntry(NotFound, MediaError, KeyError):
    """tape.cfg has no drive or changer of this name (a KeyError too, for lookups by name)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class UnknownMediaError(NotFound, InventoryError):
    """No media with this UUID or label text in the inventory."""


class MediaSetError(MediaError):
    """The current media set of a pool must not be written to any more (docs/media-pools.md)."""


class NoWritableMediaError(DeviceFailure, MediaError):
    """No tape of the pool, no expired tape and no unassigned tape can be allocated (docs/media-pools.md)."""


class LockTimeoutError(Busy, MediaError):
    """A pool or media-set lock is held by another process for longer than we wait."""


class TapeDeviceError(MediaError):
    """No such drive or changer, a drive without a changer, a tape that is not where asked."""
