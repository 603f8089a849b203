"""The device socket's wire format: one request frame, one reply frame.

Every device of a library (changer, drive0, drive1, ...) is a Unix stream
socket. A client sends a request frame and reads the reply frame; requests on
one connection are answered in order. docs/vtape-protocol.md is the reference
for third parties (the LD_PRELOAD shim speaks it from C).
"""

from __future__ import annotations

import dataclasses
import socket
import struct

from .errors import VtapeError

REQUEST_MAGIC = b"VTQ1"
REPLY_MAGIC = b"VTR1"

#: Largest data-out or data-in transfer one frame may carry (two 8 MiB blocks).
MAX_TRANSFER = 16 * 1024 * 1024
MAX_CDB = 16
MAX_SENSE = 252

#: host_status values (Linux DID_* codes) that the daemon itself can produce.
HOST_OK = 0
HOST_ERROR = 7  # malformed frame: the daemon replies once, then closes the connection

# Headers are parsed with struct rather than construct: this runs for every
# command, up to thousands per second, and construct costs ~10 us per parse.
REQUEST_HEADER = struct.Struct("<4sIIIB3x16s")  # magic, data_out_len, data_in_len, timeout_ms, cdb_len, cdb
REQUEST_HEADER_SIZE = REQUEST_HEADER.size
REPLY_HEADER = struct.Struct("<4sBBBxIII")  # magic, status, host_status, sense_len, data_len, residual, duration_us
REPLY_HEADER_SIZE = REPLY_HEADER.size


class FrameError(VtapeError):
    """A frame that breaks the protocol (bad magic, bad length, truncated)."""


@dataclasses.dataclass(frozen=True)
class Request:
    cdb: bytes
    data_out: bytes | memoryview = b""
    data_in_len: int = 0
    timeout_ms: int = 0


@dataclasses.dataclass
class Reply:
    status: int
    sense: bytes = b""
    data: bytes | memoryview = b""
    residual: int = 0
    host_status: int = HOST_OK
    duration_us: int = 0


@dataclasses.dataclass(frozen=True)
class RequestHeader:
    cdb: bytes
    data_out_len: int
    data_in_len: int
    timeout_ms: int


def encode_request_header(cdb: bytes, data_out_len: int, data_in_len: int, timeout_ms: int = 0) -> bytes:
    if not 6 <= len(cdb) <= MAX_CDB:
        raise FrameError(f"CDB length {len(cdb)} is outside 6..16")
    return REQUEST_HEADER.pack(REQUEST_MAGIC, data_out_len, data_in_len, timeout_ms, len(cdb), cdb)


def decode_request_header(raw: bytes) -> RequestHeader:
    """Parse and validate a request header; raise FrameError naming the bad field."""
    if len(raw) != REQUEST_HEADER_SIZE:
        raise FrameError(f"request header is {len(raw)} bytes, expected {REQUEST_HEADER_SIZE}")
    if raw[:4] != REQUEST_MAGIC:
        raise FrameError(f"bad request magic {raw[:4]!r}")
    _, data_out_len, data_in_len, timeout_ms, cdb_len, cdb = REQUEST_HEADER.unpack(raw)
    if not 6 <= cdb_len <= MAX_CDB:
        raise FrameError(f"CDB length {cdb_len} is outside 6..16")
    if data_out_len > MAX_TRANSFER or data_in_len > MAX_TRANSFER:
        raise FrameError(f"transfer of {max(data_out_len, data_in_len)} bytes exceeds {MAX_TRANSFER}")
    return RequestHeader(cdb[:cdb_len], data_out_len, data_in_len, timeout_ms)


def encode_reply_header(reply: Reply) -> bytes:
    return REPLY_HEADER.pack(
        REPLY_MAGIC,
        reply.status,
        reply.host_status,
        len(reply.sense),
        len(reply.data),
        reply.residual,
        min(reply.duration_us, 0xFFFFFFFF),
    )


@dataclasses.dataclass(frozen=True)
class ReplyHeader:
    status: int
    host_status: int
    sense_len: int
    data_len: int
    residual: int
    duration_us: int


def decode_reply_header(raw: bytes) -> ReplyHeader:
    if len(raw) != REPLY_HEADER_SIZE or raw[:4] != REPLY_MAGIC:
        raise FrameError(f"bad reply header {bytes(raw[:8])!r}")
    return ReplyHeader(*REPLY_HEADER.unpack(raw)[1:])


def recv_bytes(sock: socket.socket, size: int) -> bytes:
    """Exactly size bytes as one bytes object. On a blocking socket one recv with MSG_WAITALL
    fills a new bytes object in place, in one system call and without the copy that turning
    recv_exactly's bytearray into bytes costs. FrameError if the peer closes part way."""
    parts = []
    got = 0
    while got < size:
        part = sock.recv(size - got, socket.MSG_WAITALL)
        if not part:
            raise FrameError(f"connection closed after {got} of {size} bytes")
        parts.append(part)
        got += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def recv_exactly(sock: socket.socket, size: int, eof_ok: bool = False) -> bytearray | None:
    """Read exactly size bytes from a blocking socket.

    FrameError if the peer closes part way; None if it closes before the first
    byte and eof_ok is set (a client that is done).
    """
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:], size - got, socket.MSG_WAITALL)
        if n == 0:
            if got == 0 and eof_ok:
                return None
            raise FrameError(f"connection closed after {got} of {size} bytes")
        got += n
    return buf
