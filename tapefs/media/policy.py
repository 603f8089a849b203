"""Allocation and retention policies of a media pool (docs/media-pools.md).

Allocation: ``continue`` (the default) keeps appending to the current set, ``always`` starts a
new set for every job, anything else is a calendar event at which a new set starts. Retention:
``keep`` (the default) never reuses a tape, ``overwrite`` reuses it as soon as its set is no
longer in use, anything else is a time span a tape stays protected after that.
"""

import logging
from dataclasses import dataclass

from tapefs.config.calendar_event import CalendarEvent
from tapefs.media.time_span import parse_time_span

log = logging.getLogger(__name__)

DEFAULT_ALLOCATION = "continue"
DEFAULT_RETENTION = "keep"


@dataclass(frozen=True)
class ContinueCurrent:
    def __str__(self) -> str:
        return "continue"


@dataclass(frozen=True)
class AlwaysCreate:
    def __str__(self) -> str:
        return "always"


@dataclass(frozen=True)
class CreateAt:
    event: CalendarEvent

    def __str__(self) -> str:
        return str(self.event)


AllocationPolicy = ContinueCurrent | AlwaysCreate | CreateAt


@dataclass(frozen=True)
class KeepForever:
    def __str__(self) -> str:
        return "keep"


@dataclass(frozen=True)
class OverwriteAlways:
    def __str__(self) -> str:
        return "overwrite"


@dataclass(frozen=True)
class ProtectFor:
    seconds: int
    text: str

    def __str__(self) -> str:
        return self.text


RetentionPolicy = KeepForever | OverwriteAlways | ProtectFor


def parse_allocation_policy(text: str | None) -> AllocationPolicy:
    """Raises CalendarEventError for anything that is neither a keyword nor a calendar event."""
    text = DEFAULT_ALLOCATION if text is None else text
    if text == "continue":
        return ContinueCurrent()
    if text == "always":
        return AlwaysCreate()
    return CreateAt(CalendarEvent.parse(text))


def parse_retention_policy(text: str | None) -> RetentionPolicy:
    """Raises TimeSpanError for anything that is neither a keyword nor a time span."""
    text = DEFAULT_RETENTION if text is None else text
    if text == "keep":
        return KeepForever()
    if text == "overwrite":
        return OverwriteAlways()
    # PBS converts the span to float seconds and truncates it.
    return ProtectFor(int(parse_time_span(text)), text)
