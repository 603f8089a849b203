"""Tapes kept in vaults (``tapefs media vault record`` and ``media vault list``, docs/tape-admin.md).

A vault exists by holding tapes: it is the location ``vault-NAME`` of the inventory, set by
``vault record`` (with the operator's note and the time) or by ``media move --vault`` (without).
A listing shows the tapes whose location is a vault now; a note recorded for a tape that has
since come back, or gone to another vault, is not shown.
"""

from dataclasses import dataclass

from tapefs.errors import InvalidInput, NotFound
from tapefs.media.errors import MediaError
from tapefs.media.inventory import Inventory
from tapefs.media.media_admin import refuse_if_online
from tapefs.media.media_id import InventoryEntry, LocationKind, MediaLocation

NOTE_MAX_LENGTH = 256


class VaultInputError(InvalidInput, MediaError):
    """A vault name or note that cannot be recorded; nothing was changed."""


class UnknownVaultError(NotFound, MediaError):
    """No tape is in a vault of that name."""


@dataclass(frozen=True)
class VaultEntry:
    """A tape in a vault, with what the operator recorded when it went there (if anything)."""

    label_text: str
    uuid: str
    vault: str
    pool: str | None
    media_set_uuid: str | None
    seq_nr: int | None
    note: str | None
    recorded: int | None

    def to_dict(self) -> dict:
        return {
            "label-text": self.label_text,
            "uuid": self.uuid,
            "vault": self.vault,
            "pool": self.pool,
            "media-set-uuid": self.media_set_uuid,
            "seq-nr": self.seq_nr,
            "note": self.note,
            "recorded": self.recorded,
        }


def vault_location(name: str) -> MediaLocation:
    try:
        return MediaLocation.vault(name)
    except ValueError as error:
        raise VaultInputError(str(error)) from None


def _check_note(note: str | None) -> None:
    if note is None:
        return
    if not note.isprintable():
        raise VaultInputError("a vault note is one line of printable text")
    if len(note) > NOTE_MAX_LENGTH:
        raise VaultInputError(f"a vault note has at most {NOTE_MAX_LENGTH} characters, not {len(note)}")


def record_in_vault(
    inventory: Inventory, entry: InventoryEntry, vault_name: str, note: str | None, now: int
) -> VaultEntry:
    """Record that the tape (already out of the library) is kept in the vault, with a note."""
    location = vault_location(vault_name)
    _check_note(note)
    refuse_if_online(entry)
    inventory.record_vault_entry(entry.uuid, location, note, now)
    return next(e for e in vault_contents(inventory, vault_name) if e.uuid == entry.uuid)


def vault_contents(inventory: Inventory, vault_name: str | None = None) -> list[VaultEntry]:
    """The tapes in every vault, or in one (an error if it holds none), by vault and label text."""
    if vault_name is not None:
        vault_location(vault_name)
    records = inventory.vault_records()
    found = []
    for media in inventory.list_media():
        location = media.effective_location
        if location.kind is not LocationKind.VAULT or location.name is None:
            continue
        vault, note, recorded = records.get(media.uuid, (None, None, None))
        if vault != location.name:
            note, recorded = None, None
        set_label = media.id.media_set_label
        in_set = set_label is not None and not set_label.is_unassigned
        found.append(
            VaultEntry(
                media.id.label_text,
                media.uuid,
                location.name,
                media.id.pool,
                set_label.uuid if in_set else None,
                set_label.seq_nr if in_set else None,
                note,
                recorded,
            )
        )
    if vault_name is not None:
        chosen = [e for e in found if e.vault == vault_name]
        if not chosen:
            known = sorted({e.vault for e in found})
            raise UnknownVaultError(
                f"no tapes in vault {vault_name!r} (vaults: {', '.join(known) if known else 'none'})"
            )
        found = chosen
    return sorted(found, key=lambda e: (e.vault, e.label_text, e.uuid))
