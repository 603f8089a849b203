"""The archive the FUSE mount tests share: a copy of the Python standard library and a 256 MiB
image, backed up to small cartridges so that it spans at least three tapes."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
import sysconfig
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.naming import BackupGroup, BackupNamespace
from tapefs.catalog.media_catalog import CATALOG_DB_NAME, MediaCatalog
from tapefs.datastore.fixed_index import FixedIndex
from tapefs.device.changer import Changer
from tapefs.media.inventory import Inventory
from tests.helpers.commands import isolated_env
from tests.helpers.tape_jobs import run_backup
from tests.helpers.tape_setup import MiB, add_cartridges, set_up_tapes
from tests.helpers.vtape_process import VtapeLibrary

IMAGE_SIZE = 256 * MiB
CARTRIDGE = "112MiB"
EARLY_WARNING = "8MiB"


def stdlib_copy(target: Path) -> Path:
    """The standard library's modules (no site-packages, tests or caches), metadata kept, plus
    the kinds of entries a pxar archive must carry: a hardlink, a symlink, a fifo, an xattr."""
    source = Path(sysconfig.get_paths()["stdlib"])
    ignore = shutil.ignore_patterns(
        "site-packages",
        "dist-packages",
        "test",
        "tests",
        "__pycache__",
        "config-*",
        "idlelib",
        "tkinter",
        "lib2to3",
        "ensurepip",
    )
    shutil.copytree(source, target, symlinks=True, ignore=ignore)
    extras = target / "tapefs-extras"
    extras.mkdir()
    (extras / "original.txt").write_text("linked twice\n")
    os.link(extras / "original.txt", extras / "hardlink.txt")
    os.symlink("original.txt", extras / "symlink.txt")
    os.mkfifo(extras / "fifo")
    # Readable by their owner only: the mount must keep them from other users.
    (extras / "private.txt").write_text("for root's eyes\n")
    (extras / "private.txt").chmod(0o600)
    (extras / "private").mkdir(mode=0o700)
    (extras / "private" / "secret.txt").write_text("hidden name\n")
    (extras / "private" / "secret.txt").chmod(0o644)
    try:
        os.setxattr(extras / "original.txt", "user.tapefs-test", b"kept")
    except OSError:
        pass  # a file system without user xattrs: the listing comparison still covers the rest
    return target


@dataclass
class TapeArchive:
    """What was backed up and where: the mount tests' fixture."""

    root: Path
    library: VtapeLibrary
    env: dict[str, str]
    tree: Path
    image: Path
    image_sha256: str
    media_set: str
    tapes: list[str]
    tree_snapshot: str
    image_snapshot: str
    extra: dict = field(default_factory=dict)

    def drives_empty(self) -> bool:
        with Changer.open(self.library.changer) as changer:
            return not any(drive.full for drive in changer.status().drives)

    def empty_drives(self) -> None:
        """The next test starts with every drive empty, as a fresh mount would find the library."""
        with Changer.open(self.library.changer) as changer:
            for drive in changer.status().drives:
                if drive.full:
                    changer.unload(drive=drive.number)

    def image_offsets_on(self, label_text: str) -> list[int]:
        """Offsets of the image's chunks that lie on tape `label_text`, in image order."""
        snapshot_dir = self.root / "store" / "vm" / "100" / self.image_snapshot.rsplit("/", 1)[-1]
        index = FixedIndex.load(snapshot_dir / "disk.img.fidx")
        status_dir = Path(self.env["TAPEFS_STATE_DIR"]) / "tape"
        with Inventory.open(status_dir) as inventory, MediaCatalog.open(status_dir) as catalog:
            places = catalog.chunk_places(self.media_set, "store", index.digests)
            return [index.chunk_range(number)[0] for number, digest in enumerate(index.digests)
                    if inventory.get(places[digest].media_uuid).id.label_text == label_text]

    def take_out(self, label_text: str) -> None:
        """The operator takes a tape out of the library (through a mail slot)."""
        with Changer.open(self.library.changer) as changer:
            status = changer.status()
            source = next(slot for slot in status.slots if slot.barcode == label_text)
            target = next(slot for slot in status.slots if slot.import_export and not slot.full)
            changer.transfer(source.number, target.number)
        self.library.control("remove", barcode=label_text)

    def put_back(self, label_text: str) -> None:
        """The operator returns the tape through a mail slot; it goes back to a storage slot."""
        self.library.control("insert", barcode=label_text)
        with Changer.open(self.library.changer) as changer:
            status = changer.status()
            source = next(slot for slot in status.slots if slot.barcode == label_text)
            target = next(slot for slot in status.slots if not slot.import_export and not slot.full)
            changer.transfer(source.number, target.number)


def build_archive(root: Path) -> TapeArchive:
    """Library, datastore, two snapshots, labelled small tapes, one backup; every drive empty."""
    library = VtapeLibrary(cartridges=0, cleaning_cartridges=0)
    library.start()
    env = isolated_env(root)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("TAPEFS_CONFIG_DIR", "TAPEFS_STATE_DIR"):
            patch.setenv(name, env[name])
        setup = set_up_tapes(library, root, pools=("daily",))
        tree = stdlib_copy(root / "source")
        image = root / "disk.raw"
        image.write_bytes(os.urandom(IMAGE_SIZE))
        # A split archive (PBS's change-detection-mode data); the tour covers v1 archives.
        tree_result = backup(
            setup.datastore,
            BackupGroup.parse("host/stdlib", BackupNamespace()),
            parse_sources([f"root.pxar:{tree}"]),
            sync=False,
            change_detection_mode="data",
        )
        image_result = backup(
            setup.datastore,
            BackupGroup.parse("vm/100", BackupNamespace()),
            parse_sources([f"disk.img:{image}"]),
            sync=False,
        )
        setup.label(*add_cartridges(library, 6, CARTRIDGE, EARLY_WARNING, prefix="MT"))
        result = run_backup(setup, eject_media=True)
    archive = TapeArchive(
        root,
        library,
        env,
        tree,
        image,
        hashlib.sha256(image.read_bytes()).hexdigest(),
        result.media_set,
        result.tapes,
        f"host/stdlib/{_time(tree_result)}",
        f"vm/100/{_time(image_result)}",
    )
    assert len(archive.tapes) >= 3, archive.tapes
    assert archive.drives_empty()
    return archive


def _time(result) -> str:
    return str(result.snapshot).rsplit("/", 1)[-1]


def listing(root: Path) -> dict[str, tuple]:
    """Relative path → (type, mode, size, mtime seconds, symlink target, uid, gid) of a tree."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            info = path.lstat()
            kind = stat.S_IFMT(info.st_mode)
            found[str(path.relative_to(root))] = (
                kind,
                stat.S_IMODE(info.st_mode),
                info.st_size if stat.S_ISREG(info.st_mode) else 0,
                int(info.st_mtime),
                os.readlink(path) if stat.S_ISLNK(info.st_mode) else None,
                info.st_uid,
                info.st_gid,
            )
    return found


def record_snapshot(status_dir: Path, label_text: str, store: str, snapshot: str) -> None:
    """What another process's backup leaves in the media catalog: one more snapshot archive, after
    the last file of tape `label_text` (nothing is written to the tape; the views list it, with no
    file catalog behind it)."""
    with Inventory.open(status_dir) as inventory, MediaCatalog.open(status_dir) as catalog:
        media_uuid = next(e.uuid for e in inventory.list_media() if e.id.label_text == label_text)
        last = max(row[0] for row in catalog.media_content(media_uuid))
        catalog.register_snapshot(media_uuid, last + 1, uuid.uuid4(), store, snapshot)


def forget_recorded_snapshot(status_dir: Path, store: str, snapshot: str) -> None:
    """Undo record_snapshot (the media catalog has no command for it)."""
    with closing(sqlite3.connect(status_dir / CATALOG_DB_NAME)) as db, db:
        db.execute("DELETE FROM archive WHERE kind = 'snapshot' AND store = ? AND snapshot = ?", (store, snapshot))
