"""Filling the file catalog (what `tapefs mount` browses) from tape, for snapshots whose backup did
not record them here: tapes written by Proxmox Backup Server, or a state directory rebuilt with
`tapefs catalog --scan`.

Per snapshot of the media set the catalog names: its snapshot archive gives the manifest,
indexes and blobs; the chunks of each pxar archive's metadata stream are then read one LOCATE
each through the media catalog's offsets, checked, and decoded into the entry tree. Done once per
snapshot; the mount browses offline afterwards.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from tapefs.catalog.file_catalog import FileCatalog, FileCatalogError
from tapefs.catalog.file_catalog_builder import record_snapshot
from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.datastore.blob import decode_blob
from tapefs.datastore.errors import DatastoreError
from tapefs.jobs.drive_session import DriveSession
from tapefs.jobs.errors import JobError
from tapefs.jobs.restore import verify_chunk
from tapefs.jobs.snapshot_files import decode_snapshot_pxar
from tapefs.jobs.tape_encryption import set_drive_key_for_set
from tapefs.media.inventory import Inventory
from tapefs.tapeformat.block_device import BlockDevice, Mark
from tapefs.tapeformat.chunk_archive import read_chunk_at
from tapefs.tapeformat.errors import TapeFormatError
from tapefs.tapeformat.snapshot_archive import SnapshotArchiveReader
from tapefs.tapeformat.tape_file import open_tape_file

log = logging.getLogger(__name__)


@dataclass
class FileCatalogResult:
    media_set: str
    recorded: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "media-set": self.media_set,
            "recorded": self.recorded,
            "already-recorded": self.present,
            "failed": self.failed,
        }


class _TapeAccess:
    """The session's drive, loaded with whichever tape of the set a read needs (key given)."""

    def __init__(self, session: DriveSession, inventory: Inventory, set_uuid: str):
        self.session = session
        self.inventory = inventory
        self.set_uuid = set_uuid
        self._loaded: str | None = None

    def device_for(self, media_uuid: str) -> BlockDevice:
        entry = self.inventory.lookup(media_uuid)
        if entry is None:
            raise JobError(f"media {media_uuid} of set {self.set_uuid} is not in the inventory")
        label_text = entry.id.label_text
        if self._loaded != label_text or self.session.device is None:
            device, labels = self.session.read_labels(label_text)
            set_drive_key_for_set(device.drive, labels)
            self._loaded = label_text
            return device
        return self.session.device


class TapeChunkSource:
    """`read_chunk(digest, expected_size)` from the tapes of one media set (thread-safe: the
    archive reader asks from its readahead threads)."""

    def __init__(self, access: _TapeAccess, catalog: MediaCatalog, store: str):
        self.access = access
        self.catalog = catalog
        self.store = store
        self._lock = threading.Lock()

    def read_chunk(self, digest: bytes, expected_size: int | None = None) -> bytes:
        place = self.catalog.chunk_places(self.access.set_uuid, self.store, [digest]).get(digest)
        if place is None:
            raise DatastoreError(
                f"chunk {digest.hex()} of store {self.store} is not on media set "
                f"{self.access.set_uuid} according to the catalog"
            )
        where = f"media {place.media_uuid} file {place.file_number} offset {place.offset}"
        if place.offset is None or place.first_block is None:
            raise DatastoreError(
                f"{where}: the catalog has no chunk offsets (imported from a .log); "
                "run 'tapefs catalog --scan' on that tape first"
            )
        with self._lock:
            try:
                blob = read_chunk_at(
                    self.access.device_for(place.media_uuid), place.file_number, place.first_block, place.location()
                )
            except TapeFormatError as error:
                raise DatastoreError(f"{where}: {error}") from None
        try:
            verify_chunk(digest, blob, where)
        except JobError as error:
            raise DatastoreError(str(error)) from None
        data = decode_blob(blob, source=where)
        if expected_size is not None and len(data) != expected_size:
            raise DatastoreError(f"{where}: chunk {digest.hex()} has {len(data)} bytes, the index says {expected_size}")
        return data


def record_media_set_files(
    session: DriveSession, inventory: Inventory, media_catalog: MediaCatalog, file_catalog: FileCatalog, set_uuid: str
) -> FileCatalogResult:
    """Record every snapshot of the set that the file catalog lacks; one failing snapshot is
    reported and the others go on."""
    result = FileCatalogResult(set_uuid)
    access = _TapeAccess(session, inventory, set_uuid)
    places = media_catalog.snapshots_in_set(set_uuid)
    if not places:
        raise JobError(f"the media catalog names no snapshot on media set {set_uuid}")
    for place in places:
        name = f"{place.store}:{place.snapshot}"
        if file_catalog.has_snapshot(place.store, place.snapshot):
            result.present.append(name)
            continue
        try:
            files = _snapshot_files(access, place.media_uuid, place.file_number)
            record_snapshot(
                file_catalog,
                place.store,
                place.snapshot,
                {file_name: content for file_name, (content, _) in files.items()},
                TapeChunkSource(access, media_catalog, place.store),
                {file_name: (metadata.mode, metadata.mtime_secs) for file_name, (_, metadata) in files.items()},
            )
        except (JobError, DatastoreError, FileCatalogError, TapeFormatError) as error:
            log.error("snapshot %s: %s", name, error)
            result.failed[name] = str(error)
            continue
        log.info("snapshot %s recorded in the file catalog", name)
        result.recorded.append(name)
    return result


def _snapshot_files(access: _TapeAccess, media_uuid: str, file_number: int) -> dict:
    device = access.device_for(media_uuid)
    device.locate_file(file_number)
    tape_file = open_tape_file(device)
    if isinstance(tape_file, Mark):
        raise JobError(
            f"media {media_uuid} file {file_number}: {tape_file.name.lower().replace('_', ' ')}, not a snapshot archive"
        )
    reader = SnapshotArchiveReader(tape_file)
    data = reader.read()
    if tape_file.reader.incomplete:
        raise JobError(f"snapshot archive at file {file_number} continues on the next tape (not supported here)")
    return decode_snapshot_pxar(data, f"media {media_uuid} file {file_number}")
