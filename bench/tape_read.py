"""Reads through the mount's tape read planner: a sequential TapeStream read of an image, cold
(every drive empty, cache empty) and warm (from the chunk cache), and the ratio of bytes read from
tape to bytes asked for when reading one small range.

    .venv/bin/python bench/tape_read.py [--size 1GiB] [--dir /var/tmp]

Builds a datastore with one snapshot of SIZE of random data (4 MiB fixed chunks), backs it up to
a vtape cartridge and ejects it (not timed). Then reads the image in 128 KiB pieces, as `cp`
through FUSE does: the first read loads the tape, readahead keeps the drive streaming, every
chunk's SHA-256 is checked and it goes into the on-disk cache. Target: 400 MB/s cold.
The cold read also reports the CPU seconds per GiB this process and the vtape daemon spent, which
on a loaded machine compare better between two versions than MB/s do.

On the 2-core VM this was written on, 1 GiB, 2026-12-08 (load average 1.9): cold 689 MB/s with one
tape load (the drive reading at 712 MB/s; 1.97 CPU s per GiB in this process, 0.20 in the vtape
daemon), warm 734 MB/s; bytes from tape / bytes asked for: 1.005 for one aligned 4 MiB chunk, 1.204
for 10 MiB at an unaligned offset (4 chunks), 1030 for 4 KiB (a chunk is the smallest read).
Before the blocks of a chunk were asked for at once and the CRC pass was dropped (the digest
covers it): cold 223 to 258 MB/s at load 2.6 to 4.6.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.tape_backup import label_first_tape, make_datastore, prepare_library, run_in_scratch_dir  # noqa: E402
from tapefs.catalog.media_catalog import MediaCatalog  # noqa: E402
from tapefs.datastore.fixed_index import FixedIndex  # noqa: E402
from tapefs.jobs.backup import BackupRequest, backup_datastore  # noqa: E402
from tapefs.jobs.drive_session import DriveSession, drive_setup  # noqa: E402
from tapefs.media.inventory import Inventory  # noqa: E402
from tapefs.media.tape_config import load_tape_config  # noqa: E402
from tapefs.mount.chunk_cache import ChunkCache  # noqa: E402
from tapefs.mount.read_planner import ReadPlanner  # noqa: E402
from tapefs.mount.tape_stream import TapeStream  # noqa: E402
from vtape import daemon  # noqa: E402

PIECE = 128 * 1024
MiB = 1024 * 1024


def read_all(image: TapeStream) -> float:
    """Seconds for a sequential read of the whole image in PIECE reads."""
    started = time.perf_counter()
    for offset in range(0, image.size, PIECE):
        image.read_at(offset, PIECE)
    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def planner(directory: Path, cache: str) -> ReadPlanner:
    config = load_tape_config()
    setups = [drive_setup(config, f"drive{n}") for n in range(2)]
    return ReadPlanner(setups, ChunkCache(directory / cache, 4 << 30))


def run(size: int, directory: Path) -> None:
    libdir, pool = prepare_library(directory, size)
    print(f"preparing a datastore with {size / 2**30:.1f} GiB of random chunks and backing it up ...", flush=True)
    datastore = make_datastore(directory, size)
    index = FixedIndex.load(next(datastore.root.rglob("disk.img.fidx")))
    daemon_pid = daemon.start(libdir)
    try:
        with Inventory.open() as inventory, MediaCatalog.open() as catalog:
            with DriveSession(drive_setup(load_tape_config(), "drive0")) as session:
                label_first_tape(session, inventory)
                result = backup_datastore(datastore, pool, BackupRequest("bench", eject_media=True), session,
                                          inventory, catalog)
        with planner(directory, "cache") as cold:
            image = TapeStream(cold, result.media_set, "store", index, "disk.img")
            cpu_before = time.process_time(), cpu_seconds(daemon_pid)
            cold_seconds = read_all(image)
            cold_cpu = time.process_time() - cpu_before[0], cpu_seconds(daemon_pid) - cpu_before[1]
            cold_stats = cold.stats()
            warm_seconds = read_all(TapeStream(cold, result.media_set, "store", index, "disk.img"))
        ranges = {"10 MiB at an unaligned offset": (size // 2 + 12345, 10 * MiB),
                  "one aligned 4 MiB chunk": (size // 4, 4 * MiB),
                  "4 KiB": (size // 3, 4096)}
        ratios = {}
        for name, (offset, length) in ranges.items():
            with planner(directory, f"cache-{len(ratios)}") as small:
                TapeStream(small, result.media_set, "store", index, "disk.img").read_at(offset, length)
                ratios[name] = small.stats()["bytes_from_tape"] / length
    finally:
        daemon.stop(libdir)
    print(f"sequential read of {size / 2**30:.1f} GiB in {PIECE // 1024} KiB pieces:")
    print(f"  cold: {size / cold_seconds / 1e6:7.1f} MB/s ({cold_seconds:.1f} s, {cold_stats['loads']} tape load, "
          f"drive reading at {cold_stats['mb_per_s']} MB/s)")
    gib = size / 2**30
    print(f"  cold CPU seconds per GiB: {cold_cpu[0] / gib:.2f} in this process (planner, checks, reader), "
          f"{cold_cpu[1] / gib:.2f} in the vtape daemon")
    print(f"  warm: {size / warm_seconds / 1e6:7.1f} MB/s ({warm_seconds:.1f} s, from the chunk cache)")
    for name, ratio in ratios.items():
        print(f"bytes from tape / bytes asked for, {name}: {ratio:.3f}")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def main() -> None:
    run_in_scratch_dir(run, __doc__.splitlines()[0], "1GiB")


if __name__ == "__main__":
    main()
