import calendar
import random
import time

import pytest

from tapefs.config.calendar_event import CalendarEvent, CalendarEventError


def utc(year, month, day, hour=0, minute=0, second=0) -> int:
    return calendar.timegm((year, month, day, hour, minute, second))


# 2026-11-22 is a Sunday.
SUNDAY_NOON = utc(2026, 11, 22, 12, 0, 0)


@pytest.mark.parametrize("event, expected", [
    ("daily UTC", utc(2026, 11, 23)),
    ("weekly UTC", utc(2026, 11, 23)),
    ("monthly UTC", utc(2026, 12, 1)),
    ("yearly UTC", utc(2027, 1, 1)),
    ("annually UTC", utc(2027, 1, 1)),
    ("quarterly UTC", utc(2027, 1, 1)),
    ("semiannually UTC", utc(2027, 1, 1)),
    ("semi-annually UTC", utc(2027, 1, 1)),
    ("hourly UTC", utc(2026, 11, 22, 13)),
    ("minutely UTC", utc(2026, 11, 22, 12, 1)),
    ("Mon *-*-* 00:00 UTC", utc(2026, 11, 23)),
    ("mon UTC", utc(2026, 11, 23)),
    ("sat,sun 18:30 UTC", utc(2026, 11, 22, 18, 30)),
    ("mon..fri 08:00 UTC", utc(2026, 11, 23, 8)),
    ("fri..mon 08:00 UTC", utc(2026, 11, 23, 8)),
    ("*:0/15 UTC", utc(2026, 11, 22, 12, 15)),
    ("*:20/15 UTC", utc(2026, 11, 22, 12, 20)),
    ("12:00 UTC", utc(2026, 11, 23, 12)),  # strictly after: noon today is not next
    ("12:00:01 UTC", utc(2026, 11, 22, 12, 0, 1)),
    ("*-12-24 UTC", utc(2026, 12, 24)),
    ("2027-02-03 04:05:06 UTC", utc(2027, 2, 3, 4, 5, 6)),
    ("*-*-1..3 02:00 UTC", utc(2026, 12, 1, 2)),
    ("*-2-29 UTC", utc(2028, 2, 29)),
    ("mon *-*-13 UTC", utc(2027, 9, 13)),
    ("*-*-* 10,14:00 UTC", utc(2026, 11, 22, 14)),
    ("2020-01-01 UTC", None),
    ("2100-01-01 UTC", utc(2100, 1, 1)),
    ("2026..2030-11-22 12:00:00 UTC", utc(2027, 11, 22, 12)),
    ("*-*-* *:*:*/20 UTC", utc(2026, 11, 22, 12, 0, 20)),
    ("*/20 UTC", utc(2026, 11, 22, 12, 20)),
    ("45 UTC", utc(2026, 11, 22, 12, 45)),
    ("mon 30 UTC", utc(2026, 11, 23, 0, 30)),
    ("*:10..50/20 UTC", utc(2026, 11, 22, 12, 10)),
    ("*-*-2..20/9 UTC", utc(2026, 12, 2)),
    ("8..18/5:00 UTC", utc(2026, 11, 22, 13)),
])
def test_next_event_after(event, expected):
    assert CalendarEvent.parse(event).next_after(SUNDAY_NOON) == expected


def test_next_event_is_strictly_after_even_on_a_match():
    event = CalendarEvent.parse("daily UTC")
    midnight = utc(2026, 11, 23)
    assert event.next_after(midnight - 1) == midnight
    assert event.next_after(midnight) == utc(2026, 11, 24)


def test_events_without_utc_use_local_time(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Vienna")
    time.tzset()
    try:
        # Vienna is UTC+1 in November: local midnight is 23:00 UTC the day before.
        assert CalendarEvent.parse("daily").next_after(SUNDAY_NOON) == utc(2026, 11, 22, 23)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_never_matching_date_gives_none():
    assert CalendarEvent.parse("*-02-30 UTC").next_after(SUNDAY_NOON) is None


@pytest.mark.parametrize("event, message", [
    ("", "empty"),
    ("dialy", "unknown weekday 'dialy'"),
    ("*:60", "minute value 60 out of range 0..59"),
    ("25:00", "hour value 25 out of range 0..23"),
    ("*-13-01", "month value 13 out of range 1..12"),
    ("*-*-0", "day value 0 out of range 1..31"),
    ("12 13", "unexpected '13' after the time '12'"),
    ("*-*-1 *-*-2", "more than one date part"),
    ("1:2:3:4", "is not [HOUR:]MINUTE[:SECOND]"),
    ("*,5:00", "'*' stands alone or as '*/STEP'"),
    ("*-*-* UTC UTC", "minute value 'UTC' is not a number"),
    ("2200-01-01", "year value 2200 out of range 0..2199"),
    ("1-2-3-4", "is not [YEAR-]MONTH-DAY"),
    ("*:x", "minute value 'x' is not a number"),
    ("*-*-5..2", "day range '5..2' ends before it starts"),
    ("*:0/0", "out of range"),
    ("10:00 11:00", "unexpected '11:00' after the time '10:00'"),
    ("UTC", "needs at least a weekday, a date or a time"),
])
def test_bad_events_name_the_problem(event, message):
    with pytest.raises(CalendarEventError) as info:
        CalendarEvent.parse(event)
    assert message in str(info.value)
    assert repr(event) in str(info.value)


def _random_list(rng, low, high, max_items=3):
    values = sorted(rng.sample(range(low, high + 1), rng.randint(1, max_items)))
    return ",".join(str(v) for v in values)


def _random_event(rng) -> str:
    parts = []
    if rng.random() < 0.4:
        parts.append(",".join(rng.sample(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], rng.randint(1, 3))))
    if rng.random() < 0.5:
        parts.append("*-*-" + _random_list(rng, 1, 31))
    hour = rng.choice(["*", _random_list(rng, 0, 23), f"{rng.randint(0, 5)}/{rng.randint(1, 6)}"])
    minute = rng.choice([_random_list(rng, 0, 59), f"{rng.randint(0, 10)}/{rng.randint(5, 30)}", "*"])
    parts.append(f"{hour}:{minute}")
    return " ".join(parts) + " UTC"


def _brute_force_next(event_text: str, after: int, window: int):
    """The first whole minute after ``after`` that matches, by checking every minute."""
    spec = event_text.split()
    weekdays = spec[0].split(",") if spec[0][0].isalpha() and spec[0] != "UTC" else None
    days = next((p.split("-")[2] for p in spec if p.startswith("*-*-")), None)
    hour_text, minute_text = next(p for p in spec if ":" in p).split(":")

    def allowed(text, value):
        if text == "*":
            return True
        if "/" in text:
            start, step = map(int, text.split("/"))
            return value >= start and (value - start) % step == 0
        return value in {int(v) for v in text.split(",")}

    moment = after - after % 60 + 60
    while moment <= after + window:
        tm = time.gmtime(moment)
        if ((weekdays is None or ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][tm.tm_wday] in weekdays)
                and (days is None or tm.tm_mday in {int(v) for v in days.split(",")})
                and allowed(hour_text, tm.tm_hour) and allowed(minute_text, tm.tm_min)):
            return moment
        moment += 60
    return None


def test_next_event_agrees_with_a_minute_by_minute_search():
    rng = random.Random(20261122)
    window = 35 * 86400
    for _ in range(60):
        event_text = _random_event(rng)
        after = SUNDAY_NOON + rng.randint(0, 400 * 86400)
        expected = _brute_force_next(event_text, after, window)
        found = CalendarEvent.parse(event_text).next_after(after)
        if expected is None:
            assert found is None or found > after + window, event_text
        else:
            assert found == expected, (event_text, after)


@pytest.mark.parametrize("event, expected", [
    ("yearly 04:00 UTC", utc(2027, 1, 1, 4)),
    ("annually 04:00:30 UTC", utc(2027, 1, 1, 4, 0, 30)),
    ("weekly 22:30 UTC", utc(2026, 11, 23, 22, 30)),
    ("daily 11:00 UTC", utc(2026, 11, 23, 11)),
    ("daily 13:00 UTC", utc(2026, 11, 22, 13)),
    ("monthly 8..9:00 UTC", utc(2026, 12, 1, 8)),
    ("Quarterly 1:15 UTC", utc(2027, 1, 1, 1, 15)),
])
def test_a_day_keyword_takes_a_time(event, expected):
    assert CalendarEvent.parse(event).next_after(SUNDAY_NOON) == expected


@pytest.mark.parametrize("event, message, token, column", [
    ("mon..fri 25:00", "hour value 25 out of range 0..23", "25:00", 10),
    ("sat *-13-01 04:00", "month value 13", "*-13-01", 5),
    ("mon,tsu 04:00", "unknown weekday 'tsu'", "mon,tsu", 1),
    ("yearly 04:00 05:00", "unexpected '05:00'", "05:00", 14),
    ("hourly 04:00", "'hourly' sets its own time", "04:00", 8),
    ("yearly *-01-01", "takes a time, not a date", "*-01-01", 8),
    ("  daily 4:61", "minute value 61", "4:61", 9),
])
def test_errors_point_at_the_offending_token(event, message, token, column):
    with pytest.raises(CalendarEventError) as info:
        CalendarEvent.parse(event)
    assert message in str(info.value)
    assert (info.value.token, info.value.column) == (token, column)
    assert f"(at {token!r}, column {column})" in str(info.value)


@pytest.mark.parametrize("event, normalized", [
    ("daily", "*-*-* 00:00:00"),
    ("yearly 04:00", "*-01-01 04:00:00"),
    ("mon..fri *:0/15 UTC", "mon..fri *-*-* *:00,15,30,45:00 UTC"),
    ("sat,sun 2027-1..3-1,3 8,9:30", "sat,sun 2027-01..03-01,03 08,09:30:00"),
])
def test_normalized_form(event, normalized):
    assert CalendarEvent.parse(event).normalized() == normalized
    assert CalendarEvent.parse(normalized).normalized() == normalized


STEP = 300  # every event of the simulated year fires on a multiple of five minutes


def _local_walls(start: int, end: int) -> list[tuple[int, time.struct_time, list[time.struct_time]]]:
    """(moment, local time, the local times the clock skipped just before) every STEP seconds."""
    walls = []
    previous = time.localtime(start - STEP)
    for moment in range(start, end, STEP):
        wall = time.localtime(moment)
        skipped = []
        gap = calendar.timegm(wall) - calendar.timegm(previous) - STEP
        for offset in range(STEP, gap + STEP, STEP) if gap > 0 else ():
            skipped.append(time.gmtime(calendar.timegm(previous) + offset))
        walls.append((moment, wall, skipped))
        previous = wall
    return walls


def _expected_local_fires(event: CalendarEvent, walls) -> list[int]:
    """Every firing, by the documented DST rules: a wall time fires at its first occurrence;
    wall times the clock skips fire when it jumps."""
    def matches(wall: time.struct_time) -> bool:
        return ((event.weekdays is None or wall.tm_wday in event.weekdays) and wall.tm_mon in event.months
                and wall.tm_mday in event.days and wall.tm_hour in event.hours and wall.tm_min in event.minutes)

    fires, seen = [], set()
    for moment, wall, skipped in walls:
        key = wall[:5]
        if (matches(wall) and key not in seen) or any(matches(w) for w in skipped):
            fires.append(moment)
        seen.add(key)
    return fires


def test_a_simulated_year_of_local_events_across_dst_changes(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        start, end = utc(2026, 1, 1), utc(2027, 1, 2)
        walls = _local_walls(start, end)
        assert sum(bool(skipped) for _, _, skipped in walls) == 1  # the spring change
        for event_text in ("daily 02:30", "*:30", "sun *:0/20", "yearly 04:00", "*-*-1..7 02:15", "2:0/5"):
            event = CalendarEvent.parse(event_text)
            expected = _expected_local_fires(event, walls)
            found, moment = [], start - 1
            while (moment := event.next_after(moment)) is not None and moment < end:
                found.append(moment)
            assert found == expected, event_text
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_dst_change_days_in_berlin(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        event = CalendarEvent.parse("daily 02:30")
        # 2026-03-29: clocks go from 02:00 CET to 03:00 CEST; 02:30 never happens: it fires at the jump.
        assert event.next_after(utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1)
        # 2026-10-25: 02:30 CEST, then 02:30 CET; it fires once, at the first.
        assert event.next_after(utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 0, 30)
        assert event.next_after(utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 26, 1, 30)
        assert CalendarEvent.parse("*:30").next_after(utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 2, 30)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
