"""Byte sizes as people type them in options and config: ``512MiB``, ``8GiB``, ``12TB``, ``4096``.

K, M, G and T are powers of 1000, KiB, MiB, GiB and TiB powers of 1024; the trailing B may be left
out and case does not matter. A fraction is allowed (``1.5GiB``) and rounded down to whole bytes.
"""

import re

_SIZE_TEXT = re.compile(r"\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]*)\s*", re.IGNORECASE)
_PREFIX_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}


def _unit_factor(unit: str) -> int | None:
    unit = unit.upper()
    if unit == "B":
        return 1
    binary = unit.endswith(("IB", "I"))
    prefix = unit.removesuffix("B").removesuffix("I")
    if prefix not in _PREFIX_POWERS or (binary and not prefix):
        return None
    return (1024 if binary else 1000) ** _PREFIX_POWERS[prefix]


def parse_size(text: str) -> int:
    """The number of bytes ``text`` names; ValueError (one line, with examples) otherwise."""
    match = _SIZE_TEXT.fullmatch(text)
    factor = _unit_factor(match["unit"]) if match else None
    if match is None or factor is None:
        raise ValueError(f"bad size {text!r} (examples: 512MiB, 8GiB, 12TB)")
    return int(float(match["number"]) * factor)
