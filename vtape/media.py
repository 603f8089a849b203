"""LTO generations, density codes, medium types and barcode rules."""

from __future__ import annotations

import dataclasses
import re

from .errors import ExitCode, VtapeError

MIB = 1024 * 1024
MB = 1000 * 1000


@dataclasses.dataclass(frozen=True)
class Generation:
    number: int
    density: int
    capacity_mb: int  # nominal native capacity, decimal MB as drives report it
    bits_per_mm: int
    tracks: int
    medium_type: int  # IBM mode-header medium type of a data cartridge
    worm_medium_type: int | None
    density_name: str

    @property
    def worm_capable(self) -> bool:
        return self.worm_medium_type is not None

    @property
    def description(self) -> str:
        tb = self.capacity_mb / 1_000_000
        return f"Ultrium {self.number}/{tb:g}T"


GENERATIONS = {
    g.number: g
    for g in (
        Generation(1, 0x40, 100_000, 4880, 384, 0x18, None, "U-18"),
        Generation(2, 0x42, 200_000, 4880, 512, 0x28, None, "U-28"),
        Generation(3, 0x44, 400_000, 9638, 704, 0x38, 0x3C, "U-316"),
        Generation(4, 0x46, 800_000, 12725, 896, 0x48, 0x4C, "U-416"),
        Generation(5, 0x58, 1_500_000, 15142, 1280, 0x58, 0x5C, "U-516"),
        Generation(6, 0x5A, 2_500_000, 15142, 2176, 0x68, 0x6C, "U-616"),
        Generation(7, 0x5C, 6_000_000, 19107, 3584, 0x78, 0x7C, "U-732"),
        Generation(8, 0x5E, 12_000_000, 20669, 6656, 0x88, 0x8C, "U-832"),
        Generation(9, 0x60, 18_000_000, 21456, 8960, 0x98, 0x9C, "U-932"),
    )
}

#: Barcode media-type suffix -> (generation, WORM).
_DATA_SUFFIX = {f"L{n}": n for n in range(1, 10)}
_WORM_SUFFIX = {"LT": 3, "LU": 4, "LV": 5, "LW": 6, "LX": 7, "LY": 8, "LZ": 9}
_BARCODE = re.compile(r"^[A-Z0-9]{6}(L[1-9TUVWXYZ])$")


class BarcodeError(VtapeError, ValueError):
    exit_code = ExitCode.USAGE


@dataclasses.dataclass(frozen=True)
class Label:
    barcode: str
    generation: int
    worm: bool
    cleaning: bool


def parse_barcode(barcode: str) -> Label:
    """Check an LTO barcode (6 characters + media type) and say what it is."""
    m = _BARCODE.match(barcode)
    if not m:
        raise BarcodeError(
            f"barcode {barcode!r} is not 6 characters A-Z/0-9 followed by an LTO "
            "media type such as L8 (data) or LY (WORM)"
        )
    suffix = m.group(1)
    cleaning = barcode.startswith("CLN")
    if suffix in _WORM_SUFFIX:
        if cleaning:
            raise BarcodeError(f"barcode {barcode!r}: a cleaning cartridge cannot be WORM")
        return Label(barcode, _WORM_SUFFIX[suffix], True, False)
    return Label(barcode, _DATA_SUFFIX[suffix], False, cleaning)


def barcode_suffix(generation: int, worm: bool) -> str:
    if worm:
        for suffix, gen in _WORM_SUFFIX.items():
            if gen == generation:
                return suffix
        raise BarcodeError(f"LTO-{generation} has no WORM media")
    return f"L{generation}"


def can_read(drive_generation: int, medium_generation: int) -> bool:
    """LTO-8 and later read only one generation back; earlier drives read two back."""
    back = 1 if drive_generation >= 8 else 2
    return drive_generation - back <= medium_generation <= drive_generation


def can_write(drive_generation: int, medium_generation: int) -> bool:
    return drive_generation - 1 <= medium_generation <= drive_generation


def default_early_warning(capacity: int) -> int:
    """Bytes before the end where early warning starts.

    Generous, because PBS keeps writing its catalog after early warning:
    2 % of the capacity, at least a tenth for small test cartridges, at most 64 MiB
    unless 2 % is more.
    """
    return max(capacity * 2 // 100, min(64 * MIB, capacity // 10))


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.I)
_UNITS = {
    "": 1,
    "B": 1,
    "K": 1000,
    "KB": 1000,
    "KIB": 1024,
    "M": MB,
    "MB": MB,
    "MIB": MIB,
    "G": 10**9,
    "GB": 10**9,
    "GIB": 1024**3,
    "T": 10**12,
    "TB": 10**12,
    "TIB": 1024**4,
}


def parse_size(text: str) -> int:
    """'8GiB', '500MB', '1048576' -> bytes."""
    m = _SIZE.match(text)
    if not m or (m.group(2) or "").upper() not in _UNITS:
        raise ValueError(f"bad size {text!r} (examples: 512MiB, 8GiB, 12TB)")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").upper()])
