"""The library's command log: one JSON line per SCSI command, with its latency."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .sense import CHECK_CONDITION


class EventLog:
    def __init__(self, path: Path):
        self._file = open(path, "a", buffering=1024 * 1024)

    def command(
        self,
        device: str,
        name: str,
        cdb: bytes,
        status: int,
        sense: bytes,
        data_out_len: int,
        data_in_len: int,
        latency_us: int,
    ) -> None:
        # Formatted by hand: json.dumps per command is a measurable share of a 256 KiB WRITE.
        sense_field = (
            f', "sense": "{sense[2] & 0x0F:X}/{sense[12]:02X}/{sense[13]:02X}"'
            if status == CHECK_CONDITION and len(sense) >= 14
            else ""
        )
        self._file.write(
            f'{{"t": {time.time():.6f}, "device": "{device}", "command": "{name}", '
            f'"cdb": "{cdb.hex()}", "status": {status}, "out": {data_out_len}, "in": {data_in_len}, '
            f'"us": {latency_us}{sense_field}}}\n'
        )

    def note(self, **fields) -> None:
        self._file.write(json.dumps({"t": round(time.time(), 6), **fields}) + "\n")

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()
