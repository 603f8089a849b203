"""The library's command log: one JSON line per SCSI command, with its latency."""
from __future__ import annotations

import json
import time
from pathlib import Path

from .sense import CHECK_CONDITION


class EventLog:
    def __init__(self, path: Path):
        self._file = open(path, "a", buffering=1024 * 1024)

    def command(self, device: str, name: str, cdb: bytes, status: int, sense: bytes,
                data_out_len: int, data_in_len: int, latency_us: int) -> None:
        event = {"t": round(time.time(), 6), "device": device, "command": name, "cdb": cdb.hex(),
                 "status": status, "out": data_out_len, "in": data_in_len, "us": latency_us}
        if status == CHECK_CONDITION and len(sense) >= 14:
            event["sense"] = f"{sense[2] & 0x0F:X}/{sense[12]:02X}/{sense[13]:02X}"
        self._file.write(json.dumps(event) + "\n")

    def note(self, **fields) -> None:
        self._file.write(json.dumps({"t": round(time.time(), 6), **fields}) + "\n")

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()
