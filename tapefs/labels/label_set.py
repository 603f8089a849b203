"""The text of a run of cartridge labels: a volume serial of six characters (prefix and
zero-padded number) followed by the two-character media type, such as ``TAPE01L9``."""

from __future__ import annotations

from .code39 import check_text
from .errors import LabelInputError

SERIAL_LENGTH = 6

#: media-type suffixes and what they mean
MEDIA_TYPES = {
    "L9": "LTO-9",
    "L8": "LTO-8",
    "L7": "LTO-7",
    "L6": "LTO-6",
    "L5": "LTO-5",
    "L4": "LTO-4",
    "L3": "LTO-3",
    "LZ": "LTO-9 WORM",
    "LY": "LTO-8 WORM",
    "LX": "LTO-7 WORM",
    "LW": "LTO-6 WORM",
    "LV": "LTO-5 WORM",
    "LU": "LTO-4 WORM",
    "LT": "LTO-3 WORM",
    "CU": "cleaning cartridge",
}
DEFAULT_MEDIA_TYPE = "L9"


def label_texts(prefix: str, start: int, count: int, media_type: str = DEFAULT_MEDIA_TYPE) -> list[str]:
    """``count`` labels numbered from ``start``; a bad request raises before anything is made."""
    prefix = prefix.upper()
    check_text(prefix)
    if not prefix or not prefix.isascii() or not prefix.isalnum():
        raise LabelInputError(f"prefix {prefix!r}: a cartridge label holds only the letters A-Z and digits 0-9")
    if media_type not in MEDIA_TYPES:
        raise LabelInputError(f"unknown media type {media_type!r} (known: {', '.join(MEDIA_TYPES)})")
    if count <= 0:
        raise LabelInputError(f"count must be at least 1, not {count}")
    if start < 0:
        raise LabelInputError(f"start must be 0 or more, not {start}")
    digits = SERIAL_LENGTH - len(prefix)
    if digits < 0:
        raise LabelInputError(f"prefix {prefix!r} is longer than the {SERIAL_LENGTH} characters of a label")
    if digits == 0:
        if count != 1:
            raise LabelInputError(f"prefix {prefix!r} fills the whole label: it leaves room for one label, not {count}")
        return [prefix + media_type]
    last = start + count - 1
    if last >= 10**digits:
        raise LabelInputError(
            f"prefix {prefix!r} leaves {digits} digit(s), too few for label number {last}"
            f" ({count} labels from {start}): use a shorter prefix"
        )
    return [f"{prefix}{number:0{digits}d}{media_type}" for number in range(start, start + count)]
