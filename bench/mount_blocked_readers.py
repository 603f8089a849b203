"""`tapefs mount`: how fast readers of tapes in the library go while other reads wait for a tape
that is not (issue 21's blocked-reader figure).

    .venv/bin/python bench/mount_blocked_readers.py [--image-size 512MiB] [--waiting 40]

Everything runs for real: a vtape library with two drives, a datastore with two images, one
media set holding image A only, its tapes then moved to the import/export slots (out of the
library's reach), and a second set holding image B. On a fresh mount each time (empty chunk
cache, drives empty) `cp` copies image B from tape: once to warm the page cache with the
cartridge, then while WAITING reads of image A wait for its tape (each `dd` of 1 MiB), then alone
again. Printed: both copy rates and their ratio (1.0: the waiting reads cost the others nothing).
The page cache is not dropped: that syncs every file system, which on a busy machine took minutes.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from fuse_read import start_library, status, tapefs, timed  # noqa: E402
from tapefs.datastore.backup import backup, parse_sources  # noqa: E402
from tapefs.datastore.datastore import Datastore  # noqa: E402
from tapefs.datastore.naming import BackupGroup  # noqa: E402
from tapefs.datastore.registry import DatastoreRegistry  # noqa: E402
from vtape import daemon  # noqa: E402
from vtape.media import parse_size  # noqa: E402

PIECE = 64 * 1024 * 1024
MiB = 1024 * 1024


def build(root: Path, env: dict, image_size: int) -> str:
    """The library, datastore and both media sets; the snapshot of image B."""
    start_library(root, env)
    for pool in ("vault", "daily"):
        tapefs(env, "pool", "create", pool)
    tapefs(env, "barcode-label", "--drive", "drive0")  # free tapes: each pool takes its own
    datastore = Datastore.create(root / "store", "store", prefix_dirs=False)
    DatastoreRegistry().add("store", datastore.root)
    snapshots = {}
    for group in ("vm/100", "vm/200"):
        raw = root / "disk.raw"
        with open(raw, "wb") as file:
            for _ in range(max(1, image_size // PIECE)):
                file.write(os.urandom(PIECE))
        snapshots[group] = backup(datastore, BackupGroup.parse(group), parse_sources([f"disk.img:{raw}"]),
                                  sync=False).snapshot
        raw.unlink()
    tapefs(env, "backup", "store", "vault", "--group", "group:vm/100", "--drive", "drive0", "--export-media-set")
    tapefs(env, "backup", "store", "daily", "--group", "group:vm/200", "--drive", "drive0", "--eject-media")
    return str(snapshots["vm/200"])


def copy_rate(env: dict, root: Path, image: Path, waiting: int) -> tuple[float, int]:
    """MB/s of a cold `cp` of `image` on a fresh mount while `waiting` reads of the exported set's
    image wait; and how many of those were still waiting when the copy ended."""
    mountpoint = root / "mnt"
    shutil.rmtree(root / "cache", ignore_errors=True)
    tapefs(env, "mount", str(mountpoint), "--cache-dir", str(root / "cache"), "--read-timeout", "600")
    readers = []
    time.sleep(1)  # the server raises the kernel's request limits just after mounting
    try:
        (vault_set,) = (mountpoint / "pools" / "vault").iterdir()
        (blocked,) = (vault_set / "store").glob("vm/100/*/disk.img")
        for n in range(waiting):
            readers.append(subprocess.Popen(
                ["dd", f"if={blocked}", "of=/dev/null", "bs=1M", "count=1", f"skip={n}", "status=none"],
                stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 30
        while waiting and status(mountpoint)["tapes"]["waiting-for"] == [] and time.monotonic() < deadline:
            time.sleep(0.2)
        seconds = timed(["cp", str(mountpoint / image), "/dev/null"])
        still_waiting = sum(reader.poll() is None for reader in readers)
        return (mountpoint / image).stat().st_size / seconds / 1e6, still_waiting
    finally:
        tapefs(env, "umount", str(mountpoint))  # the waiting reads fail (EIO) and end
        for reader in readers:
            reader.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", default="512MiB")
    parser.add_argument("--waiting", type=int, default=40, help="reads waiting for the exported tape")
    parser.add_argument("--dir", default=None, help="work directory parent (default: the system temp dir)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tapefs-blocked-bench.", dir=args.dir))
    env = {**os.environ, "TAPEFS_CONFIG_DIR": str(root / "config"), "TAPEFS_STATE_DIR": str(root / "state")}
    (root / "mnt").mkdir()
    try:
        snapshot = build(root, env, parse_size(args.image_size))
        image = Path("snapshots/store") / snapshot / "disk.img"
        copy_rate(env, root, image, 0)  # the cartridge into the page cache, as for the others
        beside, still_waiting = copy_rate(env, root, image, args.waiting)
        alone, _ = copy_rate(env, root, image, 0)
        print(f"cold cp of a {parse_size(args.image_size) / MiB:.0f} MiB image from tape: alone {alone:.0f} MB/s, "
              f"beside {args.waiting} reads waiting for an exported tape {beside:.0f} MB/s "
              f"(ratio {beside / alone:.2f}; {still_waiting} of them still waiting at the end); "
              f"load average {os.getloadavg()[0]:.1f}")
    finally:
        if os.path.ismount(root / "mnt"):
            tapefs(env, "umount", str(root / "mnt"))
        if (root / "lib" / "control").exists():
            daemon.stop(root / "lib")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
