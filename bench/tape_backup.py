"""Tape backup and restore of incompressible chunks through a vtape library; print MB/s each way.

    .venv/bin/python bench/tape_backup.py [--size 4GiB] [--dir /var/tmp] [--chunk-order both|inode|none]
        [--profile]

Builds a datastore holding one snapshot of SIZE of random data (4 MiB fixed chunks, stored
uncompressed because zstd cannot shrink them), then times the whole job layer: `backup_datastore`
to a pool on an LTO-8-sized vtape cartridge (chunk read and CRC/digest check from the datastore,
chunk archives, snapshot archive, catalog in SQLite, catalog archive), and `restore_media_set`
into an empty datastore (every chunk's CRC and SHA-256 checked, inserted, synced). Target: 400 MB/s
each way. Setting up the datastore is not timed. With `--chunk-order both` (the default) the same
datastore is backed up and restored once per chunk order, each on a fresh library; `--profile`
prints the functions the backup and the restore spend most time in (cProfile, this process only).
Beside MB/s it prints the CPU seconds per GB of this process and of the vtape daemon, which hold
up on a busy machine where the wall-clock rates do not.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tapefs.catalog.media_catalog import MediaCatalog  # noqa: E402
from tapefs.datastore.backup import backup, parse_sources  # noqa: E402
from tapefs.datastore.datastore import Datastore  # noqa: E402
from tapefs.datastore.naming import BackupGroup  # noqa: E402
from tapefs.jobs.backup import BackupRequest, backup_datastore  # noqa: E402
from tapefs.jobs.drive_session import DriveSession, drive_setup  # noqa: E402
from tapefs.jobs.restore import StoreMap, restore_media_set  # noqa: E402
from tapefs.media.inventory import Inventory  # noqa: E402
from tapefs.media.labeling import label_drive_tape  # noqa: E402
from tapefs.media.media_id import MediaLocation  # noqa: E402
from tapefs.media.tape_config import (  # noqa: E402
    ChangerConfig, DriveConfig, MediaPoolConfig, TapeDeviceConfig, load_tape_config, save_media_pool_config,
    save_tape_config,
)
from vtape import daemon  # noqa: E402
from vtape.library import CreateOptions, create_library  # noqa: E402

PIECE = 64 * 1024 * 1024


def parse_size(text: str) -> int:
    units = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[:-len(unit)]) * factor)
    return int(text)


def make_datastore(root: Path, size: int) -> Datastore:
    datastore = Datastore.create(root / "store", "store", prefix_dirs=False)
    image = root / "disk.raw"
    with open(image, "wb") as file:
        for _ in range(size // PIECE):
            file.write(os.urandom(PIECE))
    backup(datastore, BackupGroup.parse("vm/100"), parse_sources([f"disk.img:{image}"]), sync=False)
    image.unlink()
    return datastore


def prepare_library(directory: Path, size: int) -> tuple[Path, MediaPoolConfig]:
    """A vtape library (2 drives, 2 cartridges of twice `size`), its tape.cfg and a pool "bench",
    all under `directory`; the library directory and the pool."""
    os.environ["TAPEFS_CONFIG_DIR"] = str(directory / "config")
    os.environ["TAPEFS_STATE_DIR"] = str(directory / "state")
    libdir = directory / "lib"
    create_library(libdir, CreateOptions(drives=2, cartridges=2, cleaning_cartridges=0, capacity=size * 2))
    save_tape_config(TapeDeviceConfig(
        drives={f"drive{n}": DriveConfig(f"drive{n}", str(libdir / f"drive{n}"), "lib", n) for n in range(2)},
        changers={"lib": ChangerConfig("lib", str(libdir / "changer"))}))
    pool = MediaPoolConfig("bench")
    save_media_pool_config({"bench": pool})
    return libdir, pool


def label_first_tape(session: DriveSession, inventory: Inventory) -> None:
    device = session.load("VT0001L8")
    label_drive_tape(device.drive, "VT0001L8", inventory, "bench", location=MediaLocation.online("lib"))


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(profile: bool, label: str, daemon_pid: int, action):
    """Run `action()`; its result, the seconds it took and the CPU seconds of this process and of
    the daemon (with a cProfile summary if asked)."""
    profiler = cProfile.Profile() if profile else None
    started, cpu, daemon_cpu = time.perf_counter(), time.process_time(), process_cpu_seconds(daemon_pid)
    if profiler is not None:
        profiler.enable()
    try:
        result = action()
        return (
            result,
            time.perf_counter() - started,
            time.process_time() - cpu,
            process_cpu_seconds(daemon_pid) - daemon_cpu,
        )
    finally:
        if profiler is not None:
            profiler.disable()
            print(f"--- {label}: top functions by own time")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


def run_order(datastore: Datastore, size: int, directory: Path, chunk_order: str, profile: bool) -> None:
    libdir, pool = prepare_library(directory, size)
    chunk_bytes = sum(path.stat().st_size for path in (datastore.root / ".chunks").rglob("*") if path.is_file())
    daemon_pid = daemon.start(libdir)
    try:
        with Inventory.open() as inventory, MediaCatalog.open() as catalog:
            with DriveSession(drive_setup(load_tape_config(), "drive0")) as session:
                label_first_tape(session, inventory)
                request = BackupRequest("bench", chunk_order=chunk_order)
                result, *backup = timed(
                    profile,
                    "backup",
                    daemon_pid,
                    lambda: backup_datastore(datastore, pool, request, session, inventory, catalog),
                )
                session.eject()
            target = Datastore.create(directory / "restored", "restored", prefix_dirs=False)
            with DriveSession(drive_setup(load_tape_config(), "drive1")) as session:
                restored, *restore = timed(
                    profile,
                    "restore",
                    daemon_pid,
                    lambda: restore_media_set(
                        result.media_set, StoreMap({"store": target}), session, inventory, catalog
                    ),
                )
    finally:
        daemon.stop(libdir)
    assert restored.chunks_restored == result.chunks_written
    print(f"chunk order {chunk_order}: {result.chunks_written} chunks, {chunk_bytes / 1e6:.0f} MB of blobs")
    gigabytes = chunk_bytes / 1e9
    for name, (seconds, cpu, daemon_cpu) in (("backup", backup), ("restore", restore)):
        print(
            f"  {name + ':':8} {chunk_bytes / seconds / 1e6:7.1f} MB/s ({seconds:.1f} s); CPU s/GB: "
            f"{cpu / gigabytes:.2f} here, {daemon_cpu / gigabytes:.2f} vtape daemon"
        )
    print(f"  load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)


def run(size: int, directory: Path, chunk_order: str = "both", profile: bool = False) -> None:
    print(f"preparing a datastore with {size / 2**30:.1f} GiB of random chunks ...", flush=True)
    datastore = make_datastore(directory, size)
    for order in ("inode", "none") if chunk_order == "both" else (chunk_order,):
        (directory / order).mkdir()
        run_order(datastore, size, directory / order, order, profile)
        shutil.rmtree(directory / order)


def scratch_arguments(description: str, default_size: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", default=parse_size(default_size), type=parse_size,
                        help=f"bytes to write, e.g. 512MiB (default {default_size})")
    parser.add_argument("--dir", default="/var/tmp")
    return parser


def run_in_scratch_dir(run_bench, description: str, default_size: str) -> None:
    """Parse --size and --dir, then run `run_bench(size, directory)` in a scratch directory that is
    removed afterwards."""
    args = scratch_arguments(description, default_size).parse_args()
    in_scratch_dir(args.dir, lambda directory: run_bench(args.size, directory))


def in_scratch_dir(parent: str, action) -> None:
    directory = Path(tempfile.mkdtemp(prefix="tapefs-bench.", dir=parent))
    try:
        action(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = scratch_arguments(__doc__.splitlines()[0], "4GiB")
    parser.add_argument("--chunk-order", choices=("both", "inode", "none"), default="both")
    parser.add_argument("--profile", action="store_true", help="print where backup and restore spend their time")
    args = parser.parse_args()
    in_scratch_dir(args.dir, lambda directory: run(args.size, directory, args.chunk_order, args.profile))


if __name__ == "__main__":
    main()
