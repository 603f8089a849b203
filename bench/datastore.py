"""Datastore throughput: back up a directory tree and a disk image, restore both, print MB/s.

    .venv/bin/python bench/datastore.py [--workdir /var/tmp/tapefs-bench] [--tree-gib 2] [--image-gib 4]

The data is generated first (not timed): half of every file or image region is random bytes
(incompressible), half is text-like (random bytes over a 16-letter alphabet, zstd halves it), so
neither compression nor deduplication flatters the numbers. The tree has files from 4 KiB to
64 MiB (log-uniform sizes) in nested directories. Backups end with a syncfs of the datastore
(they are durable when timed); the image restore fsyncs its output, the tree restore leaves
its files to the page cache, as tar would. Targets (issue 4): 100 MB/s backup, 300 MB/s restore.
"""

import argparse
import os
import random
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupGroup
from tapefs.datastore.restore import restore

MIB = 1 << 20
GIB = 1 << 30
TEXT_ALPHABET = bytes.maketrans(bytes(range(256)), (b"etaoinshrdlucmfw" * 16))
REGION = 1 * MIB


def generated(size: int, rng: random.Random) -> bytes:
    """``size`` bytes alternating 1 MiB random and 1 MiB text-like regions."""
    parts = []
    for offset in range(0, size, REGION):
        region = os.urandom(min(REGION, size - offset))
        parts.append(region.translate(TEXT_ALPHABET) if rng.random() < 0.5 else region)
    return b"".join(parts)


def make_tree(root: Path, total: int, rng: random.Random) -> int:
    written = 0
    index = 0
    while written < total:
        size = min(int(4096 * (2 ** rng.uniform(0, 14))), total - written)
        directory = root / f"d{index % 7}" / f"e{index % 23}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"file-{index:05d}.dat").write_bytes(generated(size, rng))
        written += size
        index += 1
    return index


def make_image(path: Path, total: int, rng: random.Random) -> None:
    with open(path, "wb") as image:
        for _ in range(0, total, 64 * MIB):
            image.write(generated(min(64 * MIB, total - image.tell()), rng))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(label: str, size: int, function):
    """Wall-clock MB/s, plus CPU seconds used by this process (all threads): on a shared
    machine the second number says what the code costs, the first what the box gave it."""
    started = time.perf_counter()
    cpu_started = _cpu_seconds()
    result = function()
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_started
    print(f"{label:<16} {size / MIB:8.0f} MiB  {elapsed:6.1f} s  {size / elapsed / 1e6:6.0f} MB/s   "
          f"cpu {cpu:6.1f} s = {size / cpu / 1e6:5.0f} MB per cpu-second", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a new one in /var/tmp)")
    parser.add_argument("--tree-gib", type=float, default=2.0)
    parser.add_argument("--image-gib", type=float, default=4.0)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tapefs-bench-", dir="/var/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2025)
    tree_size = int(args.tree_gib * GIB)
    image_size = int(args.image_gib * GIB)
    try:
        print(f"generating {args.tree_gib} GiB tree and {args.image_gib} GiB image in {workdir} ...", flush=True)
        files = make_tree(workdir / "tree", tree_size, rng)
        make_image(workdir / "disk.raw", image_size, rng)
        os.sync()  # the generated data must not be flushed inside a timed backup
        datastore = Datastore.create(workdir / "store")
        print(f"tree: {files} files; cpus: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}", flush=True)

        tree_result = timed("backup tree", tree_size,
                            lambda: backup(datastore, BackupGroup.parse("host/bench"), parse_sources([str(workdir / "tree")])))
        image_result = timed("backup image", image_size,
                             lambda: backup(datastore, BackupGroup.parse("vm/900"), parse_sources([str(workdir / "disk.raw")])))
        os.sync()
        # what this machine manages for a plain file copy right now: the ceiling for a restore
        timed("(cp image)", image_size, lambda: shutil.copyfile(workdir / "disk.raw", workdir / "disk-copy.raw"))
        os.unlink(workdir / "disk-copy.raw")
        os.sync()
        timed("restore tree", tree_size,
              lambda: restore(datastore, tree_result.snapshot, "root.pxar", workdir / "tree-restored"))
        os.sync()
        timed("restore image", image_size,
              lambda: restore(datastore, image_result.snapshot, "disk.img", workdir / "disk-restored.raw"))
        stored = sum(f.stat().st_size for f in (workdir / "store" / ".chunks").rglob("*") if f.is_file())
        print(f"stored {stored / MIB:.0f} MiB of chunks for {(tree_size + image_size) / MIB:.0f} MiB of data")
        same = subprocess.run(["cmp", "-s", workdir / "disk.raw", workdir / "disk-restored.raw"]).returncode == 0
        same_tree = subprocess.run(["diff", "-rq", workdir / "tree", workdir / "tree-restored"]).returncode == 0
        print(f"restored image identical: {same}; restored tree identical: {same_tree}; "
              f"load average: {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
