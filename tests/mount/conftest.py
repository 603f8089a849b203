"""Real FUSE mounts over a real vtape library: an archive written once per module (a copy of the
Python standard library and a 256 MiB image, backed up to small cartridges so it spans at least
three tapes), and `tapefs mount --foreground` servers started as subprocesses."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupGroup, BackupNamespace
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.device.changer import Changer
from tapefs.jobs.backup import BackupRequest, backup_datastore
from tapefs.jobs.drive_session import DriveSession, drive_setup
from tapefs.media.inventory import Inventory
from tapefs.media.labeling import label_drive_tape
from tapefs.media.media_id import MediaLocation
from tapefs.media.tape_config import (
    ChangerConfig, DriveConfig, MediaPoolConfig, TapeDeviceConfig, load_media_pool_config, load_tape_config,
    save_media_pool_config, save_tape_config,
)
from tests.helpers.vtape_process import VtapeLibrary

REPO = Path(__file__).resolve().parents[2]
TAPEFS = [sys.executable, "-m", "tapefs"]
MiB = 1024 * 1024
IMAGE_SIZE = 256 * MiB
CARTRIDGE = "112MiB"
EARLY_WARNING = "8MiB"
MOUNT_TIMEOUT = 30.0


def require_fuse() -> None:
    """Skip where FUSE cannot run, except in CI: there a machine without FUSE must fail."""
    problem = None
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as error:
        problem = f"/dev/fuse: {error.strerror}"
    if problem is None and shutil.which("fusermount3") is None:
        problem = "fusermount3 is not installed"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"FUSE is required in CI: {problem}")
        pytest.skip(problem)


def stdlib_copy(target: Path) -> Path:
    """The standard library's modules (no site-packages, tests or caches), metadata kept, plus
    the kinds of entries a pxar archive must carry: a hardlink, a symlink, a fifo, an xattr."""
    source = Path(sysconfig.get_paths()["stdlib"])
    ignore = shutil.ignore_patterns("site-packages", "dist-packages", "test", "tests", "__pycache__", "config-*",
                                    "idlelib", "tkinter", "lib2to3", "ensurepip")
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
    """What was backed up and where: the module's fixture."""

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

    def tapefs(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run([*TAPEFS, *args], cwd=REPO, env=self.env, capture_output=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, f"tapefs {' '.join(args)} exited {proc.returncode}:\n{proc.stderr.decode()}"
        assert b"Traceback" not in proc.stderr, proc.stderr.decode()
        return proc


def _env_for(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEFS_")}
    env["TAPEFS_CONFIG_DIR"] = str(root / "config")
    env["TAPEFS_STATE_DIR"] = str(root / "state")
    return env


def build_archive(root: Path) -> TapeArchive:
    """Library, datastore, two snapshots, labelled small tapes, one backup; every drive empty."""
    library = VtapeLibrary(cartridges=0, cleaning_cartridges=0)
    library.start()
    env = _env_for(root)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("TAPEFS_CONFIG_DIR", "TAPEFS_STATE_DIR"):
            patch.setenv(name, env[name])
        save_tape_config(TapeDeviceConfig(
            drives={f"drive{n}": DriveConfig(f"drive{n}", path, "lib", n) for n, path in enumerate(library.drives)},
            changers={"lib": ChangerConfig("lib", library.changer)}))
        save_media_pool_config({"daily": MediaPoolConfig("daily")})
        datastore = Datastore.create(root / "store", "store", prefix_dirs=False)
        DatastoreRegistry().add("store", datastore.root)
        tree = stdlib_copy(root / "source")
        image = root / "disk.raw"
        image.write_bytes(os.urandom(IMAGE_SIZE))
        # A split archive (PBS's change-detection-mode data); the tour covers v1 archives.
        tree_result = backup(datastore, BackupGroup.parse("host/stdlib", BackupNamespace()),
                             parse_sources([f"root.pxar:{tree}"]), sync=False, change_detection_mode="data")
        image_result = backup(datastore, BackupGroup.parse("vm/100", BackupNamespace()),
                              parse_sources([f"disk.img:{image}"]), sync=False)
        labels = [f"MT{n:04d}L8" for n in range(1, 7)]
        for label in labels:
            library.control("add-cartridge", barcode=label, capacity=CARTRIDGE, early_warning=EARLY_WARNING)
        with Inventory.open() as inventory, DriveSession(drive_setup(load_tape_config(), "drive0")) as session:
            for label in labels:
                device = session.load(label)
                label_drive_tape(device.drive, label, inventory, "daily", location=MediaLocation.online("lib"))
            session.eject()
        with Inventory.open() as inventory, MediaCatalog.open() as catalog, \
                DriveSession(drive_setup(load_tape_config(), "drive0")) as session:
            result = backup_datastore(datastore, load_media_pool_config()["daily"],
                                      BackupRequest("daily", eject_media=True), session, inventory, catalog)
    archive = TapeArchive(root, library, env, tree, image, hashlib.sha256(image.read_bytes()).hexdigest(),
                          result.media_set, result.tapes, f"host/stdlib/{_time(tree_result)}",
                          f"vm/100/{_time(image_result)}")
    assert len(archive.tapes) >= 3, archive.tapes
    assert archive.drives_empty()
    return archive


def _time(result) -> str:
    return str(result.snapshot).rsplit("/", 1)[-1]


@pytest.fixture(scope="session")
def tape_archive(tmp_path_factory) -> TapeArchive:
    """Built once per test process: the mount tests share one xdist group, so one worker runs them."""
    archive = build_archive(tmp_path_factory.mktemp("archive"))
    yield archive
    try:
        code = archive.library.stop()
        assert code == 0, archive.library.log()
    finally:
        archive.library.cleanup()


class MountedTree:
    """A `tapefs mount --foreground` server in a subprocess; its log goes to a file."""

    def __init__(self, env: dict[str, str], mountpoint: Path, *options: str):
        self.env = env
        self.path = mountpoint
        self.path.mkdir(parents=True, exist_ok=True)
        self.log_path = mountpoint.parent / f"{mountpoint.name}.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*TAPEFS, "mount", str(mountpoint), "--foreground", *options], cwd=REPO, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(mountpoint):
            if self.process.poll() is not None:
                pytest.fail(f"tapefs mount exited {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"tapefs mount did not mount within {MOUNT_TIMEOUT} s:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status(self) -> dict:
        return json.loads((self.path / ".status").read_text())

    def unmount(self) -> int:
        """`tapefs umount`; the server's exit code."""
        proc = subprocess.run([*TAPEFS, "umount", str(self.path)], cwd=REPO, env=self.env, capture_output=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()
        return self.process.wait(timeout=30)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            subprocess.run(["fusermount3", "-u", "-z", str(self.path)], capture_output=True)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def mount_tree(tape_archive, tmp_path):
    """Factory: mount_tree(*options) → a MountedTree of the shared archive; unmounted at the end,
    its exit and log checked."""
    with mounts_of(tape_archive.env, tmp_path) as make:
        yield make
    empty_drives(tape_archive)


@pytest.fixture
def shared_mount_tree(tape_archive):
    """mount_tree, with mount points other users can reach (pytest's tmp_path is root's alone)."""
    directory = Path(tempfile.mkdtemp(prefix="tapefs-shared-mount-", dir="/tmp"))
    directory.chmod(0o755)
    try:
        with mounts_of(tape_archive.env, directory) as make:
            yield make
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    empty_drives(tape_archive)


def empty_drives(archive: TapeArchive) -> None:
    """The next test starts with every drive empty, as a fresh mount would find the library."""
    with Changer.open(archive.library.changer) as changer:
        for drive in changer.status().drives:
            if drive.full:
                changer.unload(drive=drive.number)


@contextmanager
def mounts_of(env: dict[str, str], directory: Path):
    """make(*options, name=) → a MountedTree under `directory`; all unmounted and checked at exit."""
    require_fuse()
    mounts: list[MountedTree] = []

    def make(*options: str, name: str = "mnt") -> MountedTree:
        mounted = MountedTree(env, directory / name, "--cache-dir", str(directory / f"{name}-cache"), *options)
        mounts.append(mounted)
        return mounted

    try:
        yield make
    finally:
        for mounted in mounts:
            try:
                if os.path.ismount(mounted.path):
                    assert mounted.unmount() == 0, mounted.log()
                assert "Traceback" not in mounted.log(), mounted.log()
            finally:
                mounted.cleanup()


def listing(root: Path) -> dict[str, tuple]:
    """Relative path → (type, mode, size, mtime seconds, symlink target, uid, gid) of a tree."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            info = path.lstat()
            kind = stat.S_IFMT(info.st_mode)
            found[str(path.relative_to(root))] = (
                kind, stat.S_IMODE(info.st_mode), info.st_size if stat.S_ISREG(info.st_mode) else 0,
                int(info.st_mtime), os.readlink(path) if stat.S_ISLNK(info.st_mode) else None,
                info.st_uid, info.st_gid)
    return found
