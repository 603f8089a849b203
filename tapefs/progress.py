"""Progress events: long jobs report, the command line draws (tools/cli.py's progress_reporter).

Every long job takes one ``ProgressCallback``; the datastore, media and job layers all use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    operation: str  # "backup" / "restore" / "label"
    message: str  # stable id: "data", "tape-loaded", "snapshot-done", ...
    current: int  # units done
    total: int | None  # units expected, when known
    rate: float  # units per second since the start
    detail: str = ""
    unit: str = "bytes"  # or "steps"


ProgressCallback = Callable[[ProgressEvent], None]


class ProgressMeter:
    """Counts bytes and hands events to the callback."""

    def __init__(
        self, operation: str, callback: ProgressCallback | None, total: int | None = None, unit: str = "bytes"
    ):
        self.operation = operation
        self.unit = unit
        self.callback = callback
        self.total = total
        self.current = 0
        self.started = time.monotonic()

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.current / elapsed if elapsed > 0 else 0.0

    def add(self, size: int, message: str = "data", detail: str = "") -> None:
        self.current += size
        self.emit(message, detail)

    def emit(self, message: str, detail: str = "") -> None:
        if self.callback is not None:
            self.callback(
                ProgressEvent(self.operation, message, self.current, self.total, self.rate(), detail, self.unit)
            )
