"""``tapefs calendar-event`` as a user runs it."""

import json

from tests.helpers.commands import isolated_env, one_error_line, tapefs

# 2026-11-22 12:00:00 UTC, a Sunday
NOON = 1_795_348_800


def test_lists_the_next_runs_in_local_time(tmp_path):
    env = isolated_env(tmp_path, TZ="UTC")
    out = tapefs("calendar-event", "yearly 04:00", "--count", "3", "--from", NOON, env=env).stdout
    assert "Normalized form:  *-01-01 04:00:00" in out
    assert "Next elapse:      2027-01-01 04:00:00 UTC" in out
    assert "Iteration #3:     2029-01-01 04:00:00 UTC" in out
    data = json.loads(tapefs("calendar-event", "mon..fri 22:30", "--count", "2", "--from", NOON,
                             "--output-format", "json", env=env).stdout)
    assert data["next-runs"] == [NOON + 34 * 3600 + 1800, NOON + 58 * 3600 + 1800]


def test_a_past_one_shot_event_never_fires(tmp_path):
    out = tapefs("calendar-event", "2020-01-01", env=isolated_env(tmp_path)).stdout
    assert "Next elapse:      never" in out


def test_a_bad_event_is_one_line_pointing_at_the_token(tmp_path):
    proc = tapefs("calendar-event", "mon..fri 25:00", env=isolated_env(tmp_path), check=False)
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        "tapefs: error: invalid calendar event 'mon..fri 25:00': hour value 25 out of range 0..23 "
        "(at '25:00', column 10)"
    )
