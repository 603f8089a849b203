"""Transport over a vtape device socket (LIBDIR/drive0, LIBDIR/changer, ...)."""

from __future__ import annotations

import errno
import logging
import socket
import struct
import time

from tapefs.scsi.cdb import command_name
from tapefs.scsi.errors import CommandTimeout, ConnectionLost, DeviceNotFound, NotAScsiDevice, TransportError
from tapefs.scsi.transport import CommandResult, Transport
from vtape import client, frame

log = logging.getLogger(__name__)

#: The socket waits this much longer than the command timeout: the daemon's clock starts when it
#: dequeues the command, ours when we send it.
TIMEOUT_SLACK = 5.0


class VtapeTransport(Transport):
    def __init__(self, path: str):
        self.path = path
        #: why the connection is no longer usable, once it is not
        self._lost: str | None = None
        self._closed = False
        #: Seconds the kernel lets a send or receive wait (SO_SNDTIMEO, SO_RCVTIMEO); None: not set.
        self._socket_timeout: float | None = None
        try:
            self._client = client.DeviceClient(path)
        except FileNotFoundError:
            raise DeviceNotFound(path, "", "no such device") from None
        except ConnectionRefusedError:
            raise TransportError(
                path, "", "vtape device socket refuses connections (is `vtape serve` running?)"
            ) from None
        except OSError as exc:
            if exc.errno == errno.ENOTSOCK:
                raise NotAScsiDevice(path, "", "not a vtape device socket") from None
            raise TransportError(path, "", exc.strerror or str(exc)) from None

    def execute(
        self, cdb: bytes, data_out: bytes | memoryview = b"", data_in_len: int = 0, timeout: float = 600.0
    ) -> CommandResult:
        self._check_usable(cdb)
        started = time.monotonic()
        (reply,) = self._exchange(
            cdb, timeout, lambda: [self._client.execute(bytes(cdb), data_out, data_in_len, int(timeout * 1000))]
        )
        return self._result(cdb, reply, started)

    def execute_reads(self, cdb: bytes, count: int, data_in_len: int, timeout: float = 600.0) -> list[CommandResult]:
        """All `count` commands queued on the socket at once (see `DeviceClient.execute_queued`)."""
        self._check_usable(cdb)
        started = time.monotonic()
        replies = self._exchange(
            cdb, timeout, lambda: self._client.execute_queued(bytes(cdb), count, data_in_len, int(timeout * 1000))
        )
        return [self._result(cdb, reply, started) for reply in replies]

    def _check_usable(self, cdb: bytes) -> None:
        if self._lost is not None:
            # Closed after a failure: say why, not "Bad file descriptor".
            raise ConnectionLost(self.path, command_name(cdb), f"since an earlier command: {self._lost}")
        if self._closed:
            raise TransportError(self.path, command_name(cdb), "used after close")

    def _exchange(self, cdb: bytes, timeout: float, send_and_receive) -> list[frame.Reply]:
        try:
            self._time_out_after(timeout + TIMEOUT_SLACK)
            return send_and_receive()
        except (TimeoutError, BlockingIOError):
            # The reply may still arrive; the stream can no longer be trusted.
            self._give_up(f"no reply within {timeout:g} s")
            raise CommandTimeout(self.path, command_name(cdb), f"no reply within {timeout:g} s") from None
        except frame.FrameError as exc:  # the daemon closed the socket part way through a reply
            self._give_up(f"vtape daemon closed the connection: {exc}")
            raise ConnectionLost(self.path, command_name(cdb), self._lost) from None
        except OSError as exc:  # EPIPE, ECONNRESET: the daemon is gone
            self._give_up(f"vtape daemon connection: {exc.strerror or exc}")
            raise ConnectionLost(self.path, command_name(cdb), self._lost) from None

    def _result(self, cdb: bytes, reply: frame.Reply, started: float) -> CommandResult:
        if reply.host_status != frame.HOST_OK:
            raise TransportError(
                self.path, command_name(cdb), f"vtape rejected the request (host status {reply.host_status})"
            )
        return CommandResult(
            status=reply.status,
            sense=bytes(reply.sense),
            data=bytes(reply.data),
            residual=reply.residual,
            host_status=reply.host_status,
            duration=reply.duration_us / 1e6 if reply.duration_us else time.monotonic() - started,
        )

    def _time_out_after(self, seconds: float) -> None:
        """The socket stays blocking and the kernel times out a stalled send or receive: a
        Python socket timeout would poll before every receive and return a 256 KiB block in
        pieces, each a system call that gives up and takes back the interpreter lock."""
        if seconds == self._socket_timeout:
            return
        whole = int(seconds)
        timeval = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
        for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
            self._client.sock.setsockopt(socket.SOL_SOCKET, option, timeval)
        self._socket_timeout = seconds

    def _give_up(self, reason: str) -> None:
        self._lost = reason
        self._client.close()

    def close(self) -> None:
        self._closed = True
        self._client.close()
