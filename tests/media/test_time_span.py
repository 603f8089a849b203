import pytest

from tapefs.media.time_span import TimeSpanError, parse_time_span


@pytest.mark.parametrize("text, seconds", [
    ("12s", 12),
    ("120 seconds", 120),
    ("7days", 7 * 86400),
    ("2 weeks", 14 * 86400),
    ("1h 30min", 5400),
    ("1h30min", 5400),
    ("3d 4h 5m 6s", 3 * 86400 + 4 * 3600 + 5 * 60 + 6),
    ("1M", 30.44 * 86400),
    ("1y", 365.25 * 86400),
    ("2 hours 1 minute", 7260),
    ("500ms", 0.5),
    ("90", 90),
])
def test_parse_time_span(text, seconds):
    assert parse_time_span(text) == pytest.approx(seconds)


def test_month_and_minute_units_are_case_sensitive():
    assert parse_time_span("1M") != parse_time_span("1m")
    assert parse_time_span("1m") == 60


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("  ", "empty"),
    ("7 dayz", "unknown unit 'dayz'"),
    ("weeks", "expected a number"),
    ("-1d", "expected a number"),
    ("1.5h", "expected a number"),
])
def test_bad_time_spans_name_the_problem(text, message):
    with pytest.raises(TimeSpanError) as info:
        parse_time_span(text)
    assert message in str(info.value)
