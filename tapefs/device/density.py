"""LTO density codes as drives report them in the block descriptor and REPORT DENSITY SUPPORT."""

from __future__ import annotations

DENSITY_NAMES = {
    0x00: None,
    0x40: "LTO1",
    0x42: "LTO2",
    0x44: "LTO3",
    0x46: "LTO4",
    0x58: "LTO5",
    0x5A: "LTO6",
    0x5C: "LTO7",
    0x5D: "LTO7M8",
    0x5E: "LTO8",
    0x60: "LTO9",
}

#: From LTO-5 on, a cartridge is initialised with FORMAT MEDIUM rather than ERASE; from LTO-9 on,
#: the format also runs the (long) media optimisation, so it is sent with IMMED and polled.
FIRST_FORMAT_DENSITY = 0x58
IMMEDIATE_FORMAT_DENSITY = 0x60


def density_name(code: int) -> str | None:
    """ "LTO8" for 0x5E, None for "no medium / unknown" (0); unknown codes by number."""
    if code in DENSITY_NAMES:
        return DENSITY_NAMES[code]
    return f"density {code:#04x}"
