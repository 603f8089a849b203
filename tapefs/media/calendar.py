"""Systemd-style calendar events, as PBS uses them for media-set allocation and job schedules.

Grammar (PBS "Calendar Events", a dialect of systemd.time(7))::

    [WEEKDAYS] [[YEARS-]MONTHS-DAYS] [[HOURS:]MINUTES[:SECONDS]] [UTC]

Each field is ``*``, ``*/S`` or a comma list of ``N``, ``A..B`` (a range), ``N/S`` (from N every
S) and ``A..B/S``. A missing weekday or date part means every day; a missing time part means
00:00:00; a missing hour means every hour, missing seconds mean :00. Special names: minutely,
hourly, daily, weekly, monthly, yearly, annually, quarterly, semiannually, semi-annually.
Events are evaluated in local time unless they end in ``UTC``; :meth:`CalendarEvent.next_after`
returns the first match strictly after the given time, as PBS's ``compute_next_event``.
"""

import datetime
import logging
import re
import time
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

# The proleptic Gregorian calendar, weekdays included, repeats every 400 years: an event that
# has not matched within that many years of an unrestricted year field never will.
_GREGORIAN_CYCLE_YEARS = 400
# PBS (like systemd) accepts years up to 2199.
_MAX_YEAR = 2199

_NUMBER = re.compile(r"[0-9]+")


class CalendarEventError(InvalidInput, ValueError):
    """A calendar event that does not parse; the message names the event and the bad part."""

    def __init__(self, text: str, reason: str):
        self.text = text
        self.reason = reason
        super().__init__(f"invalid calendar event {text!r}: {reason}")


@dataclass(frozen=True)
class _Field:
    """The allowed values of one field (weekday, year, month, day, hour, minute or second)."""

    name: str
    values: frozenset[int] | None  # None: every value

    def matches(self, value: int) -> bool:
        return self.values is None or value in self.values

    def first_at_least(self, value: int, maximum: int) -> int | None:
        if self.values is None:
            return value if value <= maximum else None
        candidates = [v for v in self.values if value <= v <= maximum]
        return min(candidates) if candidates else None


def _parse_number(text: str, field: str, low: int, high: int, event: str) -> int:
    if not _NUMBER.fullmatch(text):
        raise CalendarEventError(event, f"{field} value {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise CalendarEventError(event, f"{field} value {value} out of range {low}..{high}")
    return value


def _parse_numeric_field(text: str, field: str, low: int, high: int, event: str) -> _Field:
    """``*``, ``*/STEP`` or a comma list of ``N``, ``A..B``, ``N/STEP`` and ``A..B/STEP``."""
    if text.startswith("*"):
        if text == "*":
            return _Field(field, None)
        if text.startswith("*/"):
            step = _parse_number(text[2:], field + " repetition", 1, high, event)
            return _Field(field, frozenset(range(low, high + 1, step)))
        raise CalendarEventError(event, f"{field} list {text!r}: '*' stands alone or as '*/STEP'")
    values: set[int] = set()
    for item in text.split(","):
        item_range, slash, step_text = item.partition("/")
        start_text, dots, end_text = item_range.partition("..")
        start = _parse_number(start_text, field, low, high, event)
        end = _parse_number(end_text, field, low, high, event) if dots else (high if slash else start)
        if end < start:
            raise CalendarEventError(event, f"{field} range {item!r} ends before it starts")
        step = _parse_number(step_text, field + " repetition", 1, high, event) if slash else 1
        values.update(range(start, end + 1, step))
    return _Field(field, frozenset(values))


def _parse_weekday_name(text: str, event: str) -> int:
    lowered = text.lower()
    if lowered in WEEKDAY_NAMES:
        return WEEKDAY_NAMES.index(lowered)
    if lowered in _LONG_WEEKDAY_NAMES:
        return _LONG_WEEKDAY_NAMES.index(lowered)
    raise CalendarEventError(event, f"unknown weekday {text!r} (use mon, tue, wed, thu, fri, sat, sun)")


def _parse_weekdays(text: str, event: str) -> _Field:
    values: set[int] = set()
    for item in text.split(","):
        if ".." in item:
            start_text, end_text = item.split("..", 1)
            start = _parse_weekday_name(start_text, event)
            end = _parse_weekday_name(end_text, event)
            # "sat..mon" wraps over the end of the week, as in systemd.
            day = start
            values.add(day)
            while day != end:
                day = (day + 1) % 7
                values.add(day)
        else:
            values.add(_parse_weekday_name(item, event))
    return _Field("weekday", frozenset(values))


def _looks_like_weekdays(token: str) -> bool:
    return token[:1].isalpha()


@dataclass(frozen=True)
class CalendarEvent:
    text: str
    weekdays: _Field
    years: _Field
    months: _Field
    days: _Field
    hours: _Field
    minutes: _Field
    seconds: _Field
    utc: bool

    @classmethod
    def parse(cls, text: str) -> "CalendarEvent":
        event_text = text
        spec = text.strip()
        if not spec:
            raise CalendarEventError(text, "empty")
        tokens = spec.split()
        utc = False
        if tokens[-1] == "UTC":
            utc = True
            tokens = tokens[:-1]
        if len(tokens) == 1 and tokens[0].lower() in SPECIAL_EVENTS:
            tokens = SPECIAL_EVENTS[tokens[0].lower()].split()
        if not tokens:
            raise CalendarEventError(event_text, "needs at least a weekday, a date or a time")

        weekdays = _Field("weekday", None)
        if _looks_like_weekdays(tokens[0]):
            weekdays = _parse_weekdays(tokens.pop(0), event_text)

        date_text = time_text = None
        for token in tokens:
            if time_text is not None:
                raise CalendarEventError(event_text, f"unexpected {token!r} after the time {time_text!r}")
            if "-" in token and ":" not in token:
                if date_text is not None:
                    raise CalendarEventError(event_text, f"more than one date part ({date_text!r}, {token!r})")
                date_text = token
            else:
                # As in PBS, a lone number list is a minute spec: "30" is every hour at :30.
                time_text = token

        years = _Field("year", None)
        months = _Field("month", None)
        days = _Field("day", None)
        if date_text is not None:
            parts = date_text.split("-")
            if len(parts) == 3:
                years = _parse_numeric_field(parts.pop(0), "year", 0, _MAX_YEAR, event_text)
            if len(parts) != 2:
                raise CalendarEventError(event_text, f"date {date_text!r} is not [YEAR-]MONTH-DAY")
            months = _parse_numeric_field(parts[0], "month", 1, 12, event_text)
            days = _parse_numeric_field(parts[1], "day", 1, 31, event_text)

        hours = _Field("hour", frozenset({0}))
        minutes = _Field("minute", frozenset({0}))
        seconds = _Field("second", frozenset({0}))
        if time_text is not None:
            parts = time_text.split(":")
            if len(parts) > 3:
                raise CalendarEventError(event_text, f"time {time_text!r} is not [HOUR:]MINUTE[:SECOND]")
            if len(parts) == 1:
                hours = _Field("hour", None)
                minutes = _parse_numeric_field(parts[0], "minute", 0, 59, event_text)
            else:
                hours = _parse_numeric_field(parts[0], "hour", 0, 23, event_text)
                minutes = _parse_numeric_field(parts[1], "minute", 0, 59, event_text)
            if len(parts) == 3:
                seconds = _parse_numeric_field(parts[2], "second", 0, 59, event_text)
        return cls(event_text, weekdays, years, months, days, hours, minutes, seconds, utc)

    def __str__(self) -> str:
        return self.text

    def next_after(self, after: int) -> int | None:
        """The first event time (epoch seconds) strictly after ``after``, or None if there is none."""
        start = after + 1
        if self.utc:
            moment = datetime.datetime.fromtimestamp(start, datetime.UTC).replace(tzinfo=None)
        else:
            moment = datetime.datetime.fromtimestamp(start)
        day = moment.date()
        earliest = (moment.hour, moment.minute, moment.second)
        if self.years.values is None:
            last_year = min(_MAX_YEAR, day.year + _GREGORIAN_CYCLE_YEARS)
        else:
            last_year = max(self.years.values)
        while day.year <= last_year:
            if not self.years.matches(day.year):
                day = datetime.date(day.year + 1, 1, 1) if day.year < _MAX_YEAR else None
                earliest = (0, 0, 0)
                if day is None:
                    return None
                continue
            if not self.months.matches(day.month):
                day = _first_of_next_month(day)
                earliest = (0, 0, 0)
                if day is None:
                    return None
                continue
            if self.days.matches(day.day) and self.weekdays.matches(day.weekday()):
                clock = self._first_time_at_least(earliest)
                if clock is not None:
                    candidate = self._to_epoch(day, clock)
                    if candidate is not None and candidate > after:
                        return candidate
                    # A local time skipped by a DST change: look at the next second of the day.
                    if candidate is not None:
                        earliest = _next_second(clock)
                        if earliest is not None:
                            continue
            if day >= datetime.date(_MAX_YEAR, 12, 31):
                return None
            day += datetime.timedelta(days=1)
            earliest = (0, 0, 0)
        return None

    def _first_time_at_least(self, earliest: tuple[int, int, int]) -> tuple[int, int, int] | None:
        hour0, minute0, second0 = earliest
        hour = self.hours.first_at_least(hour0, 23)
        while hour is not None:
            minute_from = minute0 if hour == hour0 else 0
            minute = self.minutes.first_at_least(minute_from, 59)
            while minute is not None:
                second_from = second0 if (hour, minute) == (hour0, minute0) else 0
                second = self.seconds.first_at_least(second_from, 59)
                if second is not None:
                    return hour, minute, second
                minute = self.minutes.first_at_least(minute + 1, 59)
            hour = self.hours.first_at_least(hour + 1, 23)
        return None

    def _to_epoch(self, day: datetime.date, clock: tuple[int, int, int]) -> int | None:
        naive = datetime.datetime(day.year, day.month, day.day, *clock)
        if self.utc:
            return int(naive.replace(tzinfo=datetime.UTC).timestamp())
        try:
            return int(time.mktime(naive.timetuple()))
        except (OverflowError, ValueError):
            return None


def _first_of_next_month(day: datetime.date) -> datetime.date | None:
    if day.month == 12:
        return datetime.date(day.year + 1, 1, 1) if day.year < _MAX_YEAR else None
    return datetime.date(day.year, day.month + 1, 1)


def _next_second(clock: tuple[int, int, int]) -> tuple[int, int, int] | None:
    total = clock[0] * 3600 + clock[1] * 60 + clock[2] + 1
    if total >= 86400:
        return None
    return total // 3600, total // 60 % 60, total % 60
