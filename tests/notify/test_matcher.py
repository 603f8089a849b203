"""Matchers: severity, field (exact and regex), calendar windows, mode all/any, invert-match,
disabled matchers, and a matcher without directives."""
import time

import pytest

from tapefs.notify import events
from tapefs.notify.config import Matcher
from tapefs.notify.matcher import matched_targets, matches
from tapefs.notify.notification import Notification, Severity


def at(text: str) -> int:
    """Epoch of a local time 'YYYY-MM-DD HH:MM'."""
    return int(time.mktime(time.strptime(text, "%Y-%m-%d %H:%M")))


def note(severity=Severity.ERROR, timestamp=None, **fields) -> Notification:
    return Notification("test", severity, {}, {"type": "gc", "datastore": "main", **fields},
                        timestamp or at("2026-12-07 10:30"))  # a Monday


@pytest.mark.parametrize("matcher, expected", [
    (Matcher("m"), True),
    (Matcher("m", invert_match=True), True),  # no directives: always, inverted or not
    (Matcher("m", match_severity=("warning,error",)), True),
    (Matcher("m", match_severity=("info",)), False),
    (Matcher("m", match_severity=("info",), invert_match=True), True),
    (Matcher("m", match_field=("exact:type=prune,gc",)), True),
    (Matcher("m", match_field=("exact:type=prune",)), False),
    (Matcher("m", match_field=("regex:datastore=^ma",)), True),
    (Matcher("m", match_field=("regex:job-id=.*",)), False),  # an absent field never matches
    (Matcher("m", match_calendar=("mon..fri 8..17:*",)), True),
    (Matcher("m", match_calendar=("sat,sun",)), False),
    (Matcher("m", match_calendar=("10:30",)), True),
    (Matcher("m", match_calendar=("10:31",)), False),
    (Matcher("m", match_severity=("error",), match_field=("exact:type=prune",)), False),
    (Matcher("m", match_severity=("error",), match_field=("exact:type=prune",), mode="any"), True),
    (Matcher("m", match_severity=("info",), match_field=("exact:type=prune",), mode="any"), False),
    (Matcher("m", match_severity=("info",), match_field=("exact:type=prune",), mode="any", invert_match=True), True),
    (Matcher("m", match_severity=("error",), match_field=("exact:type=gc",), match_calendar=("mon 10:00/30",)), True),
    # mode all over two severity items: no severity is both
    (Matcher("m", match_severity=("error", "warning")), False),
    (Matcher("m", match_severity=("error", "warning"), mode="any"), True),
])
def test_matcher_combinations(matcher, expected):
    assert matches(matcher, note()) is expected


def test_calendar_window_in_utc():
    utc_noon = 1796644800  # 2026-12-07 12:00:00 UTC
    assert matches(Matcher("m", match_calendar=("12:00 UTC",)), note(timestamp=utc_noon + 59))
    assert not matches(Matcher("m", match_calendar=("12:00 UTC",)), note(timestamp=utc_noon + 60))


def test_targets_of_every_matching_enabled_matcher_once():
    matchers = [
        Matcher("errors", targets=("mail", "hook"), match_severity=("error",)),
        Matcher("gc", targets=("hook", "push"), match_field=("exact:type=gc",)),
        Matcher("off", targets=("pager",), disable=True),
        Matcher("tape", targets=("tape-ops",), match_field=("exact:type=tape-backup",)),
    ]
    assert matched_targets(matchers, note()) == ["mail", "hook", "push"]
    load = events.tape_load("T1", "changer0", "restore")
    assert matched_targets(matchers, load) == []
    backup = events.tape_backup("main", "p", "d", [], [], 1.0, error="drive gone")
    assert matched_targets(matchers, backup) == ["mail", "hook", "tape-ops"]
