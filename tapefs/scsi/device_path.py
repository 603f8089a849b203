"""Opening a device by path: a Unix socket is a vtape device, a character device goes to SG_IO."""

from __future__ import annotations

import logging
import os
import stat

from tapefs.scsi.errors import DeviceNotFound, NotAScsiDevice, TransportError
from tapefs.scsi.sg_io import SgIoTransport
from tapefs.scsi.transport import Transport
from tapefs.scsi.vtape_transport import VtapeTransport

log = logging.getLogger(__name__)


def open_transport(path: str | os.PathLike) -> Transport:
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DeviceNotFound(path, "", "no such device") from None
    except OSError as exc:
        raise TransportError(path, "", exc.strerror or str(exc)) from None
    if stat.S_ISSOCK(st.st_mode):
        return VtapeTransport(path)
    if stat.S_ISCHR(st.st_mode):
        return SgIoTransport(path)
    kind = (
        "a directory" if stat.S_ISDIR(st.st_mode) else "a regular file" if stat.S_ISREG(st.st_mode) else "not a device"
    )
    raise NotAScsiDevice(path, "", f"is {kind}, not a vtape device socket or a SCSI generic device")
