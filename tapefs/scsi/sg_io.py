"""Transport over Linux SCSI generic (sg) nodes: the SG_IO ioctl with sg_io_hdr v3.

The header layout is the x86_64/aarch64 one (LP64), with the field offsets the kernel uses; every
integer is in host byte order. A /dev/nstN or /dev/tape/by-id link to a st node is mapped to the sg
node of the same SCSI device through sysfs, since SG_IO on st would go through the st driver's
state machine.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import stat
import time

from construct import Int8un, Int16un, Int32sn, Int32un, Int64un, Padding, Struct

from tapefs.scsi.cdb import command_name
from tapefs.scsi.errors import CommandTimeout, ConnectionLost, DeviceNotFound, NotAScsiDevice, TransportError
from tapefs.scsi.transport import CommandResult, Transport

log = logging.getLogger(__name__)

SG_IO = 0x2285
SG_GET_VERSION_NUM = 0x2282
SG_INTERFACE_ID = ord("S")

SG_DXFER_NONE = -1
SG_DXFER_TO_DEV = -2
SG_DXFER_FROM_DEV = -3

SCSI_GENERIC_MAJOR = 21
SCSI_TAPE_MAJOR = 9

#: Largest sense buffer we offer; the sg driver copies at most this many bytes.
SENSE_BUFFER_SIZE = 64

#: Linux host_status (DID_*) values with a name an operator can act on.
HOST_STATUS_TEXT = {
    1: "no connection to the device",
    2: "bus busy",
    3: "command timed out",
    4: "bad target",
    5: "command aborted",
    7: "host adapter error",
    8: "bus reset",
}
DID_NO_CONNECT = 1
DID_TIME_OUT = 3
#: SG_IO errors of a device that went away (unplugged, its link or host adapter gone)
GONE_ERRNOS = (errno.ENODEV, errno.ENXIO)
DRIVER_TIMEOUT = 0x06

SG_IO_HDR = Struct(
    "interface_id" / Int32sn,  # 0
    "dxfer_direction" / Int32sn,  # 4
    "cmd_len" / Int8un,  # 8
    "mx_sb_len" / Int8un,  # 9
    "iovec_count" / Int16un,  # 10
    "dxfer_len" / Int32un,  # 12
    "dxferp" / Int64un,  # 16
    "cmdp" / Int64un,  # 24
    "sbp" / Int64un,  # 32
    "timeout" / Int32un,  # 40 milliseconds
    "flags" / Int32un,  # 44
    "pack_id" / Int32sn,  # 48
    Padding(4),  # 52 alignment of usr_ptr
    "usr_ptr" / Int64un,  # 56
    "status" / Int8un,  # 64
    "masked_status" / Int8un,  # 65
    "msg_status" / Int8un,  # 66
    "sb_len_wr" / Int8un,  # 67
    "host_status" / Int16un,  # 68
    "driver_status" / Int16un,  # 70
    "resid" / Int32sn,  # 72
    "duration" / Int32un,  # 76 milliseconds
    "info" / Int32un,  # 80
    Padding(4),  # 84 struct alignment to 8
)
SG_IO_HDR_SIZE = 88


def build_sg_io_hdr(
    *,
    direction: int,
    cdb_address: int,
    cdb_length: int,
    data_address: int,
    data_length: int,
    sense_address: int,
    sense_length: int,
    timeout_ms: int,
) -> bytearray:
    """The request header: every output field zero, as the kernel expects nothing else there."""
    return bytearray(
        SG_IO_HDR.build(
            dict(
                interface_id=SG_INTERFACE_ID,
                dxfer_direction=direction,
                cmd_len=cdb_length,
                mx_sb_len=sense_length,
                iovec_count=0,
                dxfer_len=data_length,
                dxferp=data_address,
                cmdp=cdb_address,
                sbp=sense_address,
                timeout=timeout_ms,
                flags=0,
                pack_id=0,
                usr_ptr=0,
                status=0,
                masked_status=0,
                msg_status=0,
                sb_len_wr=0,
                host_status=0,
                driver_status=0,
                resid=0,
                duration=0,
                info=0,
            )
        )
    )


def sg_node_for(path: str) -> str:
    """The /dev/sgN for a path that is an sg node or a st/nst node (or a link to one)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DeviceNotFound(path, "", "no such device") from None
    if not stat.S_ISCHR(st.st_mode):
        raise NotAScsiDevice(path, "", "not a character device")
    major = os.major(st.st_rdev)
    if major == SCSI_GENERIC_MAJOR:
        return path
    if major == SCSI_TAPE_MAJOR:
        sysfs = f"/sys/dev/char/{major}:{os.minor(st.st_rdev)}/device/scsi_generic"
        try:
            (node,) = os.listdir(sysfs)
        except (OSError, ValueError):
            raise NotAScsiDevice(path, "", "st device without a SCSI generic node (is the sg module loaded?)") from None
        log.debug("%s is a st node; using /dev/%s", path, node)
        return f"/dev/{node}"
    raise NotAScsiDevice(
        path, "", f"character device {major}:{os.minor(st.st_rdev)} is not a SCSI generic or tape node"
    )


class SgIoTransport(Transport):
    def __init__(self, path: str):
        self.path = path
        node = sg_node_for(path)
        try:
            # O_NONBLOCK so that open does not wait for a busy device; cleared right after.
            self._fd = os.open(node, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise TransportError(path, "", f"cannot open {node}: {exc.strerror}") from None
        flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
        fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        version = ctypes.c_int(0)
        try:
            fcntl.ioctl(self._fd, SG_GET_VERSION_NUM, version)
        except OSError:
            os.close(self._fd)
            raise NotAScsiDevice(path, "", "does not answer SG_GET_VERSION_NUM") from None
        if version.value < 30000:
            os.close(self._fd)
            raise NotAScsiDevice(path, "", f"sg driver version {version.value} is older than 3.0")

    def execute(
        self, cdb: bytes, data_out: bytes | memoryview = b"", data_in_len: int = 0, timeout: float = 600.0
    ) -> CommandResult:
        cdb = bytes(cdb)
        cdb_buffer = ctypes.create_string_buffer(cdb, len(cdb))
        sense_buffer = ctypes.create_string_buffer(SENSE_BUFFER_SIZE)
        if data_out:
            direction, length = SG_DXFER_TO_DEV, len(data_out)
            data_buffer = ctypes.create_string_buffer(bytes(data_out), length)
        elif data_in_len:
            direction, length = SG_DXFER_FROM_DEV, data_in_len
            data_buffer = ctypes.create_string_buffer(length)
        else:
            direction, length, data_buffer = SG_DXFER_NONE, 0, None
        header = build_sg_io_hdr(
            direction=direction,
            cdb_address=ctypes.addressof(cdb_buffer),
            cdb_length=len(cdb),
            data_address=ctypes.addressof(data_buffer) if data_buffer is not None else 0,
            data_length=length,
            sense_address=ctypes.addressof(sense_buffer),
            sense_length=SENSE_BUFFER_SIZE,
            timeout_ms=min(int(timeout * 1000), 0xFFFFFFFF),
        )
        started = time.monotonic()
        while True:
            try:
                fcntl.ioctl(self._fd, SG_IO, header, True)
                break
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno in GONE_ERRNOS:
                    raise ConnectionLost(
                        self.path, command_name(cdb), f"SG_IO failed: {os.strerror(exc.errno)}"
                    ) from None
                raise TransportError(self.path, command_name(cdb), f"SG_IO failed: {os.strerror(exc.errno)}") from None
        reply = SG_IO_HDR.parse(bytes(header))
        if reply.host_status == DID_TIME_OUT or reply.driver_status & 0x0F == DRIVER_TIMEOUT:
            raise CommandTimeout(self.path, command_name(cdb), f"no completion within {timeout:g} s")
        if reply.host_status:
            text = HOST_STATUS_TEXT.get(reply.host_status, f"host status {reply.host_status}")
            if reply.host_status == DID_NO_CONNECT:
                raise ConnectionLost(self.path, command_name(cdb), text)
            raise TransportError(self.path, command_name(cdb), text)
        residual = max(reply.resid, 0)
        data = data_buffer.raw[: max(length - residual, 0)] if direction == SG_DXFER_FROM_DEV else b""
        return CommandResult(
            status=reply.status,
            sense=sense_buffer.raw[: reply.sb_len_wr],
            data=data,
            residual=residual,
            host_status=reply.host_status,
            duration=reply.duration / 1000 if reply.duration else time.monotonic() - started,
        )

    def close(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError as exc:
                if exc.errno != errno.EBADF:
                    raise
            self._fd = -1
