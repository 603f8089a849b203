"""The transport interface: send one CDB, get status, sense, data and residual back.

Two implementations: `tapefs.scsi.vtape_transport` (a vtape device socket) and
`tapefs.scsi.sg_io` (a Linux SCSI generic node); `tapefs.scsi.device_path.open_transport` picks
one by what the path is.
"""

from __future__ import annotations

import abc
import dataclasses
import logging

log = logging.getLogger(__name__)

GOOD = 0x00
CHECK_CONDITION = 0x02


@dataclasses.dataclass
class CommandResult:
    status: int
    sense: bytes
    data: bytes
    #: Bytes asked for but not transferred (data-in) or not consumed (data-out).
    residual: int
    #: Linux DID_* code: 0 when the command reached the device.
    host_status: int = 0
    #: Seconds the command took, as the transport measured it.
    duration: float = 0.0


class Transport(abc.ABC):
    """One open path to one logical unit. Not thread safe: one command at a time."""

    path: str

    @abc.abstractmethod
    def execute(
        self, cdb: bytes, data_out: bytes | memoryview = b"", data_in_len: int = 0, timeout: float = 600.0
    ) -> CommandResult:
        """Run one command; raise TransportError only when it did not reach the device or its
        reply was lost. CHECK CONDITION is a result, not an exception, at this level."""

    def execute_reads(self, cdb: bytes, count: int, data_in_len: int, timeout: float = 600.0) -> list[CommandResult]:
        """The same data-in command `count` times. A transport that can queue commands sends them
        all before the first reply comes back, so the device works on the next while this side
        takes in the last, and runs every one of them whatever an earlier one returned. Here,
        one after the other, ending with the first that is not GOOD: the tape then stands where
        single commands would leave it, and a drive does not retry on past a medium error."""
        results: list[CommandResult] = []
        while len(results) < count:
            results.append(self.execute(cdb, b"", data_in_len, timeout))
            if results[-1].status != GOOD:
                break
        return results

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
