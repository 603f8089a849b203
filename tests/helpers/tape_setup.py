"""A tape setup the way an administrator leaves one: a vtape library whose changer and drives
tape.cfg names, media pools, a registered datastore; and what tests then do with it (cartridges
added, tapes labelled, snapshots made, pools encrypted).

Configuration and state go wherever TAPEFS_CONFIG_DIR and TAPEFS_STATE_DIR point: the caller
makes them private first."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupGroup, BackupNamespace
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.jobs.drive_session import DriveSession, drive_setup
from tapefs.keys.key_store import TapeKeyStore
from tapefs.media.inventory import Inventory
from tapefs.media.labeling import label_drive_tape
from tapefs.media.media_id import MediaLocation
from tapefs.media.tape_config import (
    ChangerConfig,
    DriveConfig,
    MediaPoolConfig,
    TapeDeviceConfig,
    load_media_pool_config,
    load_tape_config,
    save_media_pool_config,
    save_tape_config,
)
from tests.helpers.vtape_process import VtapeLibrary

MiB = 1024 * 1024
CHUNK = 4 * MiB
KEY_PASSWORD = b"tape key password"


@dataclass
class TapeSetup:
    library: VtapeLibrary
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

    def add_snapshot(
        self, group: str, chunks: int = 0, ns: str | None = None, data: bytes = b"", backup_time: int | None = None
    ) -> str:
        """A snapshot of an image of `data` followed by `chunks` random 4 MiB chunks; its path."""
        image = self.root / f"disk-{uuid.uuid4().hex[:8]}.raw"
        image.write_bytes(data + os.urandom(chunks * CHUNK))
        result = backup(
            self.datastore,
            BackupGroup.parse(group, BackupNamespace.parse(ns)),
            parse_sources([f"disk.img:{image}"]),
            backup_time=backup_time,
            sync=False,
        )
        image.unlink()
        return str(result.snapshot)


def set_up_tapes(library: VtapeLibrary, root: Path, pools: tuple[str, ...] = ("daily", "other")) -> TapeSetup:
    """tape.cfg naming the library's changer `lib` and its drives drive0..driveN, the media
    `pools`, and an empty datastore `store` under `root`, registered."""
    save_tape_config(
        TapeDeviceConfig(
            drives={f"drive{n}": DriveConfig(f"drive{n}", path, "lib", n) for n, path in enumerate(library.drives)},
            changers={"lib": ChangerConfig("lib", library.changer)},
        )
    )
    save_media_pool_config({pool: MediaPoolConfig(pool) for pool in pools})
    datastore = Datastore.create(root / "store", "store", prefix_dirs=False)
    DatastoreRegistry().add("store", datastore.root)
    return TapeSetup(library, root, datastore)


def add_cartridges(
    library: VtapeLibrary, count: int, capacity: str, early_warning: str, prefix: str = "SM"
) -> list[str]:
    barcodes = [f"{prefix}{n:04d}L8" for n in range(1, count + 1)]
    for barcode in barcodes:
        library.control("add-cartridge", barcode=barcode, capacity=capacity, early_warning=early_warning)
    return barcodes


def create_key(pools=("daily",)) -> str:
    """A tape key (password KEY_PASSWORD) in the private key store, used by `pools`; its fingerprint."""
    fingerprint = TapeKeyStore().create(KEY_PASSWORD, "in the test", kdf="pbkdf2")
    configs = load_media_pool_config()
    for pool in pools:
        configs[pool] = MediaPoolConfig(pool, encrypt=fingerprint)
    save_media_pool_config(configs)
    return fingerprint
