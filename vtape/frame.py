"""The device socket's wire format: one request frame, one reply frame.

Every device of a library (changer, drive0, drive1, ...) is a Unix stream
socket. A client sends a request frame and reads the reply frame; requests on
one connection are answered in order. docs/vtape-protocol.md is the reference
for third parties (the LD_PRELOAD shim speaks it from C).
"""
from __future__ import annotations

import dataclasses
import socket

from construct import Bytes, Const, Int8ul, Int32ul, Padding, Struct

REQUEST_MAGIC = b"VTQ1"
REPLY_MAGIC = b"VTR1"

#: Largest data-out or data-in transfer one frame may carry (two 8 MiB blocks).
MAX_TRANSFER = 16 * 1024 * 1024
MAX_CDB = 16
MAX_SENSE = 252

#: host_status values (Linux DID_* codes) that the daemon itself can produce.
HOST_OK = 0
HOST_ERROR = 7  # malformed frame: the daemon replies once, then closes the connection

REQUEST_HEADER = Struct(
    "magic" / Const(REQUEST_MAGIC),
    "data_out_len" / Int32ul,
    "data_in_len" / Int32ul,
    "timeout_ms" / Int32ul,
    "cdb_len" / Int8ul,
    Padding(3),
    "cdb" / Bytes(MAX_CDB),
).compile()
REQUEST_HEADER_SIZE = 36

REPLY_HEADER = Struct(
    "magic" / Const(REPLY_MAGIC),
    "status" / Int8ul,
    "host_status" / Int8ul,
    "sense_len" / Int8ul,
    Padding(1),
    "data_len" / Int32ul,
    "residual" / Int32ul,
    "duration_us" / Int32ul,
).compile()
REPLY_HEADER_SIZE = 20


class FrameError(Exception):
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
    return REQUEST_HEADER.build(dict(
        data_out_len=data_out_len, data_in_len=data_in_len, timeout_ms=timeout_ms,
        cdb_len=len(cdb), cdb=cdb.ljust(MAX_CDB, b"\0")))


def decode_request_header(raw: bytes) -> RequestHeader:
    """Parse and validate a request header; raise FrameError naming the bad field."""
    if len(raw) != REQUEST_HEADER_SIZE:
        raise FrameError(f"request header is {len(raw)} bytes, expected {REQUEST_HEADER_SIZE}")
    if raw[:4] != REQUEST_MAGIC:
        raise FrameError(f"bad request magic {raw[:4]!r}")
    h = REQUEST_HEADER.parse(raw)
    if not 6 <= h.cdb_len <= MAX_CDB:
        raise FrameError(f"CDB length {h.cdb_len} is outside 6..16")
    if h.data_out_len > MAX_TRANSFER or h.data_in_len > MAX_TRANSFER:
        raise FrameError(f"transfer of {max(h.data_out_len, h.data_in_len)} bytes exceeds {MAX_TRANSFER}")
    return RequestHeader(bytes(h.cdb[:h.cdb_len]), h.data_out_len, h.data_in_len, h.timeout_ms)


def encode_reply_header(reply: Reply) -> bytes:
    return REPLY_HEADER.build(dict(
        status=reply.status, host_status=reply.host_status, sense_len=len(reply.sense),
        data_len=len(reply.data), residual=reply.residual, duration_us=min(reply.duration_us, 0xFFFFFFFF)))


def decode_reply_header(raw: bytes):
    if len(raw) != REPLY_HEADER_SIZE or raw[:4] != REPLY_MAGIC:
        raise FrameError(f"bad reply header {bytes(raw[:8])!r}")
    return REPLY_HEADER.parse(raw)


def recv_exactly(sock: socket.socket, size: int) -> bytearray:
    """Read exactly size bytes from a blocking socket; FrameError on EOF."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise FrameError(f"connection closed after {got} of {size} bytes")
        got += n
    return buf
