"""A tape setup for job tests: a vtape library with small cartridges, tape.cfg and media-pool.cfg
naming it, a datastore with snapshots, all under a private config and state directory."""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupGroup, BackupNamespace
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.jobs.drive_session import DriveSession, drive_setup
from tapefs.media.inventory import Inventory
from tapefs.media.labeling import label_drive_tape
from tapefs.media.media_id import MediaLocation
from tapefs.media.tape_config import (
    ChangerConfig, DriveConfig, MediaPoolConfig, TapeDeviceConfig, load_tape_config, save_media_pool_config,
    save_tape_config,
)
from tapefs.tapeformat.block_device import Mark
from tapefs.tapeformat.chunk_archive import ChunkArchiveReader
from tapefs.tapeformat.errors import MissingEndMarker, UnexpectedEndOfData
from tapefs.tapeformat.magic import CHUNK_ARCHIVE_1_1
from tapefs.tapeformat.snapshot_archive import SNAPSHOT_MAGICS, SnapshotArchiveReader
from tapefs.tapeformat.tape_file import open_tape_file

MiB = 1024 * 1024
CHUNK = 4 * MiB


@dataclass
class TapeSetup:
    library: object
    root: Path
    datastore: Datastore

    def inventory(self) -> Inventory:
        return Inventory.open()

    def catalog(self) -> MediaCatalog:
        return MediaCatalog.open()

    def session(self, drive: str = "drive0") -> DriveSession:
        return DriveSession(drive_setup(load_tape_config(), drive))

    def label(self, *label_texts: str, pool: str | None = "daily") -> None:
        with self.inventory() as inventory, self.session() as session:
            for label_text in label_texts:
                device = session.load(label_text)
                label_drive_tape(device.drive, label_text, inventory, pool, location=MediaLocation.online("lib"))
            session.eject()

    def add_snapshot(self, group: str, chunks: int = 0, ns: str | None = None, data: bytes = b"",
                     backup_time: int | None = None) -> str:
        """A snapshot of an image of `data` followed by `chunks` random 4 MiB chunks; its path."""
        image = self.root / f"disk-{uuid.uuid4().hex[:8]}.raw"
        image.write_bytes(data + os.urandom(chunks * CHUNK))
        result = backup(self.datastore, BackupGroup.parse(group, BackupNamespace.parse(ns)),
                        parse_sources([f"disk.img:{image}"]), backup_time=backup_time, sync=False)
        image.unlink()
        return str(result.snapshot)


def add_cartridges(library, count: int, capacity: str, early_warning: str, prefix: str = "SM") -> list[str]:
    barcodes = [f"{prefix}{n:04d}L8" for n in range(1, count + 1)]
    for barcode in barcodes:
        library.control("add-cartridge", barcode=barcode, capacity=capacity, early_warning=early_warning)
    return barcodes


@pytest.fixture
def tape_setup(make_vtape_library, tmp_path, monkeypatch) -> TapeSetup:
    monkeypatch.setenv("TAPEFS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TAPEFS_STATE_DIR", str(tmp_path / "state"))
    library = make_vtape_library(cartridges=0, cleaning_cartridges=0)
    save_tape_config(TapeDeviceConfig(
        drives={f"drive{n}": DriveConfig(f"drive{n}", path, "lib", n) for n, path in enumerate(library.drives)},
        changers={"lib": ChangerConfig("lib", library.changer)}))
    save_media_pool_config({"daily": MediaPoolConfig("daily"), "other": MediaPoolConfig("other")})
    datastore = Datastore.create(tmp_path / "store", "store", prefix_dirs=False)
    DatastoreRegistry().add("store", datastore.root)
    return TapeSetup(library, tmp_path, datastore)


def read_tape(setup: TapeSetup, label_text: str) -> dict[int, tuple]:
    """Every complete chunk and snapshot archive on the tape: file number → (kind, uuid, content)."""
    found = {}
    with setup.session("drive1") as session:
        device, _ = session.read_labels(label_text)
        while True:
            try:
                tape_file = open_tape_file(device)
            except UnexpectedEndOfData:  # a one-block file whose filemark a kill cut off: the last file
                break
            if tape_file is Mark.END_OF_DATA:
                break
            if tape_file is Mark.FILEMARK:
                continue
            number, magic = tape_file.file_number, tape_file.header.content_magic
            if magic == CHUNK_ARCHIVE_1_1:
                reader = ChunkArchiveReader(tape_file)
                try:
                    digests = [digest for digest, _ in reader]
                except (MissingEndMarker, UnexpectedEndOfData):  # cut by the physical end or a kill
                    continue
                found[number] = ("chunk", str(tape_file.header.uuid), digests)
            elif magic in SNAPSHOT_MAGICS:
                reader = SnapshotArchiveReader(tape_file)
                try:
                    reader.read()
                except (MissingEndMarker, UnexpectedEndOfData):
                    continue
                if not tape_file.reader.incomplete:
                    found[number] = ("snapshot", str(tape_file.header.uuid), reader.snapshot)
            else:
                tape_file.reader.skip_data()
        session.eject()
    return found
