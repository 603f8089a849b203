"""Reading a tape file by file and saying what each file holds: PBS's `debug scan`, and the
reading half of `catalog --scan` (docs/catalog.md).

Every file is read through to its end, so a chunk archive yields every entry with its stream
offset (what a catalog needs for single-chunk reads) and every blob's CRC is checked. A file
that cannot be read (damaged blocks, a medium error, unknown data, a bad chunk) is reported with
the error and the scan goes on with the next file; only end of data inside a file (a writer killed before its
filemark) ends it.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from tapefs.datastore.blob import inspect_blob
from tapefs.datastore.errors import DatastoreError
from tapefs.jobs.drive_session import DriveSession
from tapefs.progress import ProgressCallback, ProgressMeter
from tapefs.scsi.errors import ScsiError
from tapefs.tapeformat import magic
from tapefs.tapeformat.archive_part import ArchivePart, ChunkLocation
from tapefs.tapeformat.block import PAYLOAD_SIZE
from tapefs.tapeformat.block_device import BlockDevice, Mark
from tapefs.tapeformat.chunk_archive import ENTRY_HEADER_SIZE, ChunkArchiveReader
from tapefs.tapeformat.content_header import OBSOLETE
from tapefs.tapeformat.errors import MissingEndMarker, TapeFormatError, UnexpectedEndOfData
from tapefs.tapeformat.snapshot_archive import SnapshotPath
from tapefs.tapeformat.tape_file import TapeFile, open_tape_file

log = logging.getLogger(__name__)

#: Short names of the content types, for listings and JSON.
KIND_NAMES = {
    magic.MEDIA_LABEL: "media-label",
    magic.MEDIA_SET_LABEL: "media-set-label",
    magic.CHUNK_ARCHIVE_1_1: "chunk-archive",
    magic.SNAPSHOT_ARCHIVE_1_1: "snapshot-archive",
    magic.SNAPSHOT_ARCHIVE_1_2: "snapshot-archive",
    magic.CATALOG_ARCHIVE_1_0: "catalog-archive",
    magic.CATALOG_ARCHIVE_1_1: "catalog-archive",
}


@dataclass
class TapeFileReport:
    """One file of a tape, read through."""

    file_number: int
    #: "media-label", "media-set-label", "chunk-archive", "snapshot-archive", "catalog-archive",
    #: "unknown" (a content magic we do not know), "empty" (two filemarks), "unreadable".
    kind: str
    #: The content type as the format names it ("chunk archive v1.1", "unknown content 0123…").
    content_name: str = ""
    content_uuid: str | None = None
    part_number: int | None = None
    ctime: int | None = None
    #: Logical object number of the file's block 0.
    first_block: int | None = None
    store: str | None = None
    snapshot: str | None = None
    chunks: int | None = None
    #: Content stream bytes read after the content header and its JSON.
    size: int = 0
    #: The INCOMPLETE flag: the archive goes on on another tape, or was written again there.
    incomplete: bool = False
    #: The file ends at a filemark without end marker: its writer was aborted.
    missing_end_marker: bool = False
    #: Why the file could not be read through (damage); None when it could.
    error: str | None = None
    #: The header JSON of labels and catalog archives (key-config left out).
    header_json: dict = field(default_factory=dict)
    #: Every chunk entry read intact, with its offset (chunk archives).
    locations: list[ChunkLocation] = field(default_factory=list, repr=False)
    #: The payload of a catalog archive (a `.log`), when asked for.
    catalog_bytes: bytes | None = field(default=None, repr=False)

    @property
    def complete(self) -> bool:
        """Read through without damage, with its end marker and not continued elsewhere."""
        return self.error is None and not self.incomplete and not self.missing_end_marker

    def chunk_part(self) -> ArchivePart:
        """The chunk archive as a catalog registers it."""
        return ArchivePart(
            "chunk",
            uuidlib.UUID(self.content_uuid),
            self.part_number,
            self.file_number,
            self.first_block,
            chunks=list(self.locations),
        )

    def to_dict(self) -> dict:
        data = {
            "file": self.file_number,
            "type": self.kind,
            "content": self.content_name,
            "uuid": self.content_uuid,
            "part": self.part_number,
            "ctime": self.ctime,
            "store": self.store,
            "snapshot": self.snapshot,
            "chunks": self.chunks,
            "size": self.size,
            "incomplete": self.incomplete,
            "missing-end-marker": self.missing_end_marker,
            "error": self.error,
        }
        if self.header_json:
            data["header"] = self.header_json
        return data


def read_tape_files(
    device: BlockDevice, meter: ProgressMeter | None = None, keep_catalogs: bool = False
) -> Iterator[TapeFileReport]:
    """Every file from the position to end of data. With `keep_catalogs` the payload of each
    complete catalog archive comes along in `catalog_bytes`."""
    while True:
        report, more = read_next_file(device, meter, keep_catalogs)
        if report is None:
            return
        yield report
        if not more:
            return


def read_next_file(
    device: BlockDevice, meter: ProgressMeter | None = None, keep_catalogs: bool = False, only_kind: str | None = None
) -> tuple[TapeFileReport | None, bool]:
    """The file at the position, read through, and whether files may follow; (None, False) at
    end of data. With `only_kind`, a file of another kind is only described from its header and
    the position is left inside it."""
    position = device.position()
    try:
        tape_file = open_tape_file(device)
    except UnexpectedEndOfData as error:
        return TapeFileReport(
            position.file_number,
            "unreadable",
            first_block=position.block_number,
            error=f"{error.reason} (the writer was interrupted)",
        ), False
    except (TapeFormatError, ScsiError) as error:
        report = TapeFileReport(
            position.file_number,
            "unreadable",
            first_block=position.block_number,
            error=getattr(error, "reason", str(error)),
        )
        return report, _skip_to_file(device, position.file_number + 1)
    if tape_file is Mark.END_OF_DATA:
        return None, False
    if tape_file is Mark.FILEMARK:
        return TapeFileReport(position.file_number, "empty", first_block=position.block_number), True
    report = _describe(tape_file)
    if only_kind is not None and report.kind != only_kind:
        return report, True
    try:
        _read_content(tape_file, report, meter, keep_catalogs)
    except UnexpectedEndOfData as error:
        report.error = f"{error.reason} (the writer was interrupted)"
        return report, False
    except (TapeFormatError, ScsiError) as error:
        # A drive error (a medium error on a damaged spot) is damage to this file too.
        report.error = str(error)
        return report, _skip_to_file(device, report.file_number + 1)
    return report, True


def _skip_to_file(device: BlockDevice, file_number: int) -> bool:
    """Go on after a damaged file; False when there is no next file to go to."""
    try:
        device.locate_file(file_number)
    except ScsiError as error:
        log.warning("cannot reach tape file %d after a damaged file: %s", file_number, error)
        return False
    return True


def _describe(tape_file: TapeFile) -> TapeFileReport:
    header = tape_file.header
    content_magic = header.content_magic
    kind = KIND_NAMES.get(content_magic, "unknown")
    name = OBSOLETE.get(content_magic, header.content_name)
    report = TapeFileReport(
        tape_file.file_number,
        kind,
        name,
        str(header.uuid),
        header.part_number,
        header.ctime,
        tape_file.reader.file_first_block,
    )
    values = tape_file.header_json if isinstance(tape_file.header_json, dict) else {}
    if kind in ("media-label", "media-set-label", "catalog-archive"):
        report.header_json = {key: value for key, value in values.items() if key != "key-config"}
    if kind == "snapshot-archive":
        report.store, report.snapshot = values.get("store"), values.get("snapshot")
    elif kind == "chunk-archive":
        report.store = values.get("store")
    return report


def _read_content(
    tape_file: TapeFile, report: TapeFileReport, meter: ProgressMeter | None, keep_catalogs: bool
) -> None:
    reader = tape_file.reader
    if report.kind == "chunk-archive":
        _read_chunks(tape_file, report, meter)
    elif report.kind == "snapshot-archive":
        try:
            SnapshotPath.parse(str(report.snapshot))
        except ValueError:
            report.error = f"bad snapshot path {report.snapshot!r} in the header"
        if not isinstance(report.store, str):
            report.error = "snapshot archive header has no store name"
        report.size = _skip(reader, meter)
    elif report.kind == "catalog-archive" and keep_catalogs:
        data = bytearray()
        try:
            while chunk := reader.read(PAYLOAD_SIZE * 16):
                data += chunk
                if meter is not None:
                    meter.add(len(chunk))
        except MissingEndMarker:
            pass  # an aborted writer: reported through the flag below
        report.size = len(data)
        report.catalog_bytes = bytes(data)
    else:
        report.size = _skip(reader, meter)
    report.incomplete = reader.incomplete
    report.missing_end_marker = reader.missing_end_marker
    if report.catalog_bytes is not None and not report.complete:
        report.catalog_bytes = None


def _skip(reader, meter: ProgressMeter | None) -> int:
    size = reader.skip_data()
    if meter is not None:
        meter.add(size)
    return size


def _read_chunks(tape_file: TapeFile, report: TapeFileReport, meter: ProgressMeter | None) -> None:
    archive = ChunkArchiveReader(tape_file)
    bad: list[str] = []
    start = tape_file.reader.offset
    try:
        for digest, blob in archive:
            location = archive.locations[-1]
            try:
                inspect_blob(blob, f"tape file {report.file_number} offset {location.offset}")
            except DatastoreError as error:
                bad.append(f"chunk {digest.hex()}: {error}")
            if meter is not None:
                meter.add(ENTRY_HEADER_SIZE + len(blob))
    except MissingEndMarker:
        pass  # an aborted writer: reported through the flag, not as damage
    finally:
        report.locations = list(archive.locations)
        report.chunks = len(archive.locations)
        report.size = tape_file.reader.offset - start
    if archive.truncated_entry is not None:
        log.info("tape file %d: last chunk cut short at early warning (PBS writes it again)", report.file_number)
    if bad:
        report.error = f"{len(bad)} damaged chunks, first {bad[0]}"


def scan_tape(
    session: DriveSession, label_text: str | None = None, progress: ProgressCallback | None = None
) -> list[TapeFileReport]:
    """Every file of tape `label_text` (loaded through the changer) or of the tape in the drive,
    from the beginning; the tape need not carry labels."""
    device = session.load(label_text) if label_text is not None else session.open_device()
    device.rewind()
    meter = ProgressMeter("scan", progress)
    meter.emit("tape-loaded", label_text or session.setup.name)
    reports = []
    for report in read_tape_files(device, meter):
        reports.append(report)
        meter.emit("file-done", str(report.file_number))
    return reports
