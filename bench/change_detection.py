"""Change detection: the second backup of an unchanged tree in mode metadata against mode data.

    .venv/bin/python bench/change_detection.py [--workdir /var/tmp/tapefs-bench] [--files 2000 --size-mib 200]
    .venv/bin/python bench/change_detection.py --large      # 50,000 files, 2 GiB

A tree is generated (not timed): files of log-uniform sizes around the average the two figures
give, half random and half text-like bytes, in nested directories. A first backup in mode
metadata (no previous snapshot: it reads everything) is not timed. Then the unchanged tree is
backed up again in mode data and in mode metadata, each timed; printed are the seconds, the
file bytes each read and the ratios. Goals (issue 20): metadata reads < 1 % of the data and is
≥ 10× faster. The files stay in the page cache throughout, which favours mode data.
"""

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupGroup

MIB = 1 << 20
TEXT_ALPHABET = bytes.maketrans(bytes(range(256)), (b"etaoinshrdlucmfw" * 16))


def make_tree(root: Path, files: int, total: int, rng: random.Random) -> int:
    average = total / files
    sizes = [int(average / 4 * 2 ** rng.uniform(0, 4)) for _ in range(files)]
    scale = total / max(1, sum(sizes))
    written = 0
    for index, size in enumerate(sizes):
        size = int(size * scale)
        directory = root / f"d{index % 17}" / f"e{index % 101}"
        directory.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        (directory / f"file-{index:06d}.dat").write_bytes(data.translate(TEXT_ALPHABET) if index % 2 else data)
        written += size
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=None, help="where tree and datastore go (default: a temp dir)")
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--large", action="store_true", help="50,000 files, 2 GiB")
    args = parser.parse_args()
    files, total = (50_000, 2048 * MIB) if args.large else (args.files, args.size_mib * MIB)

    workdir = Path(tempfile.mkdtemp(prefix="tapefs-cd-", dir=args.workdir))
    try:
        tree = workdir / "tree"
        size = make_tree(tree, files, total, random.Random(20))
        datastore = Datastore.create(workdir / "store", prefix_dirs=False)
        group = BackupGroup.parse("host/bench")
        sources = parse_sources([str(tree)])
        print(f"tree: {files} files, {size / MIB:.0f} MiB")
        backup(datastore, group, sources, sync=False, change_detection_mode="metadata")

        started = time.monotonic()
        backup(datastore, group, sources, sync=False, change_detection_mode="data")
        data_seconds = time.monotonic() - started
        started = time.monotonic()
        result = backup(datastore, group, sources, sync=False, change_detection_mode="metadata")
        metadata_seconds = time.monotonic() - started
        stats = result.change_detection["root.mpxar.didx"]

        print(f"data mode:     {data_seconds:7.2f} s, read {size / MIB:.0f} MiB")
        print(
            f"metadata mode: {metadata_seconds:7.2f} s, read {stats.bytes_read / MIB:.2f} MiB "
            f"({stats.files_reused} files reused, {stats.files_read} read, {stats.chunks_appended} chunks appended)"
        )
        print(f"read: {100 * stats.bytes_read / size:.3f} % of the data; {data_seconds / metadata_seconds:.1f}x faster")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
