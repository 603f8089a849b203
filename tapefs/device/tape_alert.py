"""TapeAlert flags (SSC-4 Annex A): the response page 12h bitmap and the flag names."""

from __future__ import annotations

from tapefs.device.log_pages import TAPE_ALERT_RESPONSE_PAGE, parse_log_page

#: Flag number (1-based, as SSC numbers them) -> short name.
TAPE_ALERT_NAMES = {
    0x01: "read warning",
    0x02: "write warning",
    0x03: "hard error",
    0x04: "media",
    0x05: "read failure",
    0x06: "write failure",
    0x07: "media life",
    0x08: "not data grade",
    0x09: "write protect",
    0x0A: "no removal",
    0x0B: "cleaning media",
    0x0C: "unsupported format",
    0x0D: "recoverable mechanical cartridge failure",
    0x0E: "unrecoverable mechanical cartridge failure",
    0x0F: "memory chip in cartridge failure",
    0x10: "forced eject",
    0x11: "read only format",
    0x12: "tape directory corrupted on load",
    0x13: "nearing media life",
    0x14: "clean now",
    0x15: "clean periodic",
    0x16: "expired cleaning media",
    0x17: "invalid cleaning tape",
    0x18: "retension requested",
    0x19: "dual-port interface error",
    0x1A: "cooling fan failure",
    0x1B: "power supply failure",
    0x1C: "power consumption",
    0x1D: "drive maintenance",
    0x1E: "hardware A",
    0x1F: "hardware B",
    0x20: "interface",
    0x21: "eject media",
    0x22: "microcode update fail",
    0x23: "drive humidity",
    0x24: "drive temperature",
    0x25: "drive voltage",
    0x26: "predictive failure",
    0x27: "diagnostics required",
    0x32: "lost statistics",
    0x33: "tape directory invalid at unload",
    0x34: "tape system area write failure",
    0x35: "tape system area read failure",
    0x36: "no start of data",
    0x37: "loading or threading failure",
    0x38: "unrecoverable unload failure",
    0x39: "automation interface failure",
    0x3A: "microcode failure",
    0x3B: "WORM medium integrity check failed",
    0x3C: "WORM medium overwrite attempted",
}

FLAG_COUNT = 64
BITMAP_PARAMETER = 0x0000


def flag_name(number: int) -> str:
    return TAPE_ALERT_NAMES.get(number, f"flag {number:#04x} (obsolete or reserved)")


def parse_tape_alert_response(data: bytes) -> list[int]:
    """Set flag numbers, ascending, from LOG SENSE page 12h."""
    for parameter in parse_log_page(data, TAPE_ALERT_RESPONSE_PAGE):
        if parameter.code == BITMAP_PARAMETER:
            if len(parameter.value) != 8:
                raise ValueError(f"TapeAlert bitmap has {len(parameter.value)} bytes, expected 8")
            bits = int.from_bytes(parameter.value, "big")
            # Flag 1 is the most significant bit.
            return [n for n in range(1, FLAG_COUNT + 1) if bits & (1 << (FLAG_COUNT - n))]
    raise ValueError("TapeAlert response page has no flag bitmap parameter")
