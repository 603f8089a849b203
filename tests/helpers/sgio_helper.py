"""SG_IO v3 from Python with ctypes + fcntl.ioctl, for child processes running under the shim.

Independent of tapefs.scsi on purpose: these tests pin the shim's kernel-like behaviour,
field by field, the way a C program sees it.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os

SG_IO = 0x2285
SG_GET_VERSION_NUM = 0x2282
SG_SET_TIMEOUT = 0x2201
SG_GET_TIMEOUT = 0x2202
SCSI_IOCTL_GET_IDLUN = 0x5382
SG_GET_SCSI_ID = 0x2276
SG_EMULATED_HOST = 0x2203
SG_GET_RESERVED_SIZE = 0x2272
SG_SET_RESERVED_SIZE = 0x2275
MTIOCGET = 0x80306D02
MTIOCTOP = 0x40086D01
TCGETS = 0x5401

NONE, TO_DEV, FROM_DEV = -1, -2, -3


class SgIoHdr(ctypes.Structure):
    _fields_ = [
        ("interface_id", ctypes.c_int),
        ("dxfer_direction", ctypes.c_int),
        ("cmd_len", ctypes.c_ubyte),
        ("mx_sb_len", ctypes.c_ubyte),
        ("iovec_count", ctypes.c_ushort),
        ("dxfer_len", ctypes.c_uint),
        ("dxferp", ctypes.c_void_p),
        ("cmdp", ctypes.c_void_p),
        ("sbp", ctypes.c_void_p),
        ("timeout", ctypes.c_uint),
        ("flags", ctypes.c_uint),
        ("pack_id", ctypes.c_int),
        ("usr_ptr", ctypes.c_void_p),
        ("status", ctypes.c_ubyte),
        ("masked_status", ctypes.c_ubyte),
        ("msg_status", ctypes.c_ubyte),
        ("sb_len_wr", ctypes.c_ubyte),
        ("host_status", ctypes.c_ushort),
        ("driver_status", ctypes.c_ushort),
        ("resid", ctypes.c_int),
        ("duration", ctypes.c_uint),
        ("info", ctypes.c_uint),
    ]


assert ctypes.sizeof(SgIoHdr) == 88


class SgIovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


def sg_io(
    fd: int,
    cdb: bytes,
    direction: int = FROM_DEV,
    dxfer_len: int = 0,
    data_out: bytes = b"",
    mx_sb_len: int = 32,
    interface_id: int = ord("S"),
    poison_outputs: bool = True,
    iovecs: list[int] | None = None,
) -> dict:
    """One SG_IO; returns the output fields, the data-in bytes and the sense bytes written.

    poison_outputs fills the output fields with garbage first, so that a shim which forgets
    to zero one of them is caught. iovecs splits the buffer into sg_iovec pieces of these sizes.
    """
    cdb_buf = ctypes.create_string_buffer(bytes(cdb), len(cdb))
    sense = ctypes.create_string_buffer(b"\xee" * 255, 255)
    if direction == TO_DEV:
        dxfer_len = len(data_out)
        data = ctypes.create_string_buffer(bytes(data_out), max(dxfer_len, 1))
    else:
        data = ctypes.create_string_buffer(b"\xcc" * max(dxfer_len, 1), max(dxfer_len, 1))
    h = SgIoHdr()
    h.interface_id = interface_id
    h.dxfer_direction = direction
    h.cmd_len = len(cdb)
    h.mx_sb_len = mx_sb_len
    h.dxfer_len = dxfer_len
    h.dxferp = ctypes.addressof(data) if dxfer_len else None
    h.cmdp = ctypes.addressof(cdb_buf)
    h.sbp = ctypes.addressof(sense)
    h.timeout = 20000
    h.pack_id = 1234
    h.usr_ptr = 0x5678
    if iovecs:
        vec = (SgIovec * len(iovecs))()
        offset = 0
        for i, size in enumerate(iovecs):
            vec[i].iov_base = ctypes.addressof(data) + offset
            vec[i].iov_len = size
            offset += size
        h.iovec_count = len(iovecs)
        h.dxferp = ctypes.addressof(vec)
    if poison_outputs:
        h.status, h.masked_status, h.msg_status, h.sb_len_wr = 0x55, 0x55, 0x55, 0x55
        h.host_status, h.driver_status, h.resid, h.duration, h.info = 0x55, 0x55, 12345, 99999, 0x55
    fcntl.ioctl(fd, SG_IO, h)
    got = dxfer_len - h.resid if direction != TO_DEV else 0
    return {
        "status": h.status,
        "masked_status": h.masked_status,
        "msg_status": h.msg_status,
        "sb_len_wr": h.sb_len_wr,
        "host_status": h.host_status,
        "driver_status": h.driver_status,
        "resid": h.resid,
        "duration": h.duration,
        "info": h.info,
        "pack_id": h.pack_id,
        "usr_ptr": h.usr_ptr,
        "data": data.raw[: max(got, 0)].hex(),
        "sense": sense.raw[: h.sb_len_wr].hex(),
        "sense_after": sense.raw[h.sb_len_wr : h.sb_len_wr + 4].hex(),
    }


def ioctl_int(fd: int, request: int, value: int = 0) -> tuple[int, int]:
    """ioctl with an int argument: (return value, the int afterwards)."""
    arg = ctypes.c_int(value)
    rc = fcntl.ioctl(fd, request, arg)
    return rc, arg.value


def errno_of(fn, *args) -> str | None:
    """The errno name fn raises, or None."""
    try:
        fn(*args)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return None


def inquiry_cdb(alloc: int = 36) -> bytes:
    return bytes([0x12, 0, 0, alloc >> 8, alloc & 0xFF, 0])


def open_errno(path: str, flags: int = os.O_RDWR) -> str | None:
    try:
        fd = os.open(path, flags)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    os.close(fd)
    return None
