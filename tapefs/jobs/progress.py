"""Progress events: the jobs report, the command line draws."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    operation: str          # "backup" / "restore"
    message: str            # stable id: "data", "tape-loaded", "snapshot-done", ...
    current: int            # bytes done
    total: int | None       # bytes expected, when known
    rate: float             # bytes per second since the start
    detail: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


class ProgressMeter:
    """Counts bytes and hands events to the callback."""

    def __init__(self, operation: str, callback: ProgressCallback | None, total: int | None = None):
        self.operation = operation
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
            self.callback(ProgressEvent(self.operation, message, self.current, self.total, self.rate(), detail))
