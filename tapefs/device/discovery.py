"""Finding drives and changers: Linux SCSI generic nodes from sysfs, and vtape libraries.

Real hardware is read from /sys/class/scsi_generic (peripheral type, vendor, model, the unit serial
VPD page) with the matching /dev/tape/by-id links; nothing is opened, so scanning never disturbs a
drive in use. A vtape library is a directory given by the caller or listed in VTAPE_LIBRARIES
(colon separated); its devices are asked INQUIRY over their sockets.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from tapefs.scsi.channel import Channel
from tapefs.scsi.errors import ScsiError
from tapefs.scsi.inquiry import PERIPHERAL_CHANGER, PERIPHERAL_TAPE, inquiry, unit_serial_number

log = logging.getLogger(__name__)

SYSFS_SCSI_GENERIC = Path("/sys/class/scsi_generic")
TAPE_BY_ID = Path("/dev/tape/by-id")
VTAPE_LIBRARIES_ENV = "VTAPE_LIBRARIES"

KIND_BY_TYPE = {PERIPHERAL_TAPE: "drive", PERIPHERAL_CHANGER: "changer"}


@dataclasses.dataclass(frozen=True)
class FoundDevice:
    kind: str  # "drive" or "changer"
    path: str  # what to pass as --device
    vendor: str
    model: str
    serial: str
    by_id: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "path": self.path,
            "vendor": self.vendor,
            "model": self.model,
            "serial": self.serial,
            "by-id": list(self.by_id),
        }


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _serial_from_vpd(path: Path) -> str:
    try:
        page = path.read_bytes()
    except OSError:
        return ""
    length = int.from_bytes(page[2:4], "big") if len(page) >= 4 else 0
    return page[4 : 4 + length].decode("ascii", "replace").strip(" \0")


def _by_id_links(device_dir: Path, node_name: str) -> tuple[str, ...]:
    """The /dev/tape/by-id links that lead to this SCSI device (its sg, st or nst node)."""
    names = {node_name}
    for class_dir in ("scsi_tape", "scsi_changer"):
        try:
            names.update(os.listdir(device_dir / class_dir))
        except OSError:
            pass
    try:
        links = sorted(TAPE_BY_ID.iterdir())
    except OSError:
        return ()
    return tuple(str(link) for link in links if os.path.basename(os.path.realpath(link)) in names)


def scan_scsi_generic(sysfs: Path = SYSFS_SCSI_GENERIC) -> list[FoundDevice]:
    found = []
    try:
        nodes = sorted(os.listdir(sysfs), key=lambda n: (len(n), n))
    except OSError:
        return []
    for node in nodes:
        device_dir = sysfs / node / "device"
        try:
            kind = KIND_BY_TYPE.get(int(_read(device_dir / "type") or -1))
        except ValueError:
            kind = None
        if kind is None:
            continue
        found.append(
            FoundDevice(
                kind,
                f"/dev/{node}",
                _read(device_dir / "vendor"),
                _read(device_dir / "model"),
                _serial_from_vpd(device_dir / "vpd_pg80"),
                _by_id_links(device_dir, node),
            )
        )
    return found


def vtape_library_dirs(libraries: list[str] | None = None, environ=None) -> list[str]:
    environ = os.environ if environ is None else environ
    dirs = list(libraries or [])
    dirs += [d for d in environ.get(VTAPE_LIBRARIES_ENV, "").split(":") if d]
    return dirs


def scan_vtape_library(libdir: str) -> list[FoundDevice]:
    """The devices of one running vtape library; a library that does not answer is logged and skipped."""
    root = Path(libdir)
    try:
        names = sorted(n for n in os.listdir(root) if n == "changer" or (n.startswith("drive") and n[5:].isdigit()))
    except OSError as exc:
        log.warning("vtape library %s: %s", libdir, exc.strerror)
        return []
    found = []
    for name in sorted(names, key=lambda n: (n != "changer", len(n), n)):
        path = str(root / name)
        try:
            with Channel.open(path) as channel:
                identity = inquiry(channel)
                serial = unit_serial_number(channel)
        except ScsiError as exc:
            log.warning("vtape device %s does not answer: %s", path, exc)
            continue
        kind = KIND_BY_TYPE.get(identity.device_type)
        if kind is not None:
            found.append(FoundDevice(kind, path, identity.vendor, identity.product, serial))
    return found


def scan(libraries: list[str] | None = None, kind: str | None = None) -> list[FoundDevice]:
    """Every drive and changer (or only those of one kind): hardware first, then vtape libraries."""
    devices = scan_scsi_generic()
    for libdir in vtape_library_dirs(libraries):
        devices += scan_vtape_library(libdir)
    return [d for d in devices if kind is None or d.kind == kind]
