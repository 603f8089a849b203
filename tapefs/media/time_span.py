"""Systemd-style time spans (``7days``, ``2 weeks``, ``1h 30min``), as PBS parses retention periods.

A span is a sequence of ``NUMBER [UNIT]`` terms whose values add up; spaces between terms and
between a number and its unit are optional. A number without a unit counts as seconds. Units
are case sensitive, because ``M`` (month) and ``m`` (minute) differ. Months are 30.44 days and
years 365.25 days, as in systemd.
"""

import logging
import re

from tapefs.errors import InvalidInput

log = logging.getLogger(__name__)

_MINUTE = 60.0
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_UNIT_SECONDS: dict[str, float] = {}
for _names, _seconds in (
    (("nsec", "ns"), 1e-9),
    (("usec", "us", "µs"), 1e-6),
    (("msec", "ms"), 1e-3),
    (("seconds", "second", "sec", "s"), 1.0),
    (("minutes", "minute", "min", "m"), _MINUTE),
    (("hours", "hour", "hr", "h"), _HOUR),
    (("days", "day", "d"), _DAY),
    (("weeks", "week", "w"), 7 * _DAY),
    (("months", "month", "M"), 30.44 * _DAY),
    (("years", "year", "y"), 365.25 * _DAY),
):
    for _name in _names:
        _UNIT_SECONDS[_name] = _seconds

_TERM = re.compile(r"\s*(?P<number>[0-9]+)\s*(?P<unit>[A-Za-zµ]*)")


class TimeSpanError(InvalidInput, ValueError):
    def __init__(self, text: str, reason: str):
        self.text = text
        self.reason = reason
        super().__init__(f"invalid time span {text!r}: {reason}")


def parse_time_span(text: str) -> float:
    """The span in seconds (a float: ``500ms`` is 0.5)."""
    position = 0
    total = 0.0
    terms = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TERM.match(stripped, position)
        if not match:
            raise TimeSpanError(text, f"expected a number at {stripped[position:].strip()!r}")
        unit = match["unit"]
        if unit and unit not in _UNIT_SECONDS:
            raise TimeSpanError(text, f"unknown unit {unit!r} (use s, min, h, d, w, M, y and the like)")
        total += int(match["number"]) * _UNIT_SECONDS.get(unit, 1.0)
        terms += 1
        position = match.end()
    if terms == 0:
        raise TimeSpanError(text, "empty")
    return total
