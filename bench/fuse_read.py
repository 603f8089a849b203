"""`tapefs mount` figures: cold and warm `cp` of a large image, bytes read from tape for one small
file of a large snapshot, and mount time, `find`, `ls -lR` and server RSS over a snapshot with a
million entries.

    .venv/bin/python bench/fuse_read.py [--image-size 4GiB] [--entries 1000000] [--dir /var/tmp]

Everything runs for real: a vtape library (LTO-8-sized cartridges), a datastore with three
snapshots (an image of random data; a directory holding that data as one file plus a 10 MiB
file; a pxar archive of ENTRIES small files made by bench/file_catalog.py), one tape backup,
then `tapefs mount` in the background. "Cold" means every drive empty, an empty chunk cache and
the page cache dropped (as root); "warm" is the same `cp` again. `find` and `ls -lR` each run on
a fresh mount, with extended attributes on (the default) and with `--no-xattrs`. Targets (issues
8 and 21): cold `cp` at least 400 MB/s; ratio at most 1.1; mount within 2 s, `find` within 15 s,
`ls -lR` within 35 s with xattrs on, under 300 MB resident.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from file_catalog import make_big_snapshot  # noqa: E402
from tapefs.datastore.backup import backup, parse_sources  # noqa: E402
from tapefs.datastore.datastore import Datastore  # noqa: E402
from tapefs.datastore.naming import BackupGroup  # noqa: E402
from tapefs.datastore.registry import DatastoreRegistry  # noqa: E402
from vtape import daemon  # noqa: E402
from vtape.library import CreateOptions, create_library  # noqa: E402
from vtape.media import parse_size  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TAPEFS = [sys.executable, "-m", "tapefs"]
PIECE = 64 * 1024 * 1024
SMALL_FILE = 10 * 1024 * 1024


def tapefs(env: dict, *args: str) -> str:
    proc = subprocess.run([*TAPEFS, *args], cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"tapefs {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def drop_page_cache() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def status(mountpoint: Path) -> dict:
    return json.loads((mountpoint / ".status").read_text())


def resident_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set of a process in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def start_library(root: Path, env: dict) -> None:
    """A vtape library in ROOT/lib, running, configured as changer `lib` with drive0 and drive1."""
    library = root / "lib"
    create_library(library, CreateOptions())
    daemon.start(library)
    os.environ.update({k: env[k] for k in ("TAPEFS_CONFIG_DIR", "TAPEFS_STATE_DIR")})
    tapefs(env, "changer", "create", "lib", "--path", str(library / "changer"))
    for number in range(2):
        tapefs(env, "drive", "create", f"drive{number}", "--path", str(library / f"drive{number}"),
               "--changer", "lib", "--changer-drivenum", str(number))


def build(root: Path, env: dict, image_size: int, entries: int) -> tuple[str, str, str]:
    """The library, the datastore and the tape backup; the three snapshot paths."""
    start_library(root, env)
    tapefs(env, "pool", "create", "bench")
    tapefs(env, "barcode-label", "--pool", "bench", "--drive", "drive0")
    datastore = Datastore.create(root / "store", "store", prefix_dirs=False)
    DatastoreRegistry().add("store", datastore.root)
    tree = root / "tree"
    tree.mkdir()
    with open(tree / "disk.raw", "wb") as file:
        for _ in range(max(1, image_size // PIECE)):
            file.write(os.urandom(PIECE))
    (tree / "small.bin").write_bytes(os.urandom(SMALL_FILE))
    image = backup(datastore, BackupGroup.parse("vm/100"), parse_sources([f"disk.img:{tree / 'disk.raw'}"]),
                   sync=False)
    # Split archive: PBS's payload chunker cuts at file starts, so one file needs only its own chunks.
    files = backup(datastore, BackupGroup.parse("host/files"), parse_sources([f"root.pxar:{tree}"]), sync=False,
                   change_detection_mode="data")
    shutil.rmtree(tree)
    many = make_big_snapshot(datastore, entries)
    started = time.perf_counter()
    tapefs(env, "backup", "store", "bench", "--drive", "drive0", "--eject-media")
    print(f"setup: tape backup of {image_size * 2 / 1e9:.1f} GB and {entries} entries "
          f"in {time.perf_counter() - started:.0f} s")
    return str(image.snapshot), str(files.snapshot), str(many)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", default="4GiB")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--dir", default=None, help="work directory parent (default: the system temp dir)")
    args = parser.parse_args()
    image_size = parse_size(args.image_size)
    root = Path(tempfile.mkdtemp(prefix="tapefs-fuse-bench.", dir=args.dir))
    env = {**os.environ, "TAPEFS_CONFIG_DIR": str(root / "config"), "TAPEFS_STATE_DIR": str(root / "state")}
    mountpoint = root / "mnt"
    mountpoint.mkdir()
    try:
        image_snapshot, files_snapshot, many_snapshot = build(root, env, image_size, entries=args.entries)
        print(f"load average {os.getloadavg()[0]:.1f} (2 cores: above 2, other work shares the machine)")
        started = time.perf_counter()
        tapefs(env, "mount", str(mountpoint), "--cache-dir", str(root / "cache"), "--cache-size", "16GiB")
        print(f"mount, {args.entries} entries in the catalog: {time.perf_counter() - started:.2f} s")
        dropped = drop_page_cache()
        snapshots = mountpoint / "snapshots" / "store"

        image = snapshots / image_snapshot / "disk.img"
        cold = timed(["cp", str(image), "/dev/null"])
        warm = timed(["cp", str(image), "/dev/null"])
        print(f"cp of a {image_size / 2**30:.1f} GiB image: cold {image_size / cold / 1e6:.0f} MB/s "
              f"(page cache {'dropped' if dropped else 'not dropped: not root'}), "
              f"warm {image_size / warm / 1e6:.0f} MB/s; server peak RSS "
              f"{resident_mb(status(mountpoint)['pid'])[1]:.0f} MB")

        before = status(mountpoint)["tapes"]
        subprocess.run(["cp", str(snapshots / files_snapshot / "root.pxar" / "small.bin"), str(root / "small.bin")],
                       check=True)
        after = status(mountpoint)["tapes"]
        read = after["bytes-from-tape"] - before["bytes-from-tape"]
        passed = after["bytes-passed-over"] - before["bytes-passed-over"]
        print(f"one 10 MiB file of a {image_size * 1.0 / 2**30 + 0.01:.1f} GiB snapshot: {read / 1e6:.1f} MB "
              f"from tape, ratio {read / SMALL_FILE:.2f} ({passed / 1e6:.1f} MB of it read through between its "
              "chunks instead of a LOCATE)")

        tapefs(env, "umount", str(mountpoint))
        # Each listing on a fresh mount, so neither profits from the kernel caching what the
        # other looked up; the server's memory is read after the `ls -lR`.
        many = snapshots / many_snapshot / "root.pxar"
        for label, options in (("xattrs on (the default)", ()), ("--no-xattrs", ("--no-xattrs",))):
            tapefs(env, "mount", str(mountpoint), *options)
            find = timed(["find", str(many)])
            tapefs(env, "umount", str(mountpoint))
            tapefs(env, "mount", str(mountpoint), *options)
            ls = timed(["ls", "-lR", str(many)])
            rss, peak = resident_mb(status(mountpoint)["pid"])
            tapefs(env, "umount", str(mountpoint))
            print(f"{args.entries} entries, {label}: find {find:.1f} s, ls -lR {ls:.1f} s, "
                  f"server RSS after it {rss:.0f} MB (peak {peak:.0f} MB)")
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        if os.path.ismount(mountpoint):
            tapefs(env, "umount", str(mountpoint))
        if (root / "lib" / "control").exists():
            daemon.stop(root / "lib")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
