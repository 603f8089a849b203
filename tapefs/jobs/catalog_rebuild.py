"""Rebuilding the media catalog of a tape from the tape itself (proxmox-tape `catalog` and
`inventory --catalog`; docs/catalog.md).

Fast: a backup writes the catalog archive of its last tape after the data, and a tape new to a
set starts with the catalog archives of the set's earlier members. These are PBS `.log` copies:
the newest one describing this tape is checked against the tape's labels and imported in one
transaction, and the earlier members' ones are imported for tapes the inventory knows and has no
catalog of. Imported catalogs carry no chunk offsets, so a selective restore needs a scan.

Scan: every file is read and each chunk archive (with every chunk's offset) and complete
snapshot archive is registered as it passes, one transaction each. A small state file
(`<media-uuid>.scan` beside the catalog) says how far the scan got, so a scan that was killed
continues after the last file it finished when run again; the `.log` export comes only at the
end, so `media list` shows the catalog as missing until then.

Either way the tape's labels go into the inventory if it does not know them, so a lost state
directory is rebuilt from the tapes alone.
"""

from __future__ import annotations

import json
import logging
import time
import uuid as uuidlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.config.atomic_file import atomic_write
from tapefs.jobs.drive_session import DriveSession, DriveSetup
from tapefs.jobs.errors import JobError
from tapefs.jobs.tape_scan import TapeFileReport, read_next_file, read_tape_files
from tapefs.media.inventory import Inventory
from tapefs.media.labeling import media_id_from_labels
from tapefs.media.locks import lock_media_set
from tapefs.media.media_id import MediaId, MediaLocation
from tapefs.progress import ProgressCallback, ProgressMeter
from tapefs.scsi.errors import ScsiError
from tapefs.tapeformat.block_device import BLOCK_SIZE, BlockDevice
from tapefs.tapeformat.errors import MediaCatalogError, TapeFormatError
from tapefs.tapeformat.labels import read_labels
from tapefs.tapeformat.media_catalog_log import parse_catalog

log = logging.getLogger(__name__)

SCAN_STATE_SUFFIX = ".scan"


class CatalogRebuildError(JobError):
    """A tape whose catalog cannot be rebuilt as asked: unlabelled, of another set than the
    inventory says, or already catalogued."""


@dataclass
class CatalogRebuildResult:
    label_text: str
    media_uuid: str
    media_set: str | None = None
    seq_nr: int | None = None
    #: "catalog-archive" (fast), "scan", "none" (a tape in no media set); for `inventory
    #: --catalog` also "not-found" (no catalog archive, no scan), "present" (restored meanwhile
    #: from another tape) and "failed" (the tape could not be loaded or read)
    method: str = "none"
    #: File number of the catalog archive imported (fast).
    catalog_file: int | None = None
    #: The tapes whose catalogs this tape also carried and that were imported.
    other_catalogs: list[str] = field(default_factory=list)
    #: The tape was not in the inventory and has been added.
    inventorized: bool = False
    #: Scan: the file number a resumed scan went on at (None for a scan from the start).
    resumed_at: int | None = None
    archives: int = 0
    snapshots: int = 0
    chunks: int = 0
    #: Files the scan could not read through: {"file", "type", "error"}.
    damaged: list[dict] = field(default_factory=list)
    #: What was decided along the way, for the operator.
    notes: list[str] = field(default_factory=list)
    #: Every file read by this run's scan (for --verbose and JSON).
    files: list[TapeFileReport] = field(default_factory=list)
    bytes_read: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "label-text": self.label_text,
            "uuid": self.media_uuid,
            "media-set": self.media_set,
            "seq-nr": self.seq_nr,
            "method": self.method,
            "catalog-file": self.catalog_file,
            "other-catalogs": self.other_catalogs,
            "inventorized": self.inventorized,
            "resumed-at": self.resumed_at,
            "archives": self.archives,
            "snapshots": self.snapshots,
            "chunks": self.chunks,
            "damaged": self.damaged,
            "notes": self.notes,
            "files": [report.to_dict() for report in self.files],
            "bytes": self.bytes_read,
            "seconds": round(self.seconds, 3),
        }

    def note(self, message: str) -> None:
        log.info("tape %s: %s", self.label_text, message)
        self.notes.append(message)


@dataclass
class ScanState:
    """How far the scan of one tape got: the file to read next."""

    path: Path
    media_set: str
    next_file: int

    @classmethod
    def load(cls, status_dir: Path, media_uuid: str) -> ScanState | None:
        path = status_dir / f"{media_uuid}{SCAN_STATE_SUFFIX}"
        try:
            value = json.loads(path.read_text())
            return cls(path, str(value["media-set"]), int(value["next-file"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            log.warning("%s is unreadable: the scan starts over", path)
            path.unlink()
            return None

    def save(self) -> None:
        data = json.dumps({"media-set": self.media_set, "next-file": self.next_file}).encode()
        atomic_write(self.path, data, mode=0o640)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def rebuild_catalog(
    session: DriveSession,
    inventory: Inventory,
    catalog: MediaCatalog,
    label_text: str | None = None,
    scan: bool = False,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> CatalogRebuildResult:
    """Restore the catalog of tape `label_text` (loaded through the changer), or of the tape in
    the drive: from its catalog archive, else (or with `scan`) by reading the whole tape. A tape
    already catalogued is refused unless `force`; an interrupted scan is continued."""
    started = time.monotonic()
    device, media_id = _load(session, label_text)
    result = CatalogRebuildResult(media_id.label_text, media_id.uuid)
    result.inventorized = _inventorize(inventory, catalog, media_id, session.setup, force)
    set_label = media_id.media_set_label
    if set_label is None or set_label.is_unassigned:
        result.note("no media-set label: the tape holds no backup data, its catalog is empty")
        if catalog.media_set_of(media_id.uuid) != (None, None):
            catalog.reset_media(media_id.uuid, None, None)
        return result
    result.media_set, result.seq_nr = set_label.uuid, set_label.seq_nr
    meter = ProgressMeter("catalog", progress, inventory.get(media_id.uuid).bytes_used)
    meter.emit("tape-loaded", media_id.label_text)
    with lock_media_set(inventory.status_dir, set_label.uuid):
        state = ScanState.load(inventory.status_dir, media_id.uuid)
        # A scan is only continued into the catalog it was filling.
        if state is not None and (state.media_set != set_label.uuid or force or not _has_catalog(catalog, media_id)):
            state.remove()
            state = None
        if state is None:
            _refuse_existing(catalog, media_id, force)
        if state is not None:
            result.note(f"continuing the interrupted scan (file {state.next_file} on)")
        elif not scan:
            if _restore_fast(device, media_id, inventory, catalog, result, meter):
                _finish(catalog, inventory, device, result, meter, started)
                return result
            result.note(
                f"no usable catalog archive of tape {media_id.label_text} on it (a tape that filled "
                "up has its catalog on the next tape of the set): scanning the whole tape"
            )
        _scan(device, media_id, inventory, catalog, state, result, meter)
    _finish(catalog, inventory, device, result, meter, started)
    return result


def restore_missing_catalogs(
    session: DriveSession,
    inventory: Inventory,
    catalog: MediaCatalog,
    label_texts: Iterable[str],
    progress: ProgressCallback | None = None,
) -> list[CatalogRebuildResult]:
    """`inventory --catalog`: the fast restore for each of these tapes (just inventoried) that
    is in a media set and has no catalog. The last member of a set carries the catalogs of the
    earlier ones, so the members are visited last first and a tape whose catalog came along
    with another is not loaded at all."""
    todo = []
    for label_text in dict.fromkeys(label_texts):
        for entry in inventory.find_all_media_by_label_text(label_text):
            set_label = entry.id.media_set_label
            if set_label is not None and not set_label.is_unassigned and not _has_catalog(catalog, entry.id):
                todo.append(entry)
    todo.sort(key=lambda entry: (entry.id.media_set_label.uuid, -entry.id.media_set_label.seq_nr))
    results = []
    for entry in todo:
        set_label = entry.id.media_set_label
        result = CatalogRebuildResult(entry.id.label_text, entry.uuid, set_label.uuid, set_label.seq_nr)
        results.append(result)
        if _has_catalog(catalog, entry.id):
            result.method = "present"
            result.note("catalog restored from another tape of the set")
            continue
        started = time.monotonic()
        try:
            device, media_id = _load(session, entry.id.label_text)
        except (JobError, ScsiError) as error:
            result.method = "failed"
            result.note(str(error))
            continue
        if media_id.uuid != entry.uuid or media_id.media_set_label != set_label:
            result.method = "not-found"
            result.note("the tape's labels differ from the inventory: run `tapefs catalog` on it")
            continue
        meter = ProgressMeter("catalog", progress)
        meter.emit("tape-loaded", entry.id.label_text)
        with lock_media_set(inventory.status_dir, set_label.uuid):
            found = _restore_fast(device, media_id, inventory, catalog, result, meter)
        if found:
            _finish(catalog, inventory, device, result, meter, started)
        else:
            result.method = "not-found"
            result.note("no catalog archive of this tape on it: `tapefs catalog --scan` rebuilds it")
    return results


# -- loading and the inventory ---------------------------------------------------------------------


def _load(session: DriveSession, label_text: str | None) -> tuple[BlockDevice, MediaId]:
    drive = session.setup.name
    try:
        if label_text is not None:
            device, labels = session.read_labels(label_text)
        else:
            device = session.open_device()
            labels = read_labels(device)
    except TapeFormatError as error:
        raise CatalogRebuildError(f"tape in drive {drive}: cannot read its labels: {error}") from None
    media_id = media_id_from_labels(labels)
    if media_id is None:
        raise CatalogRebuildError(f"the tape in drive {drive} is not labelled: it has no catalog to restore")
    return device, media_id


def _set_of(media_id: MediaId) -> tuple[str, int] | None:
    label = media_id.media_set_label
    if label is None or label.is_unassigned:
        return None
    return label.uuid, label.seq_nr


def _inventorize(
    inventory: Inventory, catalog: MediaCatalog, media_id: MediaId, setup: DriveSetup, force: bool
) -> bool:
    """Check the tape against the inventory and store its labels; True if it was not known."""
    label_text = media_id.label_text
    on_tape = _set_of(media_id)
    entry = inventory.lookup(media_id.uuid)
    known = _set_of(entry.id) if entry is not None else None
    if known is not None and known != on_tape and not force:
        where = f"member {on_tape[1]} of media set {on_tape[0]}" if on_tape else "in no media set"
        raise CatalogRebuildError(
            f"tape {label_text} is {where}, the inventory says member {known[1]} of media set {known[0]}: "
            "nothing changed (`tapefs read-label --inventorize` updates the inventory, --force rebuilds anyway)"
        )
    others = [other for other in inventory.find_all_media_by_label_text(label_text) if other.uuid != media_id.uuid]
    if others and not force:
        raise CatalogRebuildError(
            f"the inventory knows label {label_text} as media {others[0].uuid}, the tape carries media "
            f"{media_id.uuid}: nothing changed (--force replaces the inventory entry)"
        )
    for other in others:
        log.warning("tape %s: forgetting media %s, which carried this label before", label_text, other.uuid)
        inventory.remove_media(other.uuid)
        catalog.forget_media(other.uuid)
    if known is not None and known != on_tape:
        catalog.forget_media(media_id.uuid)
    if entry is not None and entry.id == media_id:
        return False
    inventory.store(media_id)
    if entry is None:
        location = MediaLocation.online(setup.changer_name) if setup.changer_name else MediaLocation.offline()
        inventory.set_location(media_id.uuid, location)
        log.info("tape %s (%s) added to the inventory", label_text, media_id.uuid)
    return entry is None


def _has_catalog(catalog: MediaCatalog, media_id: MediaId) -> bool:
    return catalog.media_set_of(media_id.uuid) == _set_of(media_id)


def _refuse_existing(catalog: MediaCatalog, media_id: MediaId, force: bool) -> None:
    if force or not _has_catalog(catalog, media_id):
        return
    files = len(catalog.media_content(media_id.uuid))
    raise CatalogRebuildError(
        f"tape {media_id.label_text} already has a catalog ({files} archives): --force rebuilds it from the tape"
    )


def _finish(
    catalog: MediaCatalog,
    inventory: Inventory,
    device: BlockDevice,
    result: CatalogRebuildResult,
    meter: ProgressMeter,
    started: float,
) -> None:
    """Export the `.log` (PBS's catalog, and what `media list` looks for) and count."""
    catalog.export_log(result.media_uuid, inventory.status_dir)
    content = catalog.media_content(result.media_uuid)
    result.archives = len(content)
    result.snapshots = sum(1 for row in content if row[1] == "snapshot")
    result.chunks = sum(row[4] for row in content if row[1] == "chunk")
    if inventory.get(result.media_uuid).bytes_used is None:
        try:
            device.space_to_end_of_data()
            inventory.set_bytes_used(result.media_uuid, device.position().block_number * BLOCK_SIZE)
        except ScsiError as error:
            log.info("tape %s: end of data not found (%s)", result.label_text, error)
    result.bytes_read = meter.current
    result.seconds = time.monotonic() - started


# -- fast: the catalog archives ----------------------------------------------------------------------


def _restore_fast(
    device: BlockDevice,
    media_id: MediaId,
    inventory: Inventory,
    catalog: MediaCatalog,
    result: CatalogRebuildResult,
    meter: ProgressMeter,
) -> bool:
    """Import the catalog archives of the tape's start and end; True if this tape's own was."""
    found = _catalog_archives(device, meter)
    set_uuid, seq_nr = _set_of(media_id)
    own: TapeFileReport | None = None
    others: dict[str, TapeFileReport] = {}
    for report in found:
        where = f"catalog archive at file {report.file_number}"
        try:
            described = uuidlib.UUID(report.header_json["uuid"])
            described_set = uuidlib.UUID(report.header_json["media_set_uuid"])
            described_seq = int(report.header_json["seq_nr"])
        except (KeyError, ValueError, TypeError) as error:
            result.note(f"{where}: bad header ({error}), not used")
            continue
        if str(described_set) != set_uuid:
            result.note(f"{where}: belongs to media set {described_set}, not this tape's set; not used")
            continue
        if not report.complete or report.part_number != 0:
            # A catalog bigger than what was left of a tape goes on in parts; a .log is only
            # whole across tapes, which this tape alone cannot give.
            why = report.error or (
                "continued from the previous tape"
                if report.part_number
                else "continued on another tape"
                if report.incomplete
                else "its write was aborted"
            )
            result.note(f"{where} (media {described}): incomplete ({why}); not used")
            continue
        this_tape = str(described) == media_id.uuid
        problem = _disagreement(report, described, described_set, described_seq, seq_nr if this_tape else None)
        if problem:
            result.note(f"{where} disagrees with {problem}; not used")
            continue
        if this_tape:
            own = report  # the newest copy is the last one on tape
        else:
            others[str(described)] = report
    for member_uuid, report in others.items():
        _import_other(member_uuid, report, inventory, catalog, result)
    if own is None:
        return False
    catalog.import_log(own.catalog_bytes, f"tape {media_id.label_text} file {own.file_number}")
    result.method, result.catalog_file = "catalog-archive", own.file_number
    return True


def _catalog_archives(device: BlockDevice, meter: ProgressMeter) -> list[TapeFileReport]:
    """The catalog archives right after the labels (earlier members) and those right before end
    of data (this tape's, after the data), in tape order; the data between is not read."""
    found = []
    first_other = None
    while True:
        report, more = read_next_file(device, meter, keep_catalogs=True, only_kind="catalog-archive")
        if report is None or report.kind != "catalog-archive":
            first_other = report.file_number if report is not None else None
            break
        found.append(report)
        if not more:
            break
    if first_other is None:
        return found
    device.space_to_end_of_data()
    trailing = []
    for file_number in range(device.position().file_number - 1, first_other, -1):
        try:
            device.locate_file(file_number)
        except ScsiError as error:
            log.info("cannot locate file %d: %s", file_number, error)
            break
        report, _ = read_next_file(device, meter, keep_catalogs=True, only_kind="catalog-archive")
        if report is None or report.kind != "catalog-archive":
            # A last file cut short by a killed writer hides nothing: look before it.
            if report is not None and report.kind == "unreadable" and not trailing:
                continue
            break
        trailing.append(report)
    return found + trailing[::-1]


def _disagreement(
    report: TapeFileReport,
    described: uuidlib.UUID,
    described_set: uuidlib.UUID,
    described_seq: int,
    tape_seq_nr: int | None,
) -> str | None:
    """What is wrong between a catalog archive's header, its `.log` and the tape; None if nothing."""
    try:
        content, checker = parse_catalog(report.catalog_bytes)
    except MediaCatalogError as error:
        return f"the format ({error})"
    if content.media_uuid != described:
        return f"its header: it describes media {content.media_uuid}, the header says {described}"
    if content.media_set_uuid != described_set or content.seq_nr != described_seq:
        return (
            f"its header: set {content.media_set_uuid} number {content.seq_nr} inside, "
            f"set {described_set} number {described_seq} in the header"
        )
    if checker.open_archive is not None:
        return "itself: it ends inside a chunk archive"
    if tape_seq_nr is not None:
        if described_seq != tape_seq_nr:
            return f"the tape's media-set label: member {described_seq}, the tape is member {tape_seq_nr}"
        beyond = [n for n in content.content_uuids if n >= report.file_number]
        if beyond:
            return f"the tape: it names file {max(beyond)}, at or after itself"
    return None


def _import_other(
    member_uuid: str, report: TapeFileReport, inventory: Inventory, catalog: MediaCatalog, result: CatalogRebuildResult
) -> None:
    """An earlier member's catalog: only for a tape the inventory knows and has no catalog of."""
    entry = inventory.lookup(member_uuid)
    if entry is None:
        result.note(
            f"catalog archive at file {report.file_number}: member {report.header_json['seq_nr']} "
            f"({member_uuid}) is not in the inventory yet; `tapefs inventory --read-labels --catalog` "
            "restores it from here"
        )
        return
    if _set_of(entry.id) != (result.media_set, int(report.header_json["seq_nr"])):
        result.note(
            f"catalog archive at file {report.file_number}: media {entry.id.label_text} is not that "
            "member of the set in the inventory; not used"
        )
        return
    if _has_catalog(catalog, entry.id):
        return
    catalog.import_log(report.catalog_bytes, f"tape {result.label_text} file {report.file_number}")
    catalog.export_log(member_uuid, inventory.status_dir)
    result.other_catalogs.append(entry.id.label_text)


# -- scan --------------------------------------------------------------------------------------------


def _scan(
    device: BlockDevice,
    media_id: MediaId,
    inventory: Inventory,
    catalog: MediaCatalog,
    state: ScanState | None,
    result: CatalogRebuildResult,
    meter: ProgressMeter,
) -> None:
    set_uuid, seq_nr = _set_of(media_id)
    result.method = "scan"
    if state is None:
        catalog.reset_media(media_id.uuid, set_uuid, seq_nr)
        state = ScanState(inventory.status_dir / f"{media_id.uuid}{SCAN_STATE_SUFFIX}", set_uuid, 2)
        state.save()
        start = 2
    else:
        registered = [row[0] for row in catalog.media_content(media_id.uuid)]
        start = max([state.next_file, *(n + 1 for n in registered)])
        result.resumed_at = start
    meter.emit("scan-started", str(start))
    try:
        if not _locate(device, start, resumed=result.resumed_at is not None):
            state.remove()
            return
        for report in read_tape_files(device, meter):
            _register(report, media_id.uuid, catalog, result)
            state.next_file = report.file_number + 1
            state.save()
            meter.emit("file-done", str(report.file_number))
    except BaseException:
        log.warning(
            "scan of tape %s stopped before file %d: run the same command again to continue there",
            media_id.label_text,
            state.next_file,
        )
        raise
    state.remove()


def _locate(device: BlockDevice, file_number: int, resumed: bool) -> bool:
    """Stand at the file the scan starts with; False when a resumed scan finds nothing left."""
    try:
        device.locate_file(file_number)
    except ScsiError:
        if not resumed:
            raise
        log.info("file %d is past the end of data: the interrupted scan had read every file", file_number)
        return False
    return True


def _register(report: TapeFileReport, media_uuid: str, catalog: MediaCatalog, result: CatalogRebuildResult) -> None:
    result.files.append(report)
    if report.error is not None:
        log.warning("tape %s file %d (%s): %s", result.label_text, report.file_number, report.kind, report.error)
        result.damaged.append({"file": report.file_number, "type": report.kind, "error": report.error})
        return
    if report.missing_end_marker:
        log.info(
            "tape %s file %d: %s without end marker (aborted write), not registered",
            result.label_text,
            report.file_number,
            report.kind,
        )
        return
    if report.kind == "chunk-archive":
        # A part continued on the next tape (INCOMPLETE) is valid on its own, as the writer registers it.
        catalog.register_chunk_archive(media_uuid, report.chunk_part(), report.store)
    elif report.kind == "snapshot-archive" and not report.incomplete and report.part_number == 0:
        catalog.register_snapshot(media_uuid, report.file_number, report.content_uuid, report.store, report.snapshot)
