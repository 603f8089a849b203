"""The tape inventory: every tape tapefs has labelled or read, kept in SQLite in the tape status
directory (``<state dir>/tape/inventory.db``), with import and export of PBS's ``inventory.json``
(docs/catalog-formats.md, "Inventory").

Every mutation runs in its own ``BEGIN IMMEDIATE`` transaction, which gives PBS's "take
.inventory.lck, reload, change, replace the file" for free: two processes never lose each
other's updates, and every read sees the latest committed state.
"""

import json
import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from tapefs.config import paths
from tapefs.config.state_database import StateDatabase
from tapefs.media.errors import BadInventoryFile, InventoryError, UnknownMediaError
from tapefs.media.media_id import (
    STORABLE_STATUSES,
    InventoryEntry,
    LocationKind,
    MediaId,
    MediaLabel,
    MediaLocation,
    MediaSetLabel,
    MediaStatus,
    normalize_uuid,
)

log = logging.getLogger(__name__)

INVENTORY_DB_NAME = "inventory.db"
PBS_INVENTORY_JSON_NAME = "inventory.json"
CLEANING_TAPE_PREFIX = "CLN"
DEFAULT_MEDIA_SET_NAME_TEMPLATE = "%c"

_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS media (
    uuid                TEXT PRIMARY KEY,   -- media UUID, lowercase hyphenated
    label_text          TEXT NOT NULL,      -- not unique: two tapes may carry the same text
    ctime               INTEGER NOT NULL,   -- when the tape was labelled
    label_pool          TEXT,               -- pool written in the media label, if any
    set_uuid            TEXT,               -- media-set label; all set_* are NULL without one
    set_pool            TEXT,
    set_seq_nr          INTEGER,
    set_ctime           INTEGER,            -- when this tape was added to its set
    set_key_fingerprint TEXT,
    location            TEXT,               -- PBS form; NULL = never stored (means offline)
    status              TEXT,               -- NULL = never stored (means unknown)
    bytes_used          INTEGER,
    CHECK ((set_uuid IS NULL) = (set_pool IS NULL)
       AND (set_uuid IS NULL) = (set_seq_nr IS NULL)
       AND (set_uuid IS NULL) = (set_ctime IS NULL))
);
CREATE INDEX IF NOT EXISTS media_by_label_text ON media (label_text);
CREATE INDEX IF NOT EXISTS media_by_set ON media (set_uuid);
-- version 2: what the operator recorded when a tape went into a vault (tapefs media vault record)
CREATE TABLE IF NOT EXISTS vault_record (
    uuid                TEXT PRIMARY KEY,   -- the media (a REPLACE of its media row keeps this)
    vault               TEXT NOT NULL,
    note                TEXT,
    recorded            INTEGER NOT NULL    -- epoch seconds
);
"""
_COLUMNS = (
    "uuid, label_text, ctime, label_pool, set_uuid, set_pool, set_seq_nr, set_ctime, "
    "set_key_fingerprint, location, status, bytes_used"
)


@dataclass(frozen=True)
class MediaSetInfo:
    uuid: str
    pool: str
    #: the set's start (its member 0's ctime), or its earliest member's if member 0 is unknown
    ctime: int
    #: media UUIDs by sequence number, None where the inventory lacks that tape
    members: list[str | None]


def _entry_from_row(row: tuple) -> InventoryEntry:
    (
        uuid,
        label_text,
        ctime,
        label_pool,
        set_uuid,
        set_pool,
        set_seq_nr,
        set_ctime,
        set_key_fingerprint,
        location,
        status,
        bytes_used,
    ) = row
    set_label = None
    if set_uuid is not None:
        set_label = MediaSetLabel(set_pool, set_uuid, set_seq_nr, set_ctime, set_key_fingerprint)
    return InventoryEntry(
        id=MediaId(MediaLabel(uuid, label_text, ctime, label_pool), set_label),
        location=MediaLocation.parse(location) if location is not None else None,
        status=MediaStatus(status) if status is not None else None,
        bytes_used=bytes_used,
    )


def _row_from_entry(entry: InventoryEntry) -> tuple:
    label = entry.id.label
    set_label = entry.id.media_set_label
    return (
        label.uuid,
        label.label_text,
        label.ctime,
        label.pool,
        set_label.uuid if set_label else None,
        set_label.pool if set_label else None,
        set_label.seq_nr if set_label else None,
        set_label.ctime if set_label else None,
        set_label.encryption_key_fingerprint if set_label else None,
        str(entry.location) if entry.location is not None else None,
        entry.status.value if entry.status is not None else None,
        entry.bytes_used,
    )


class Inventory(StateDatabase):
    """The inventory database. Open with :meth:`open`; usable as a context manager."""

    schema = _SCHEMA
    schema_version = _SCHEMA_VERSION
    kind = "inventory"

    def __init__(self, db_path: str | Path):
        super().__init__(db_path, timeout=10.0)

    def version_error(self, message: str) -> Exception:
        return InventoryError(message)

    @classmethod
    def open(cls, status_dir: str | Path | None = None) -> "Inventory":
        status_dir = Path(status_dir) if status_dir is not None else paths.tape_status_dir()
        return cls(status_dir / INVENTORY_DB_NAME)

    @property
    def status_dir(self) -> Path:
        return self.db_path.parent

    def _select(self, where: str = "", parameters: tuple = ()) -> list[InventoryEntry]:
        rows = self._query(f"SELECT {_COLUMNS} FROM media {where} ORDER BY uuid", parameters)
        return [_entry_from_row(row) for row in rows]

    # -- single media ------------------------------------------------------------------------

    def lookup(self, uuid: str) -> InventoryEntry | None:
        entries = self._select("WHERE uuid = ?", (normalize_uuid(uuid),))
        return entries[0] if entries else None

    def get(self, uuid: str) -> InventoryEntry:
        entry = self.lookup(uuid)
        if entry is None:
            raise UnknownMediaError(f"no such media {uuid} in the inventory")
        return entry

    def store(self, media_id: MediaId, clear_status: bool = False) -> None:
        """Add a tape or replace what is known about its labels.

        Location and bytes used are kept; the stored status too unless ``clear_status``. A new
        id without a set label does not replace a zero-UUID set label (an unsaved pool
        assignment).
        """
        media_id = _normalized_media_id(media_id)
        with self._transaction():
            old = self.lookup(media_id.uuid)
            if old is None:
                entry = InventoryEntry(media_id)
            else:
                old_set = old.id.media_set_label
                if media_id.media_set_label is None and old_set is not None and old_set.is_unassigned:
                    media_id = replace(media_id, media_set_label=old_set)
                entry = replace(old, id=media_id, status=None if clear_status else old.status)
            self._put(entry)
        log.debug("stored media %s (%s)", media_id.uuid, media_id.label_text)

    def _put(self, entry: InventoryEntry) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO media ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", _row_from_entry(entry)
        )

    def _update(self, uuid: str, column: str, value) -> None:
        uuid = normalize_uuid(uuid)
        with self._transaction():
            cursor = self._db.execute(f"UPDATE media SET {column} = ? WHERE uuid = ?", (value, uuid))
            if cursor.rowcount == 0:
                raise UnknownMediaError(f"no such media {uuid} in the inventory")

    def remove_media(self, uuid: str) -> None:
        uuid = normalize_uuid(uuid)
        with self._transaction():
            if self._db.execute("DELETE FROM media WHERE uuid = ?", (uuid,)).rowcount == 0:
                raise UnknownMediaError(f"no such media {uuid} in the inventory")
            self._db.execute("DELETE FROM vault_record WHERE uuid = ?", (uuid,))

    def set_status(self, uuid: str, status: MediaStatus) -> None:
        """Store full, damaged or retired; writable and unknown are only ever computed."""
        if status not in STORABLE_STATUSES:
            raise InventoryError(f"cannot store media status {status.value!r} (only full, damaged or retired)")
        self._update(uuid, "status", status.value)

    def clear_status(self, uuid: str) -> None:
        self._update(uuid, "status", None)

    def set_location(self, uuid: str, location: MediaLocation) -> None:
        self._update(uuid, "location", str(location))

    def record_vault_entry(self, uuid: str, vault: MediaLocation, note: str | None, recorded: int) -> None:
        """Store the tape's location in ``vault`` and the operator's note and time with it."""
        if vault.kind is not LocationKind.VAULT:
            raise InventoryError(f"{vault} is not a vault")
        uuid = normalize_uuid(uuid)
        with self._transaction():
            cursor = self._db.execute("UPDATE media SET location = ? WHERE uuid = ?", (str(vault), uuid))
            if cursor.rowcount == 0:
                raise UnknownMediaError(f"no such media {uuid} in the inventory")
            self._db.execute(
                "INSERT OR REPLACE INTO vault_record (uuid, vault, note, recorded) VALUES (?,?,?,?)",
                (uuid, vault.name, note, recorded),
            )

    def vault_records(self) -> dict[str, tuple[str, str | None, int]]:
        """Media UUID -> (vault, note, time) as last recorded; the tape may have left since."""
        rows = self._query("SELECT uuid, vault, note, recorded FROM vault_record")
        return {uuid: (vault, note, recorded) for uuid, vault, note, recorded in rows}

    def set_bytes_used(self, uuid: str, bytes_used: int | None) -> None:
        self._update(uuid, "bytes_used", bytes_used)

    # -- lists -------------------------------------------------------------------------------

    def list_media(self) -> list[InventoryEntry]:
        """Every tape, in UUID order."""
        return self._select()

    def find_all_media_by_label_text(self, label_text: str) -> list[InventoryEntry]:
        return self._select("WHERE label_text = ?", (label_text,))

    def find_media_by_label_text(self, label_text: str) -> InventoryEntry | None:
        """The one tape with this label text; an error if several carry it."""
        entries = self.find_all_media_by_label_text(label_text)
        if len(entries) > 1:
            uuids = ", ".join(entry.uuid for entry in entries)
            raise InventoryError(f"label text {label_text!r} is ambiguous: {len(entries)} media carry it ({uuids})")
        return entries[0] if entries else None

    def list_pool_media(self, pool: str) -> list[InventoryEntry]:
        """Tapes of ``pool``; a zero-UUID set label is reported as no set label."""
        entries = self._select("WHERE set_pool = ? OR (set_uuid IS NULL AND label_pool = ?)", (pool, pool))
        return [replace(entry, id=entry.id.without_unassigned_set_label()) for entry in entries]

    def list_unassigned_media(self) -> list[InventoryEntry]:
        """Tapes of no pool at all: no set label and no pool in the media label."""
        return self._select("WHERE set_uuid IS NULL AND label_pool IS NULL")

    def list_used_media(self) -> list[InventoryEntry]:
        """Tapes that are members of a media set."""
        return [
            entry for entry in self._select("WHERE set_uuid IS NOT NULL") if not entry.id.media_set_label.is_unassigned
        ]

    # -- media sets --------------------------------------------------------------------------

    def _set_members(self, media_set_uuid: str) -> list[InventoryEntry]:
        return self._select("WHERE set_uuid = ?", (normalize_uuid(media_set_uuid),))

    def compute_media_set_members(self, media_set_uuid: str) -> list[str | None]:
        """Media UUIDs indexed by sequence number, None where the inventory has no tape."""
        members: list[str | None] = []
        for entry in self._set_members(media_set_uuid):
            seq_nr = entry.id.media_set_label.seq_nr
            if seq_nr >= len(members):
                members.extend([None] * (seq_nr + 1 - len(members)))
            if members[seq_nr] is not None:
                raise InventoryError(
                    f"media set {media_set_uuid}: sequence number {seq_nr} is used by both "
                    f"{members[seq_nr]} and {entry.uuid}"
                )
            members[seq_nr] = entry.uuid
        return members

    def media_set_start_time(self, media_set_uuid: str) -> int | None:
        """The ctime of the set's member number 0; None if that tape is not in the inventory.

        Should two tapes claim number 0, the one with the greater UUID counts, as in PBS.
        """
        rows = self._query(
            "SELECT set_ctime FROM media WHERE set_uuid = ? AND set_seq_nr = 0 ORDER BY uuid DESC",
            (normalize_uuid(media_set_uuid),),
        )
        return rows[0][0] if rows else None

    def media_set_next_start_time(self, media_set_uuid: str) -> int | None:
        """The earliest set-label ctime of another set of the same pool that is later than this set.

        As PBS, "this set's ctime" is the set-label ctime of the first member in UUID order
        (docs/media-pools.md, "When a tape expires"), not the set start.
        """
        members = self._set_members(media_set_uuid)
        if not members:
            return None
        this_set = members[0].id.media_set_label
        # As in PBS, a zero-UUID pool assignment counts as another set here.
        rows = self._query(
            "SELECT MIN(set_ctime) FROM media WHERE set_pool = ? AND set_uuid != ? AND set_ctime > ?",
            (this_set.pool, this_set.uuid, this_set.ctime),
        )
        return rows[0][0]

    def latest_media_set(self, pool: str) -> str | None:
        """The set of ``pool`` whose member has the highest ctime.

        If another set has a member at least as new, the result is None: which set is current
        cannot be decided, and the caller starts a new one.
        """
        set_labels = [
            entry.id.media_set_label for entry in self.list_used_media() if entry.id.media_set_label.pool == pool
        ]
        if not set_labels:
            return None
        newest = set_labels[0]
        for set_label in set_labels[1:]:
            if set_label.ctime > newest.ctime:
                newest = set_label
        for set_label in set_labels:
            if set_label.uuid != newest.uuid and set_label.ctime >= newest.ctime:
                log.warning(
                    "pool %s: media sets %s and %s were both written at %d; no latest set",
                    pool,
                    newest.uuid,
                    set_label.uuid,
                    newest.ctime,
                )
                return None
        return newest.uuid

    def lookup_media_set_pool(self, media_set_uuid: str) -> str:
        members = self._set_members(media_set_uuid)
        if not members:
            raise InventoryError(f"media set {media_set_uuid} is incomplete (no member in the inventory)")
        pools = {entry.id.media_set_label.pool for entry in members}
        if len(pools) > 1:
            raise InventoryError(
                f"media set {media_set_uuid} has members in several pools ({', '.join(sorted(pools))})"
            )
        return pools.pop()

    def media_set_name(self, media_set_uuid: str, template: str | None = None) -> str:
        """The set's display name: its start time through strftime (local time), ``%id%`` = UUID."""
        start = self.media_set_start_time(media_set_uuid)
        if start is None:
            return normalize_uuid(media_set_uuid)
        template = (template or DEFAULT_MEDIA_SET_NAME_TEMPLATE).replace("%id%", normalize_uuid(media_set_uuid))
        return time.strftime(template, time.localtime(start))

    def list_media_sets(self, pool: str | None = None) -> list[MediaSetInfo]:
        """Every media set (of ``pool``), oldest first: the sets a restore can choose from."""
        by_set: dict[str, list[InventoryEntry]] = {}
        for entry in self.list_used_media():
            if pool is None or entry.id.media_set_label.pool == pool:
                by_set.setdefault(entry.id.media_set_label.uuid, []).append(entry)
        sets = []
        for set_uuid, entries in by_set.items():
            start = self.media_set_start_time(set_uuid)
            first_ctime = min(entry.id.media_set_label.ctime for entry in entries)
            sets.append(
                MediaSetInfo(
                    uuid=set_uuid,
                    pool=entries[0].id.media_set_label.pool,
                    ctime=start if start is not None else first_ctime,
                    members=self.compute_media_set_members(set_uuid),
                )
            )
        return sorted(sets, key=lambda info: (info.ctime, info.uuid))

    def destroy_media(self, uuid: str, force: bool = False) -> InventoryEntry:
        """Forget a tape; one that belongs to a media set only with ``force`` (its data would be
        unreachable for restores). Returns what was removed."""
        entry = self.get(uuid)
        set_label = entry.id.media_set_label
        if not force and set_label is not None and not set_label.is_unassigned:
            raise InventoryError(
                f"media {entry.id.label_text} ({entry.uuid}) contains data of media set "
                f"{set_label.uuid} (use force to remove it anyway)"
            )
        self.remove_media(entry.uuid)
        return entry

    # -- online and offline tracking ---------------------------------------------------------

    def update_online_status(self, changer_contents: Mapping[str, Collection[str] | None]) -> dict[str, MediaLocation]:
        """Record which tapes the configured changers hold (docs/media-pools.md, "The inventory").

        ``changer_contents`` maps every configured changer to the label texts in its drives and
        storage slots (not import/export slots), or to None if it could not be queried. Returns
        the tapes whose location changed, with their new location.
        """
        changes: dict[str, MediaLocation] = {}
        with self._transaction():
            entries = self._select()
            by_label: dict[str, list[InventoryEntry]] = {}
            for entry in entries:
                by_label.setdefault(entry.id.label_text, []).append(entry)
            seen_in: dict[str, str] = {}
            for changer, label_texts in changer_contents.items():
                for label_text in label_texts or ():
                    if label_text.startswith(CLEANING_TAPE_PREFIX):
                        continue
                    candidates = by_label.get(label_text, [])
                    if len(candidates) > 1:
                        log.warning(
                            "changer %s holds %r, but %d media carry that label text; location unchanged",
                            changer,
                            label_text,
                            len(candidates),
                        )
                    elif candidates:
                        seen_in[candidates[0].uuid] = changer
            for entry in entries:
                location = entry.effective_location
                if entry.uuid in seen_in:
                    new_location = MediaLocation.online(seen_in[entry.uuid])
                elif location.kind is LocationKind.ONLINE:
                    if location.name in changer_contents and changer_contents[location.name] is None:
                        continue
                    if location.name in changer_contents and self._label_ambiguous_in(
                        entry, changer_contents[location.name], by_label
                    ):
                        continue
                    new_location = MediaLocation.offline()
                else:
                    continue
                if entry.location != new_location:
                    self._db.execute("UPDATE media SET location = ? WHERE uuid = ?", (str(new_location), entry.uuid))
                    changes[entry.uuid] = new_location
        for uuid, location in changes.items():
            log.info("media %s is now %s", uuid, location)
        return changes

    @staticmethod
    def _label_ambiguous_in(
        entry: InventoryEntry, label_texts: Collection[str], by_label: Mapping[str, list[InventoryEntry]]
    ) -> bool:
        # A tape whose label text the changer reports, but which we could not tell apart from
        # another tape with the same text, may well still be there.
        return entry.id.label_text in label_texts and len(by_label[entry.id.label_text]) > 1

    # -- PBS inventory.json ------------------------------------------------------------------

    def export_pbs_json(self) -> str:
        """The inventory as PBS's inventory.json: pretty JSON, sorted by UUID, no trailing newline,
        every object's keys sorted (PBS prints it through a serde_json Value)."""
        entries = [_entry_to_json(entry) for entry in self._select()]
        return json.dumps(entries, indent=2, ensure_ascii=False, sort_keys=True)

    def import_pbs_json(self, text: str, source: str = PBS_INVENTORY_JSON_NAME) -> int:
        """Add or replace the tapes of a PBS inventory.json; returns how many. All or nothing."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInventoryFile(f"{source}: not valid JSON: {exc}") from None
        if not isinstance(data, list):
            raise BadInventoryFile(f"{source}: expected a JSON array of media entries")
        entries = [_entry_from_json(item, f"{source}: entry {index}") for index, item in enumerate(data)]
        with self._transaction():
            for entry in entries:
                self._put(entry)
        log.info("imported %d media from %s", len(entries), source)
        return len(entries)

    def import_pbs_file(self, path: str | Path, missing_ok: bool = True) -> int:
        """import_pbs_json of a file. A missing file is an empty inventory, as PBS reads it, or
        (not missing_ok, for a file a user named) FileNotFoundError."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            if not missing_ok:
                raise
            return 0
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInventoryFile(f"{path}: not UTF-8 text, not a PBS inventory.json") from None
        return self.import_pbs_json(text, str(path))


def _normalized_media_id(media_id: MediaId) -> MediaId:
    label = replace(media_id.label, uuid=normalize_uuid(media_id.label.uuid))
    set_label = media_id.media_set_label
    if set_label is not None:
        set_label = replace(set_label, uuid=normalize_uuid(set_label.uuid))
    return MediaId(label, set_label)


def _entry_to_json(entry: InventoryEntry) -> dict:
    label = entry.id.label
    label_json: dict = {"uuid": label.uuid, "label_text": label.label_text, "ctime": label.ctime}
    if label.pool is not None:
        label_json["pool"] = label.pool
    id_json: dict = {"label": label_json}
    set_label = entry.id.media_set_label
    if set_label is not None:
        set_json: dict = {
            "pool": set_label.pool,
            "uuid": set_label.uuid,
            "seq_nr": set_label.seq_nr,
            "ctime": set_label.ctime,
        }
        if set_label.encryption_key_fingerprint is not None:
            set_json["encryption_key_fingerprint"] = set_label.encryption_key_fingerprint
        id_json["media_set_label"] = set_json
    result: dict = {"id": id_json}
    if entry.location is not None:
        result["location"] = str(entry.location)
    if entry.status is not None:
        result["status"] = entry.status.value
    if entry.bytes_used is not None:
        result["bytes_used"] = entry.bytes_used
    return result


class _JsonShapeError(BadInventoryFile):
    """A missing key or a value of the wrong JSON type; the message already says where."""


def _json_field(obj: dict, key: str, kind: type | tuple, where: str, required: bool = True):
    if not isinstance(obj, dict):
        raise _JsonShapeError(f"{where}: expected a JSON object")
    if key not in obj or obj[key] is None:
        if required:
            raise _JsonShapeError(f"{where}: missing {key!r}")
        return None
    value = obj[key]
    # bool is an int in Python; JSON true is never a valid number here.
    if isinstance(value, bool) or not isinstance(value, kind):
        raise _JsonShapeError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _entry_from_json(item: dict, where: str) -> InventoryEntry:
    id_json = _json_field(item, "id", dict, where)
    label_json = _json_field(id_json, "label", dict, where + ": id")
    label_where = where + ": id.label"
    try:
        label = MediaLabel(
            uuid=normalize_uuid(_json_field(label_json, "uuid", str, label_where)),
            label_text=_json_field(label_json, "label_text", str, label_where),
            ctime=_json_field(label_json, "ctime", int, label_where),
            pool=_json_field(label_json, "pool", str, label_where, required=False),
        )
        set_label = None
        set_json = _json_field(id_json, "media_set_label", dict, where + ": id", required=False)
        if set_json is not None:
            set_where = where + ": id.media_set_label"
            set_label = MediaSetLabel(
                pool=_json_field(set_json, "pool", str, set_where),
                uuid=normalize_uuid(_json_field(set_json, "uuid", str, set_where)),
                seq_nr=_json_field(set_json, "seq_nr", int, set_where),
                ctime=_json_field(set_json, "ctime", int, set_where),
                encryption_key_fingerprint=_json_field(
                    set_json, "encryption_key_fingerprint", str, set_where, required=False
                ),
            )
        location_text = _json_field(item, "location", str, where, required=False)
        status_text = _json_field(item, "status", str, where, required=False)
        return InventoryEntry(
            id=MediaId(label, set_label),
            location=MediaLocation.parse(location_text) if location_text is not None else None,
            status=MediaStatus(status_text) if status_text is not None else None,
            bytes_used=_json_field(item, "bytes_used", int, where, required=False),
        )
    except _JsonShapeError:
        raise
    except (InventoryError, ValueError) as exc:
        raise BadInventoryFile(f"{where}: {exc}") from None
