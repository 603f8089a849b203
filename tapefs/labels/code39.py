"""Code 39 as LTO cartridge labels use it: our own table, ``*`` start and stop characters, no
check character, and bar widths in units of the narrow element.

Each character is nine elements, bar and space alternating and starting with a bar; three of the
nine are wide. A wide element is 2.75 narrow ones (the ratio the LTO label specification names),
so one character is 3 × 2.75 + 6 = 14.25 narrow units, and a narrow space separates characters.
"""

from __future__ import annotations

from collections.abc import Iterator

from .errors import LabelInputError

WIDE_TO_NARROW = 2.75
CHARACTER_UNITS = 3 * WIDE_TO_NARROW + 6
GAP_UNITS = 1.0
START_STOP = "*"

# "w" marks a wide element, "n" a narrow one; positions 0, 2, 4, 6 and 8 are bars.
_PATTERNS = {
    "0": "nnnwwnwnn", "1": "wnnwnnnnw", "2": "nnwwnnnnw", "3": "wnwwnnnnn", "4": "nnnwwnnnw",
    "5": "wnnwwnnnn", "6": "nnwwwnnnn", "7": "nnnwnnwnw", "8": "wnnwnnwnn", "9": "nnwwnnwnn",
    "A": "wnnnnwnnw", "B": "nnwnnwnnw", "C": "wnwnnwnnn", "D": "nnnnwwnnw", "E": "wnnnwwnnn",
    "F": "nnwnwwnnn", "G": "nnnnnwwnw", "H": "wnnnnwwnn", "I": "nnwnnwwnn", "J": "nnnnwwwnn",
    "K": "wnnnnnnww", "L": "nnwnnnnww", "M": "wnwnnnnwn", "N": "nnnnwnnww", "O": "wnnnwnnwn",
    "P": "nnwnwnnwn", "Q": "nnnnnnwww", "R": "wnnnnnwwn", "S": "nnwnnnwwn", "T": "nnnnwnwwn",
    "U": "wwnnnnnnw", "V": "nwwnnnnnw", "W": "wwwnnnnnn", "X": "nwnnwnnnw", "Y": "wwnnwnnnn",
    "Z": "nwwnwnnnn", "-": "nwnnnnwnw", ".": "wwnnnnwnn", " ": "nwwnnnwnn", "*": "nwnnwnwnn",
}  # fmt: skip

#: the characters a label may hold (``*`` only frames the symbol)
CHARACTERS = frozenset(_PATTERNS) - {START_STOP}


def check_text(text: str) -> None:
    bad = sorted({c for c in text if c not in CHARACTERS})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise LabelInputError(f"{text!r}: Code 39 cannot encode {shown} (A-Z, 0-9, '-', '.' and space only)")


def symbol_units(text: str) -> float:
    """The width of the symbol for text, start and stop included, in narrow units."""
    characters = len(text) + 2
    return characters * CHARACTER_UNITS + (characters - 1) * GAP_UNITS


def bars(text: str) -> Iterator[tuple[float, float]]:
    """(offset, width) of each bar of ``*text*``, in narrow units from the symbol's left edge."""
    check_text(text)
    position = 0.0
    for character in START_STOP + text + START_STOP:
        for index, element in enumerate(_PATTERNS[character]):
            width = WIDE_TO_NARROW if element == "w" else 1.0
            if index % 2 == 0:
                yield position, width
            position += width
        position += GAP_UNITS
