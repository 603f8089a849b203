"""A channel to one logical unit: transport plus timeouts, tracing and sense-to-exception mapping.

The drive and changer APIs send every command through `Channel.run`, which returns the result for
GOOD status and raises the matching `CheckCondition` subclass otherwise. `Channel.execute` is the
raw path (`pmt raw`): it never raises for a device status.
"""

from __future__ import annotations

import logging
import time

from tapefs.scsi import cdb as cdbs
from tapefs.scsi.device_path import open_transport
from tapefs.scsi.errors import ScsiError, StatusError, TransportError, error_class_for
from tapefs.scsi.sense import RECOVERED_ERROR, Sense, SenseFormatError, decode_sense
from tapefs.scsi.timeouts import timeout_for
from tapefs.scsi.trace import Tracer, TraceRecord
from tapefs.scsi.transport import CHECK_CONDITION, GOOD, CommandResult, Transport

log = logging.getLogger(__name__)


class Channel:
    def __init__(self, transport: Transport, tracer: Tracer | None = None):
        self.transport = transport
        self.tracer = tracer

    @classmethod
    def open(cls, path: str, tracer: Tracer | None = None) -> Channel:
        return cls(open_transport(path), tracer)

    @property
    def path(self) -> str:
        return self.transport.path

    def execute(
        self, cdb: bytes, data_out: bytes | memoryview = b"", data_in_len: int = 0, timeout: float | None = None
    ) -> tuple[CommandResult, Sense | None]:
        """Run one command and decode its sense, whatever the status."""
        if timeout is None:
            timeout = timeout_for(cdb)
        started = time.monotonic()
        try:
            result = self.transport.execute(cdb, data_out, data_in_len, timeout)
        except TransportError as exc:
            self._trace_failure(cdb, len(data_out), data_in_len, started, exc)
            raise
        return result, self._traced(cdb, len(data_out), data_in_len, result)

    def _trace_failure(
        self, cdb: bytes, data_out_len: int, data_in_len: int, started: float, error: TransportError
    ) -> None:
        self._trace(
            TraceRecord(
                self.path,
                bytes(cdb),
                data_out_len,
                data_in_len,
                None,
                0,
                0,
                None,
                time.monotonic() - started,
                error.reason,
            )
        )

    def _traced(self, cdb: bytes, data_out_len: int, data_in_len: int, result: CommandResult) -> Sense | None:
        """The decoded sense of a result, once the command is traced."""
        sense = None
        if result.sense:
            try:
                sense = decode_sense(result.sense)
            except SenseFormatError as exc:
                log.warning(
                    "%s: %s: undecodable sense %s: %s", self.path, cdbs.command_name(cdb), result.sense.hex(), exc
                )
        self._trace(
            TraceRecord(
                self.path,
                bytes(cdb),
                data_out_len,
                data_in_len,
                result.status,
                len(result.data),
                result.residual,
                sense,
                result.duration,
            )
        )
        return sense

    def run(
        self, cdb: bytes, data_out: bytes | memoryview = b"", data_in_len: int = 0, timeout: float | None = None
    ) -> CommandResult:
        """Run one command; GOOD returns the result, anything else raises."""
        result, sense = self.execute(cdb, data_out, data_in_len, timeout)
        outcome = self._outcome(cdb, result, sense)
        if isinstance(outcome, ScsiError):
            raise outcome
        return outcome

    def run_reads(
        self, cdb: bytes, count: int, data_in_len: int, timeout: float | None = None
    ) -> list[CommandResult | ScsiError]:
        """One data-in command `count` times, queued at once where the transport can
        (`Transport.execute_reads`); each outcome as `run` would return or raise it. There may
        be fewer than `count` after a failed one, or the device may have run them all."""
        if timeout is None:
            timeout = timeout_for(cdb)
        started = time.monotonic()
        try:
            results = self.transport.execute_reads(cdb, count, data_in_len, timeout)
        except TransportError as exc:
            self._trace_failure(cdb, 0, data_in_len, started, exc)
            raise
        return [self._outcome(cdb, result, self._traced(cdb, 0, data_in_len, result)) for result in results]

    def _outcome(self, cdb: bytes, result: CommandResult, sense: Sense | None) -> CommandResult | ScsiError:
        """GOOD (or recovered) gives the result; anything else, the exception `run` raises."""
        if result.status == GOOD:
            return result
        name = cdbs.command_name(cdb)
        if result.status == CHECK_CONDITION and sense is not None:
            if sense.key == RECOVERED_ERROR:
                # The command succeeded after the device retried internally.
                log.info("%s: %s: %s", self.path, name, sense.describe())
                return result
            return error_class_for(sense)(self.path, name, sense, result)
        detail = "no sense data" if result.status == CHECK_CONDITION else ""
        return StatusError(self.path, name, result.status, detail)

    def _trace(self, record: TraceRecord) -> None:
        if self.tracer is not None:
            self.tracer(record)
        if log.isEnabledFor(logging.DEBUG):  # formatting costs more than the rest of a READ here
            log.debug("%s", record.format())

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
