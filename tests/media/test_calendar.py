import calendar
import random
import time

import pytest

from tapefs.media.calendar import CalendarEvent, CalendarEventError


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
