"""A short tour of a fresh library through raw CDBs on its device sockets."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from . import daemon
from .client import DeviceClient
from .library import FIRST_ADDRESS, CreateOptions, create_library

RECORD = 256 * 1024


def _check(reply, what: str) -> None:
    if reply.status != 0:
        sense = bytes(reply.sense)
        raise daemon.DaemonError(f"{what} failed: sense {sense[2] & 0x0F:X}/{sense[12]:02X}/{sense[13]:02X}")


def run_demo(libdir: Path | None, echo: Callable[[str], None]) -> None:
    temporary = libdir is None
    libdir = Path(tempfile.mkdtemp(prefix="vtape-demo-")) / "library" if temporary else Path(libdir)
    create_library(libdir, CreateOptions())
    echo(f"created library {libdir}: 2 LTO-8 drives, 16 slots, cartridges VT0001L8..VT0008L8")
    pid = daemon.start(libdir)
    echo(f"daemon {pid} serving sockets {libdir}/changer, {libdir}/drive0, {libdir}/drive1")
    try:
        with DeviceClient(libdir / "changer") as changer, DeviceClient(libdir / "drive0") as drive:
            inquiry = changer.execute(bytes([0x12, 0, 0, 0, 36, 0]), data_in_len=36)
            echo(f"changer INQUIRY: {bytes(inquiry.data[8:32]).decode().strip()}")
            move = (
                bytes([0xA5, 0, 0, 1])
                + FIRST_ADDRESS["storage"].to_bytes(2, "big")
                + FIRST_ADDRESS["drive"].to_bytes(2, "big")
                + bytes(4)
            )
            _check(changer.execute(move), "MOVE MEDIUM slot 1 -> drive 0")
            echo("MOVE MEDIUM: VT0001L8 from slot 1 into drive0")
            sense = drive.execute(bytes([0x03, 0, 0, 0, 18, 0]), data_in_len=18)
            echo(
                f"REQUEST SENSE after the load: unit attention {bytes(sense.data)[12]:02X}/{bytes(sense.data)[13]:02X} (medium may have changed)"
            )
            records = [os.urandom(RECORD) for _ in range(16)]
            started = time.perf_counter()
            for record in records:
                _check(drive.execute(bytes([0x0A, 0]) + RECORD.to_bytes(3, "big") + b"\0", record), "WRITE")
            _check(drive.execute(bytes([0x10, 0, 0, 0, 1, 0])), "WRITE FILEMARKS")
            elapsed = time.perf_counter() - started
            echo(f"wrote 16 records of 256 KiB and a filemark ({16 * RECORD / elapsed / 1e6:.0f} MB/s)")
            _check(drive.execute(bytes([0x01, 0, 0, 0, 0, 0])), "REWIND")
            digest = hashlib.sha256()
            for _ in records:
                reply = drive.execute(bytes([0x08, 0x02]) + RECORD.to_bytes(3, "big") + b"\0", data_in_len=RECORD)
                _check(reply, "READ")
                digest.update(reply.data)
            end = drive.execute(bytes([0x08, 0x02]) + RECORD.to_bytes(3, "big") + b"\0", data_in_len=RECORD)
            same = digest.digest() == hashlib.sha256(b"".join(records)).digest()
            echo(
                f"read them back: {'identical' if same else 'DIFFERENT'}; next READ: filemark "
                f"(sense {bytes(end.sense)[2] & 0x0F:X}/{bytes(end.sense)[12]:02X}/{bytes(end.sense)[13]:02X})"
            )
            position = drive.execute(bytes([0x34, 0x06]) + bytes(8), data_in_len=32)
            data = bytes(position.data)
            echo(f"READ POSITION: block {int.from_bytes(data[8:16], 'big')}, file {int.from_bytes(data[16:24], 'big')}")
            back = (
                bytes([0xA5, 0, 0, 1])
                + FIRST_ADDRESS["drive"].to_bytes(2, "big")
                + FIRST_ADDRESS["storage"].to_bytes(2, "big")
                + bytes(4)
            )
            _check(changer.execute(back), "MOVE MEDIUM drive 0 -> slot 1")
            echo("MOVE MEDIUM: drive0 unloaded into slot 1")
            if not same:
                raise daemon.DaemonError("the data read back differs from what was written")
    finally:
        daemon.stop(libdir)
        echo("daemon stopped")
        if temporary:
            shutil.rmtree(libdir.parent)
