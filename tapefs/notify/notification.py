"""One notification: its severity, the template that renders it, the template data, and the
metadata fields that matchers look at (``type``, ``datastore``, ``job-id``, ``hostname`` ...)."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    INFO = "info"
    NOTICE = "notice"
    WARNING = "warning"
    ERROR = "error"
    UNKNOWN = "unknown"


SEVERITIES = tuple(severity.value for severity in Severity)


def hostname() -> str:
    return socket.gethostname().split(".")[0]


@dataclass(frozen=True)
class Notification:
    #: name of the template pair ``NAME-subject.txt.hbs`` / ``NAME-body.txt.hbs``
    template: str
    severity: Severity
    #: values the templates show (kebab-case keys)
    data: dict[str, Any] = field(default_factory=dict)
    #: metadata matchers test (``match-field``); always has ``hostname``
    fields: dict[str, str] = field(default_factory=dict)
    timestamp: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        self.fields.setdefault("hostname", hostname())
        self.data.setdefault("hostname", self.fields["hostname"])
        self.data.setdefault("fqdn", socket.getfqdn())
