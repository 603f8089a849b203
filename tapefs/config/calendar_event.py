"""Calendar events: when a scheduled job runs and when a media pool starts a new media set.

Grammar (PBS "Calendar Events", a dialect of systemd.time(7))::

    [WEEKDAYS] [[YEARS-]MONTHS-DAYS] [[HOURS:]MINUTES[:SECONDS]] [UTC]

Each field is ``*``, ``*/S`` or a comma list of ``N``, ``A..B`` (a range), ``N/S`` (from N every
S) and ``A..B/S``. A missing weekday or date part means every day; a missing time part means
00:00:00; a missing hour means every hour, missing seconds mean :00. Special names: minutely,
hourly, daily, weekly, monthly, yearly, annually, quarterly, semiannually, semi-annually. A day
keyword may be followed by a time (``yearly 04:00``, ``weekly 22:30``): that day at that time.

Events are evaluated in local time unless they end in ``UTC``; :meth:`CalendarEvent.next_after`
returns the first match strictly after the given time, as PBS's ``compute_next_event``. Around
daylight-saving changes a wall-clock time that happens twice fires once, at its first occurrence,
and a time the clock skips fires at the moment the clock jumps over it.
"""

import bisect
import calendar
import datetime
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from tapefs.errors import InvalidInput

log = logging.getLogger(__name__)

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
_LONG_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

SPECIAL_EVENTS = {
    "minutely": "*-*-* *:*:00",
    "hourly": "*-*-* *:00:00",
    "daily": "*-*-* 00:00:00",
    "weekly": "mon *-*-* 00:00:00",
    "monthly": "*-*-01 00:00:00",
    "yearly": "*-01-01 00:00:00",
    "annually": "*-01-01 00:00:00",
    "quarterly": "*-01,04,07,10-01 00:00:00",
    "semiannually": "*-01,07-01 00:00:00",
    "semi-annually": "*-01,07-01 00:00:00",
}
#: keywords naming days, which may take a time of their own ("yearly 04:00")
_DAY_KEYWORDS = frozenset(SPECIAL_EVENTS) - {"minutely", "hourly"}

# The proleptic Gregorian calendar, weekdays included, repeats every 400 years: an event that
# has not matched within that many years of an unrestricted year field never will.
_GREGORIAN_CYCLE_YEARS = 400
# PBS (like systemd) accepts years up to 2199.
_MAX_YEAR = 2199

_NUMBER = re.compile(r"[0-9]+")


class CalendarEventError(InvalidInput, ValueError):
    """A calendar event that does not parse; the message names the event, the bad token and the
    column where it starts (1-based), so a long event's mistake is easy to find."""

    def __init__(self, text: str, reason: str, token: str | None = None, column: int | None = None):
        self.text = text
        self.reason = reason
        self.token = token
        self.column = column
        where = f" (at {token!r}, column {column})" if token is not None and column is not None else ""
        super().__init__(f"invalid calendar event {text!r}: {reason}{where}")


class _Token:
    """One blank-separated word of an event and the column it starts at; parse errors name it."""

    def __init__(self, event: str, text: str, column: int | None):
        self.event, self.text, self.column = event, text, column

    def error(self, reason: str) -> CalendarEventError:
        return CalendarEventError(self.event, reason, self.text, self.column)


def _tokens(text: str) -> list[_Token]:
    return [_Token(text, match.group(), match.start() + 1) for match in re.finditer(r"\S+", text)]


def _parse_number(text: str, field: str, low: int, high: int, token: _Token) -> int:
    if not _NUMBER.fullmatch(text):
        raise token.error(f"{field} value {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise token.error(f"{field} value {value} out of range {low}..{high}")
    return value


def _parse_numeric_field(text: str, field: str, low: int, high: int, token: _Token) -> tuple[int, ...] | None:
    """``*``, ``*/STEP`` or a comma list of ``N``, ``A..B``, ``N/STEP`` and ``A..B/STEP``; None
    means every value."""
    if text.startswith("*"):
        if text == "*":
            return None
        if text.startswith("*/"):
            step = _parse_number(text[2:], field + " repetition", 1, high, token)
            return tuple(range(low, high + 1, step))
        raise token.error(f"{field} list {text!r}: '*' stands alone or as '*/STEP'")
    values: set[int] = set()
    for item in text.split(","):
        item_range, slash, step_text = item.partition("/")
        start_text, dots, end_text = item_range.partition("..")
        start = _parse_number(start_text, field, low, high, token)
        end = _parse_number(end_text, field, low, high, token) if dots else (high if slash else start)
        if end < start:
            raise token.error(f"{field} range {item!r} ends before it starts")
        step = _parse_number(step_text, field + " repetition", 1, high, token) if slash else 1
        values.update(range(start, end + 1, step))
    return tuple(sorted(values))


def _parse_weekday_name(text: str, token: _Token) -> int:
    lowered = text.lower()
    if lowered in WEEKDAY_NAMES:
        return WEEKDAY_NAMES.index(lowered)
    if lowered in _LONG_WEEKDAY_NAMES:
        return _LONG_WEEKDAY_NAMES.index(lowered)
    raise token.error(f"unknown weekday {text!r} (use mon, tue, wed, thu, fri, sat, sun)")


def _parse_weekdays(token: _Token) -> frozenset[int]:
    values: set[int] = set()
    for item in token.text.split(","):
        if ".." in item:
            start_text, end_text = item.split("..", 1)
            start = _parse_weekday_name(start_text, token)
            end = _parse_weekday_name(end_text, token)
            # "sat..mon" wraps over the end of the week, as in systemd.
            day = start
            values.add(day)
            while day != end:
                day = (day + 1) % 7
                values.add(day)
        else:
            values.add(_parse_weekday_name(item, token))
    return frozenset(values)


def _expand_keyword(tokens: list[_Token]) -> list[_Token]:
    """``daily`` -> its full form; ``yearly 04:00`` -> the keyword's days at that time."""
    keyword = tokens[0].text.lower()
    if keyword not in SPECIAL_EVENTS:
        return tokens
    expansion = [_Token(tokens[0].event, part, tokens[0].column) for part in SPECIAL_EVENTS[keyword].split()]
    if len(tokens) == 1:
        return expansion
    if keyword not in _DAY_KEYWORDS:
        raise tokens[1].error(f"{keyword!r} sets its own time; only a day keyword (daily, weekly, ...) takes a time")
    if len(tokens) > 2:
        raise tokens[2].error(f"unexpected {tokens[2].text!r} after {keyword!r} and its time")
    if "-" in tokens[1].text and ":" not in tokens[1].text:
        raise tokens[1].error(f"{keyword!r} takes a time, not a date")
    return expansion[:-1] + [tokens[1]]


@dataclass(frozen=True)
class CalendarEvent:
    text: str
    weekdays: frozenset[int] | None  # None: every value
    years: tuple[int, ...] | None
    months: tuple[int, ...]
    days: tuple[int, ...]
    hours: tuple[int, ...]
    minutes: tuple[int, ...]
    seconds: tuple[int, ...]
    utc: bool

    @classmethod
    def parse(cls, text: str) -> "CalendarEvent":
        tokens = _tokens(text)
        if not tokens:
            raise CalendarEventError(text, "empty")
        utc = False
        if tokens[-1].text == "UTC":
            utc = True
            tokens = tokens[:-1]
        if not tokens:
            raise CalendarEventError(text, "needs at least a weekday, a date or a time")
        tokens = _expand_keyword(tokens)

        weekdays = None
        if tokens[0].text[:1].isalpha():
            weekdays = _parse_weekdays(tokens.pop(0))

        date_token = time_token = None
        for token in tokens:
            if time_token is not None:
                raise token.error(f"unexpected {token.text!r} after the time {time_token.text!r}")
            if "-" in token.text and ":" not in token.text:
                if date_token is not None:
                    raise token.error(f"more than one date part ({date_token.text!r}, {token.text!r})")
                date_token = token
            else:
                # As in PBS, a lone number list is a minute spec: "30" is every hour at :30.
                time_token = token

        years = None
        months = days = None
        if date_token is not None:
            parts = date_token.text.split("-")
            if len(parts) == 3:
                years = _parse_numeric_field(parts.pop(0), "year", 0, _MAX_YEAR, date_token)
            if len(parts) != 2:
                raise date_token.error(f"date {date_token.text!r} is not [YEAR-]MONTH-DAY")
            months = _parse_numeric_field(parts[0], "month", 1, 12, date_token)
            days = _parse_numeric_field(parts[1], "day", 1, 31, date_token)

        hours: tuple[int, ...] | None = (0,)
        minutes: tuple[int, ...] | None = (0,)
        seconds: tuple[int, ...] | None = (0,)
        if time_token is not None:
            parts = time_token.text.split(":")
            if len(parts) > 3:
                raise time_token.error(f"time {time_token.text!r} is not [HOUR:]MINUTE[:SECOND]")
            if len(parts) == 1:
                hours = None
                minutes = _parse_numeric_field(parts[0], "minute", 0, 59, time_token)
            else:
                hours = _parse_numeric_field(parts[0], "hour", 0, 23, time_token)
                minutes = _parse_numeric_field(parts[1], "minute", 0, 59, time_token)
            if len(parts) == 3:
                seconds = _parse_numeric_field(parts[2], "second", 0, 59, time_token)
        return cls(
            text,
            weekdays,
            years,
            months or tuple(range(1, 13)),
            days or tuple(range(1, 32)),
            hours or tuple(range(24)),
            minutes or tuple(range(60)),
            seconds or tuple(range(60)),
            utc,
        )

    def __str__(self) -> str:
        return self.text

    def normalized(self) -> str:
        """The event spelled out in full, as ``systemd-analyze calendar`` shows it."""
        weekdays = ""
        if self.weekdays is not None:
            weekdays = _runs_text(tuple(sorted(self.weekdays)), lambda day: WEEKDAY_NAMES[day]) + " "
        years = "*" if self.years is None else _list_text(self.years, 0, _MAX_YEAR, 4)
        date = f"{years}-{_list_text(self.months, 1, 12)}-{_list_text(self.days, 1, 31)}"
        clock = ":".join(_list_text(values, 0, high) for values, high in ((self.hours, 23), (self.minutes, 59)))
        clock += ":" + _list_text(self.seconds, 0, 59)
        return f"{weekdays}{date} {clock}" + (" UTC" if self.utc else "")

    def next_after(self, after: int) -> int | None:
        """The first event time (epoch seconds) strictly after ``after``, or None if there is none."""
        start = int(after) + 1
        moment = time.gmtime(start) if self.utc else time.localtime(start)
        year, month, day = moment.tm_year, moment.tm_mon, moment.tm_mday
        earliest = moment.tm_hour * 3600 + moment.tm_min * 60 + moment.tm_sec
        if self.years is None:
            last_year = min(_MAX_YEAR, year + _GREGORIAN_CYCLE_YEARS)
        else:
            last_year = self.years[-1]
        while year <= last_year:
            if self.years is not None and year not in self.years:
                index = bisect.bisect_left(self.years, year)
                if index == len(self.years):
                    return None
                year, month, day, earliest = self.years[index], 1, 1, 0
                continue
            if month not in self.months:
                index = bisect.bisect_left(self.months, month)
                if index == len(self.months):
                    year, month, day, earliest = year + 1, self.months[0], 1, 0
                    continue
                month, day, earliest = self.months[index], 1, 0
            days_in_month = calendar.monthrange(year, month)[1]
            if day not in self.days:
                index = bisect.bisect_left(self.days, day)
                if index == len(self.days) or self.days[index] > days_in_month:
                    year, month, day, earliest = _next_month(year, month)
                    continue
                day, earliest = self.days[index], 0
            if day > days_in_month:
                year, month, day, earliest = _next_month(year, month)
                continue
            if self.weekdays is None or datetime.date(year, month, day).weekday() in self.weekdays:
                clock = self._first_time_at_least(earliest)
                if clock is not None:
                    candidate = self._to_epoch(year, month, day, clock)
                    if candidate > after:
                        return candidate
                    # The first occurrence of a repeated local hour: skip what already passed.
                    earliest = clock + max(1, after - candidate + 1)
                    if earliest < 86400:
                        continue
            day, earliest = day + 1, 0
            if day > days_in_month:
                year, month, day, earliest = _next_month(year, month)
        return None

    def _first_time_at_least(self, earliest: int) -> int | None:
        """The first allowed second of the day at or after ``earliest`` (seconds since midnight)."""
        hours, minutes, seconds = self.hours, self.minutes, self.seconds
        hour, rest = divmod(earliest, 3600)
        minute, second = divmod(rest, 60)
        index = bisect.bisect_left(hours, hour)
        if index < len(hours) and hours[index] == hour:
            minute_index = bisect.bisect_left(minutes, minute)
            if minute_index < len(minutes) and minutes[minute_index] == minute:
                second_index = bisect.bisect_left(seconds, second)
                if second_index < len(seconds):
                    return hour * 3600 + minute * 60 + seconds[second_index]
                minute_index += 1
            if minute_index < len(minutes):
                return hour * 3600 + minutes[minute_index] * 60 + seconds[0]
            index += 1
        if index < len(hours):
            return hours[index] * 3600 + minutes[0] * 60 + seconds[0]
        return None

    def _to_epoch(self, year: int, month: int, day: int, clock: int) -> int:
        hour, rest = divmod(clock, 3600)
        minute, second = divmod(rest, 60)
        if self.utc:
            return calendar.timegm((year, month, day, hour, minute, second))
        wall = datetime.datetime(year, month, day, hour, minute, second)
        epoch = int(wall.timestamp())  # fold 0: the first of two equal wall-clock times
        if datetime.datetime.fromtimestamp(epoch) == wall:
            return epoch
        return _clock_jump(wall, epoch)


def _clock_jump(wall: datetime.datetime, epoch: int) -> int:
    """The moment the clock jumped over ``wall`` (a local time skipped by a DST change).

    ``epoch`` reads ``wall`` with the offset from before the change, so it lies after the jump;
    the local clock runs forward everywhere near it, so a binary search finds the first second
    whose local time is past ``wall``."""
    low = epoch - 86400
    high = epoch
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.datetime.fromtimestamp(middle) > wall:
            high = middle
        else:
            low = middle
    return high


def _next_month(year: int, month: int) -> tuple[int, int, int, int]:
    if month == 12:
        return year + 1, 1, 1, 0
    return year, month + 1, 1, 0


def _list_text(values: tuple[int, ...], low: int, high: int, width: int = 2) -> str:
    """``*`` for every value, else a comma list with runs of three or more as ``A..B``."""
    if values == tuple(range(low, high + 1)):
        return "*"
    return _runs_text(values, lambda value: f"{value:0{width}d}")


def _runs_text(values: tuple[int, ...], name: Callable[[int], str]) -> str:
    parts: list[str] = []
    run_start = previous = values[0]
    for value in (*values[1:], None):
        if value is not None and value == previous + 1:
            previous = value
            continue
        if previous - run_start >= 2:
            parts.append(f"{name(run_start)}..{name(previous)}")
        else:
            parts.extend(name(v) for v in range(run_start, previous + 1))
        if value is not None:
            run_start = previous = value
    return ",".join(parts)
