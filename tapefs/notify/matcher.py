"""Which matchers a notification matches, as proxmox-notify decides it.

Each directive is one ``match-severity`` item (the severity is in its list), one ``match-field``
(``exact:``: the field equals one of the values; ``regex:``: it matches; an absent field never
matches) or one ``match-calendar`` event (the notification's minute is one of the event's
minutes, in local time unless the event ends in UTC). Mode ``all`` needs every directive,
``any`` one of them; ``invert-match`` negates the result. A matcher without directives matches
everything, and ``invert-match`` does not change that.
"""

from __future__ import annotations

from tapefs.config.calendar_event import CalendarEvent
from tapefs.notify.config import Matcher, parse_field_match
from tapefs.notify.notification import Notification


def _severity_matches(item: str, notification: Notification) -> bool:
    return notification.severity.value in {severity.strip() for severity in item.split(",")}


def _field_matches(item: str, notification: Notification) -> bool:
    kind, name, expected = parse_field_match(item)
    value = notification.fields.get(name)
    if value is None:
        return False
    if kind == "exact":
        return value in expected  # type: ignore[operator]
    return expected.search(value) is not None  # type: ignore[union-attr]


def _calendar_matches(item: str, notification: Notification) -> bool:
    minute = notification.timestamp - notification.timestamp % 60
    next_event = CalendarEvent.parse(item).next_after(minute - 1)
    return next_event is not None and next_event < minute + 60


def matches(matcher: Matcher, notification: Notification) -> bool:
    results = [
        *(_severity_matches(item, notification) for item in matcher.match_severity),
        *(_field_matches(item, notification) for item in matcher.match_field),
        *(_calendar_matches(item, notification) for item in matcher.match_calendar),
    ]
    if not results:
        return True
    matched = all(results) if matcher.mode == "all" else any(results)
    return matched != matcher.invert_match


def matched_targets(matchers: list[Matcher], notification: Notification) -> list[str]:
    """The targets of every enabled matcher that matches, each once, in configuration order."""
    names: dict[str, None] = {}
    for matcher in matchers:
        if not matcher.disable and matches(matcher, notification):
            names.update(dict.fromkeys(matcher.targets))
    return list(names)
