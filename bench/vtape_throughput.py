"""Write then read SIZE bytes as 256 KiB records through a vtape drive socket, beside dd.

    .venv/bin/python bench/vtape_throughput.py [--size 4GiB] [--record 256KiB] [--dir /var/tmp]

Prints MB/s for the socket path each way and for dd writing and reading the
same amount to and from the same disk: writes until the data is on disk (the
final filemark fsyncs, as dd's conv=fsync does) and reads from the disk (the
page cache is dropped first when the bench runs as root). A second read pass
from the page cache shows the emulator's own ceiling, free of the disk.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtape import daemon, media  # noqa: E402
from vtape.client import DeviceClient  # noqa: E402
from vtape.library import FIRST_ADDRESS, CreateOptions, create_library  # noqa: E402


def drop_caches() -> None:
    if os.geteuid() == 0:
        os.sync()
        try:
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
        except OSError:
            pass


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def dd(size: int, record: int, directory: Path) -> tuple[float, float]:
    target = directory / "dd.bin"
    count = size // record
    started = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={target}", f"bs={record}", f"count={count}", "conv=fsync"],
                   check=True, capture_output=True)
    write = mbps(size, time.perf_counter() - started)
    drop_caches()
    started = time.perf_counter()
    subprocess.run(["dd", f"if={target}", "of=/dev/null", f"bs={record}"], check=True, capture_output=True)
    read = mbps(size, time.perf_counter() - started)
    target.unlink()
    return write, read


def through_vtape(size: int, record: int, directory: Path) -> tuple[float, float, float]:
    libdir = directory / "lib"
    create_library(libdir, CreateOptions(drives=1, cartridges=1, cleaning_cartridges=0, capacity=size * 2))
    daemon.start(libdir)
    try:
        with DeviceClient(libdir / "changer") as changer:
            move = bytes([0xA5, 0, 0, 0]) + FIRST_ADDRESS["storage"].to_bytes(2, "big") \
                + FIRST_ADDRESS["drive"].to_bytes(2, "big") + bytes(4)
            assert changer.execute(move).status == 0
        with DeviceClient(libdir / "drive0") as drive:
            drive.execute(bytes([0x03, 0, 0, 0, 18, 0]), data_in_len=18)
            payload = os.urandom(record)
            cdb = bytes([0x0A, 0]) + record.to_bytes(3, "big") + b"\0"
            count = size // record
            started = time.perf_counter()
            for _ in range(count):
                reply = drive.execute(cdb, payload)
                assert reply.status == 0, bytes(reply.sense).hex()
            assert drive.execute(bytes([0x10, 0, 0, 0, 1, 0])).status == 0  # filemark: fsync, like dd's
            write = mbps(size, time.perf_counter() - started)
            assert drive.execute(bytes([0x01, 0, 0, 0, 0, 0])).status == 0
            drop_caches()
            cdb = bytes([0x08, 0x02]) + record.to_bytes(3, "big") + b"\0"
            started = time.perf_counter()
            for _ in range(count):
                reply = drive.execute(cdb, data_in_len=record)
                assert reply.status == 0 and len(reply.data) == record
            read = mbps(size, time.perf_counter() - started)
            assert drive.execute(bytes([0x01, 0, 0, 0, 0, 0])).status == 0
            started = time.perf_counter()
            for _ in range(count):
                reply = drive.execute(cdb, data_in_len=record)
                assert reply.status == 0 and len(reply.data) == record
            cached_read = mbps(size, time.perf_counter() - started)
        return write, read, cached_read
    finally:
        daemon.stop(libdir)
        shutil.rmtree(libdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4GiB")
    parser.add_argument("--record", default="256KiB")
    parser.add_argument("--dir", default="/var/tmp", help="a directory on the disk to measure")
    args = parser.parse_args()
    size, record = media.parse_size(args.size), media.parse_size(args.record)
    with tempfile.TemporaryDirectory(prefix="vtbench", dir=args.dir) as tmp:
        directory = Path(tmp)
        vt_write, vt_read, vt_cached_read = through_vtape(size, record, directory)
        dd_write, dd_read = dd(size, record, directory)
    print(f"size {size / 2**30:.2f} GiB, records of {record // 1024} KiB, disk {args.dir}")
    print(f"vtape write {vt_write:8.0f} MB/s   dd write {dd_write:8.0f} MB/s   ratio {vt_write / dd_write:5.0%}")
    print(f"vtape read  {vt_read:8.0f} MB/s   dd read  {dd_read:8.0f} MB/s   ratio {vt_read / dd_read:5.0%}")
    print(f"vtape read from the page cache {vt_cached_read:8.0f} MB/s")


if __name__ == "__main__":
    main()
