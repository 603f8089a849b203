"""Command tracing: one record per CDB with lengths, status, decoded sense and duration."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import TextIO

from tapefs.scsi.cdb import command_name
from tapefs.scsi.errors import STATUS_NAMES
from tapefs.scsi.sense import Sense


@dataclasses.dataclass(frozen=True)
class TraceRecord:
    device: str
    cdb: bytes
    data_out_len: int
    data_in_len: int
    #: None when the command never completed (transport error, timeout).
    status: int | None
    data_len: int
    residual: int
    sense: Sense | None
    duration: float
    error: str | None = None

    def format(self) -> str:
        head = (
            f"{self.device}: {command_name(self.cdb)} [{self.cdb.hex(' ')}] "
            f"out={self.data_out_len} in={self.data_in_len}"
        )
        if self.status is None:
            return f"{head} -> FAILED: {self.error} ({self.duration * 1000:.3f} ms)"
        status = STATUS_NAMES.get(self.status, f"status {self.status:#04x}")
        line = f"{head} -> {status} data={self.data_len} resid={self.residual} ({self.duration * 1000:.3f} ms)"
        if self.sense is not None:
            line += f" sense: {self.sense.describe()}"
        return line


Tracer = Callable[[TraceRecord], None]


def stream_tracer(stream: TextIO | None = None) -> Tracer:
    """A tracer that writes one line per command to stream (stderr by default)."""

    def write(record: TraceRecord) -> None:
        target = stream if stream is not None else sys.stderr
        print(f"trace: {record.format()}", file=target, flush=True)

    return write
