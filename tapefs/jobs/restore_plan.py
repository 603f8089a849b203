"""``tapefs restore --plan``: which tapes a restore needs and where each one is now, found from
the inventory, the media catalog and the changers' element status, without touching a drive.

Without snapshot names a restore reads every tape of the media set. A named snapshot needs the
tape that holds its archive, and the set's earlier tapes too: its chunk archives are written
just before it, but a chunk the set already held is not written again, so it may be on any
earlier tape (the plan cannot know which without reading the snapshot's indexes from tape).
With ``--notify`` each tape outside the library is asked for as a ``tape-load`` notification.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.device.changer import Changer, ChangerStatus
from tapefs.jobs.errors import JobError
from tapefs.jobs.restore import find_snapshot_place
from tapefs.media.inventory import Inventory
from tapefs.media.media_id import LocationKind
from tapefs.media.tape_config import TapeDeviceConfig
from tapefs.notify import events
from tapefs.notify.dispatch import send
from tapefs.scsi.errors import ScsiError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedTape:
    """One tape a restore needs: where it is, and (in a vault) what was noted when it went."""

    seq_nr: int
    label_text: str
    uuid: str
    #: "drive", "slot", "import-export", "library" (its changer did not answer), "vault" or "offline"
    place: str
    #: the changer (drive, slot, import-export) or the vault; None when offline
    where: str | None
    #: drive name (or number) or slot number in the changer
    element: str | None
    note: str | None
    reason: str

    def to_dict(self) -> dict:
        return {
            "seq-nr": self.seq_nr,
            "label-text": self.label_text,
            "uuid": self.uuid,
            "place": self.place,
            "where": self.where,
            "element": self.element,
            "note": self.note,
            "reason": self.reason,
        }


def _changer_places(
    tape_config: TapeDeviceConfig, open_changer: Callable[[str], Changer]
) -> dict[str, tuple[str, str, str]]:
    """Barcode -> (place, changer, element) for every configured changer that answers."""
    drive_names = {
        (drive.changer, drive.changer_drivenum or 0): drive.name
        for drive in tape_config.drives.values()
        if drive.changer is not None
    }
    places: dict[str, tuple[str, str, str]] = {}
    for name, config in tape_config.changers.items():
        try:
            with open_changer(config.path) as changer:
                status: ChangerStatus = changer.status()
        except (ScsiError, OSError) as error:
            log.warning("changer %s (%s) could not be queried: %s", name, config.path, error)
            continue
        for drive in status.drives:
            if drive.full and drive.barcode:
                places[drive.barcode] = ("drive", name, drive_names.get((name, drive.number), str(drive.number)))
        for slot in status.slots:
            if slot.full and slot.barcode:
                mail = slot.import_export or slot.number in config.export_slots
                places[slot.barcode] = ("import-export" if mail else "slot", name, str(slot.number))
    return places


def restore_plan(
    media_set: str,
    inventory: Inventory,
    catalog: MediaCatalog,
    tape_config: TapeDeviceConfig,
    snapshots: list[str] | None = None,
    open_changer: Callable[[str], Changer] = Changer.open,
) -> list[PlannedTape]:
    """The tapes a restore of ``media_set`` (or of the named snapshots) reads, in tape order."""
    members = inventory.compute_media_set_members(media_set)
    if not members:
        raise JobError(f"media set {media_set} is not in the inventory")
    if None in members:
        raise JobError(f"media set {media_set} is incomplete (member {members.index(None)} unknown)")
    reasons = {seq_nr: "the whole media set" for seq_nr in range(len(members))}
    if snapshots:
        places = catalog.snapshots_in_set(media_set)
        archive_tapes = {find_snapshot_place(places, item, media_set).seq_nr for item in snapshots}
        reasons = {
            seq_nr: "snapshot archive" if seq_nr in archive_tapes else "chunks the snapshots may share"
            for seq_nr in range(max(archive_tapes) + 1)
        }
    in_changers = _changer_places(tape_config, open_changer)
    vault_notes = inventory.vault_records()
    plan = []
    for seq_nr, reason in sorted(reasons.items()):
        entry = inventory.get(members[seq_nr])
        label_text = entry.id.label_text
        location = entry.effective_location
        note = None
        if label_text in in_changers:
            place, where, element = in_changers[label_text]
        elif location.kind is LocationKind.ONLINE:  # its changer did not answer: no slot to tell
            place, where, element = "library", location.name, None
        elif location.kind is LocationKind.VAULT:
            place, where, element = "vault", location.name, None
            vault, recorded_note, _ = vault_notes.get(entry.uuid, (None, None, None))
            note = recorded_note if vault == location.name else None
        else:
            place, where, element = "offline", None, None
        plan.append(PlannedTape(seq_nr, label_text, entry.uuid, place, where, element, note, reason))
    return plan


#: places from which an operator has to bring a tape into the library
AWAY = ("vault", "offline", "import-export")


def request_retrieval(media_set: str, plan: list[PlannedTape], destination: str, is_changer: bool = True) -> int:
    """Send a ``tape-load`` notification for each planned tape outside the library (in a vault,
    offline, or in an import/export slot nobody took it from), asking for it in ``destination``
    (a changer, or a standalone drive); how many were asked for."""
    away = [tape for tape in plan if tape.place in AWAY]
    for tape in away:
        where = f" from vault {tape.where}" if tape.place == "vault" else ""
        note = f" ({tape.note})" if tape.note else ""
        reason = f"A restore of media set {media_set} needs tape {tape.label_text}{where}{note}: {tape.reason}."
        send(events.tape_load(tape.label_text, destination, reason, is_changer))
    return len(away)
