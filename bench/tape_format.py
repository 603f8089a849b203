"""Write and read chunk archives in PBS's tape format through a vtape drive; print MB/s.

    .venv/bin/python bench/tape_format.py [--size 4GiB] [--chunk 4MiB] [--dir /var/tmp]

Measures the format layer on top of the drive API (tapefs.device over the vtape socket): labels,
then chunk archives of incompressible blobs up to SIZE, then a full read back through
ChunkArchiveReader, then single chunks fetched with one LOCATE each. For scale it also writes and reads the same
amount as bare 256 KiB records through the same drive API (no format layer). The whole tape
backup aims at 400 MB/s each way, so this layer has to stay close to the bare figures.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tapefs.device.changer import Changer  # noqa: E402
from tapefs.device.drive import Drive  # noqa: E402
from tapefs.tapeformat.block_device import BLOCK_SIZE, DriveBlockDevice, Mark  # noqa: E402
from tapefs.tapeformat.chunk_archive import ChunkArchiveReader, ChunkArchiveWriter, read_chunk_at  # noqa: E402
from tapefs.tapeformat.labels import MediaLabel, MediaSetLabel, read_labels  # noqa: E402
from tapefs.tapeformat.labels import write_media_label, write_media_set_label  # noqa: E402
from tapefs.tapeformat.tape_file import open_tape_file  # noqa: E402
from vtape import daemon, media  # noqa: E402
from vtape.library import CreateOptions, create_library  # noqa: E402

#: Distinct blobs to cycle through: enough that no cache sees repeats within a few MiB.
BLOB_POOL = 16
RANDOM_READS = 20


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def bare_records(drive: Drive, blobs: list[bytes], size: int) -> tuple[float, float]:
    """MB/s writing and reading `size` bytes as plain 256 KiB records in file 1 (the set label
    written afterwards discards them)."""
    records = [blob[i:i + BLOCK_SIZE] for blob in blobs[:4] for i in range(0, len(blob) - BLOCK_SIZE + 1, BLOCK_SIZE)]
    count = size // BLOCK_SIZE
    drive.locate_file(1)
    started = time.perf_counter()
    for n in range(count):
        drive.write_block(records[n % len(records)])
    drive.write_filemarks(1)
    write = mbps(count * BLOCK_SIZE, time.perf_counter() - started)
    drive.locate_file(1)
    started = time.perf_counter()
    for _ in range(count):
        drive.read_block(BLOCK_SIZE + 1)
    read = mbps(count * BLOCK_SIZE, time.perf_counter() - started)
    return write, read


def run(size: int, chunk_size: int, directory: Path) -> None:
    libdir = directory / "lib"
    create_library(libdir, CreateOptions(drives=1, cartridges=1, cleaning_cartridges=0, capacity=size * 3))
    daemon.start(libdir)
    try:
        with Changer.open(str(libdir / "changer")) as changer:
            changer.load(1, 0)
        with Drive.open(str(libdir / "drive0")) as drive:
            drive.request_sense()
            device = DriveBlockDevice(drive)
            write_media_label(device, MediaLabel(uuid.uuid4(), "BENCH1", int(time.time())))
            blobs = [os.urandom(chunk_size) for _ in range(BLOB_POOL)]
            count = size // chunk_size
            bare_write, bare_read = bare_records(drive, blobs, count * chunk_size)
            write_media_set_label(device, MediaSetLabel("bench", uuid.uuid4(), 0, int(time.time())))

            started = time.perf_counter()
            writer = ChunkArchiveWriter(device, "bench")
            archives = []
            for n in range(count):
                if writer.size_limit_reached:
                    archives += writer.finish()
                    writer = ChunkArchiveWriter(device, "bench")
                writer.add_chunk(n.to_bytes(32, "little"), blobs[n % BLOB_POOL])
            archives += writer.finish()
            drive.sync()
            write = mbps(count * chunk_size, time.perf_counter() - started)

            read_labels(device)
            started = time.perf_counter()
            read_bytes = 0
            while (tape_file := open_tape_file(device)) is not Mark.END_OF_DATA:
                for _, blob in ChunkArchiveReader(tape_file):
                    read_bytes += len(blob)
            read = mbps(read_bytes, time.perf_counter() - started)
            assert read_bytes == count * chunk_size

            picks = random.Random(1).sample([(a, c) for a in archives for c in a.chunks],
                                            min(RANDOM_READS, count))
            started = time.perf_counter()
            for archive, location in picks:
                read_chunk_at(device, archive.file_number, archive.first_block, location)
            per_chunk = (time.perf_counter() - started) / len(picks) * 1000
    finally:
        daemon.stop(libdir)
    print(f"chunk archives: {count * chunk_size / 2**30:.2f} GiB in {count} chunks of {chunk_size // 1024} KiB, "
          f"{len(archives)} archive(s)")
    print(f"write {write:8.0f} MB/s   bare records {bare_write:8.0f} MB/s   ratio {write / bare_write:5.0%}")
    print(f"read  {read:8.0f} MB/s   bare records {bare_read:8.0f} MB/s   ratio {read / bare_read:5.0%}")
    print(f"one chunk after one LOCATE: {per_chunk:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4GiB")
    parser.add_argument("--chunk", default="4MiB")
    parser.add_argument("--dir", default="/var/tmp", help="a directory on the disk to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tfbench", dir=args.dir) as tmp:
        run(media.parse_size(args.size), media.parse_size(args.chunk), Path(tmp))


if __name__ == "__main__":
    main()
