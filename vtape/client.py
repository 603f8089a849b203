"""A blocking client for one vtape device socket."""

from __future__ import annotations

import socket

from . import frame

#: Socket buffers big enough that a 256 KiB record moves in few system calls.
SOCKET_BUFFER = 4 * 1024 * 1024


def tune_buffers(sock: socket.socket) -> None:
    """Ask for big socket buffers; root may exceed the system's default maximum."""
    for force, plain in (
        (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF),
        (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF),
    ):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force or plain, SOCKET_BUFFER)
        except (OSError, TypeError):
            sock.setsockopt(socket.SOL_SOCKET, plain, SOCKET_BUFFER)


def send_parts(sock: socket.socket, parts: list) -> None:
    """sendmsg the parts without joining them, resuming after short sends."""
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    while views:
        sent = sock.sendmsg(views)
        while sent:
            if sent >= len(views[0]):
                sent -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][sent:]
                sent = 0


class DeviceClient:
    """One connection to a device socket such as LIBDIR/drive0 or LIBDIR/changer."""

    def __init__(self, path: str, connect_timeout: float = 10.0):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(connect_timeout)
            self.sock.connect(self.path)
            self.sock.settimeout(None)
            tune_buffers(self.sock)
        except OSError:
            self.sock.close()
            raise

    def execute(
        self, cdb: bytes, data_out: bytes | memoryview = b"", data_in_len: int = 0, timeout_ms: int = 0
    ) -> frame.Reply:
        """Send one command and wait for its reply (status, sense, data, residual)."""
        header = frame.encode_request_header(bytes(cdb), len(data_out), data_in_len, timeout_ms)
        send_parts(self.sock, [header, data_out] if data_out else [header])
        return self._reply()

    def execute_queued(self, cdb: bytes, count: int, data_in_len: int, timeout_ms: int = 0) -> list[frame.Reply]:
        """One data-in command `count` times, all sent before the first reply is read: the daemon
        answers a connection's requests in order, and works on the next while we take in one."""
        header = frame.encode_request_header(bytes(cdb), 0, data_in_len, timeout_ms)
        self.sock.sendall(header * count)
        return [self._reply() for _ in range(count)]

    def _reply(self) -> frame.Reply:
        raw = frame.recv_exactly(self.sock, frame.REPLY_HEADER_SIZE)
        h = frame.decode_reply_header(bytes(raw))
        sense = bytes(frame.recv_exactly(self.sock, h.sense_len)) if h.sense_len else b""
        data = frame.recv_bytes(self.sock, h.data_len) if h.data_len else b""
        return frame.Reply(
            status=h.status,
            host_status=h.host_status,
            sense=sense,
            data=data,
            residual=h.residual,
            duration_us=h.duration_us,
        )

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
