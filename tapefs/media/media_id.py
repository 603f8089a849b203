"""What the inventory knows about one tape: its media label, its media-set label, where it is
and the status an operator stored (docs/catalog-formats.md, "Inventory").

UUIDs are kept as lowercase hyphenated strings, the form PBS writes in inventory.json.
"""

import enum
import logging
import re
import uuid as uuid_module
from dataclasses import dataclass, replace

from tapefs.media.errors import InventoryError

log = logging.getLogger(__name__)

#: a media-set label with this UUID assigns a tape to a pool without putting it in a set
ZERO_UUID = "00000000-0000-0000-0000-000000000000"

SAFE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._\-]*")
VAULT_NAME_LENGTH = (3, 32)

_FINGERPRINT = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){31}")


def normalize_uuid(text: str) -> str:
    """Accept either the hyphenated or the 32-digit form, in any case (spec conventions)."""
    try:
        return str(uuid_module.UUID(hex=text))
    except (ValueError, TypeError, AttributeError):
        raise InventoryError(f"invalid UUID {text!r}") from None


def new_uuid() -> str:
    return str(uuid_module.uuid4())


def check_fingerprint(text: str) -> str:
    """A key fingerprint in PBS's full text form: 32 lowercase hex pairs joined by ':'."""
    lowered = text.lower()
    if not _FINGERPRINT.fullmatch(lowered):
        raise ValueError(f"invalid key fingerprint {text!r} (expected 32 hex pairs joined by ':')")
    return lowered


class MediaStatus(enum.Enum):
    WRITABLE = "writable"
    FULL = "full"
    UNKNOWN = "unknown"
    DAMAGED = "damaged"
    RETIRED = "retired"


#: the statuses an operator (or a job that filled a tape) may store; the others are computed
STORABLE_STATUSES = (MediaStatus.FULL, MediaStatus.DAMAGED, MediaStatus.RETIRED)


class LocationKind(enum.Enum):
    OFFLINE = "offline"
    ONLINE = "online"
    VAULT = "vault"


@dataclass(frozen=True)
class MediaLocation:
    kind: LocationKind
    name: str | None = None  # the changer (online) or the vault

    @classmethod
    def offline(cls) -> "MediaLocation":
        return cls(LocationKind.OFFLINE)

    @classmethod
    def online(cls, changer: str) -> "MediaLocation":
        if not SAFE_ID.fullmatch(changer):
            raise ValueError(f"invalid changer name {changer!r}")
        return cls(LocationKind.ONLINE, changer)

    @classmethod
    def vault(cls, vault: str) -> "MediaLocation":
        low, high = VAULT_NAME_LENGTH
        if not SAFE_ID.fullmatch(vault) or not low <= len(vault) <= high:
            raise ValueError(
                f"invalid vault name {vault!r} (letters, digits, '_', '.', '-'; {low} to {high} characters)"
            )
        return cls(LocationKind.VAULT, vault)

    @classmethod
    def parse(cls, text: str) -> "MediaLocation":
        """PBS's string form: ``offline``, ``online-<changer>``, ``vault-<vault>``."""
        if text == "offline":
            return cls.offline()
        kind, _, name = text.partition("-")
        if kind == "online" and name:
            return cls.online(name)
        if kind == "vault" and name:
            return cls.vault(name)
        raise ValueError(f"invalid media location {text!r} (offline, online-CHANGER or vault-NAME)")

    def __str__(self) -> str:
        if self.kind is LocationKind.OFFLINE:
            return "offline"
        return f"{self.kind.value}-{self.name}"


@dataclass(frozen=True)
class MediaLabel:
    """File 0 of a tape: who the tape is, for ever (until it is labelled again)."""

    uuid: str
    label_text: str
    ctime: int
    pool: str | None = None


@dataclass(frozen=True)
class MediaSetLabel:
    """File 1 of a tape: which set of which pool it belongs to, and its place in the set."""

    pool: str
    uuid: str
    seq_nr: int
    ctime: int
    encryption_key_fingerprint: str | None = None

    @property
    def is_unassigned(self) -> bool:
        """The zero UUID: assigned to the pool, not yet a member of any set."""
        return self.uuid == ZERO_UUID


@dataclass(frozen=True)
class MediaId:
    label: MediaLabel
    media_set_label: MediaSetLabel | None = None

    @property
    def uuid(self) -> str:
        return self.label.uuid

    @property
    def label_text(self) -> str:
        return self.label.label_text

    @property
    def pool(self) -> str | None:
        """The set label's pool if there is a set label, else the media label's pool."""
        if self.media_set_label is not None:
            return self.media_set_label.pool
        return self.label.pool

    def without_unassigned_set_label(self) -> "MediaId":
        if self.media_set_label is not None and self.media_set_label.is_unassigned:
            return replace(self, media_set_label=None)
        return self


@dataclass(frozen=True)
class InventoryEntry:
    """One row of the inventory. ``location`` and ``status`` are None when never stored."""

    id: MediaId
    location: MediaLocation | None = None
    status: MediaStatus | None = None
    bytes_used: int | None = None

    @property
    def uuid(self) -> str:
        return self.id.uuid

    @property
    def effective_location(self) -> MediaLocation:
        """No stored location means offline."""
        return self.location if self.location is not None else MediaLocation.offline()

    @property
    def effective_status(self) -> MediaStatus:
        """No stored status means unknown."""
        return self.status if self.status is not None else MediaStatus.UNKNOWN
