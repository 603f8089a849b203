"""PBS's group filters, as sync and tape backup jobs take them: ``type:<type>``,
``group:<type>/<id>`` or ``regex:<regex>`` (searched in ``<type>/<id>``), each optionally
prefixed ``include:`` or ``exclude:``. A group passes if it matches any include filter (or
there is none) and no exclude filter."""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.naming import BackupGroup


class GroupFilterError(DatastoreError, ValueError):
    pass


@dataclass(frozen=True)
class GroupFilter:
    exclude: bool
    kind: str
    value: str

    @classmethod
    def parse(cls, text: str) -> "GroupFilter":
        exclude = False
        body = text
        for prefix, is_exclude in (("include:", False), ("exclude:", True)):
            if text.startswith(prefix):
                body, exclude = text[len(prefix) :], is_exclude
        kind, _, value = body.partition(":")
        if kind not in ("type", "group", "regex") or not value:
            raise GroupFilterError(
                f"invalid group filter {text!r} (expected [include:|exclude:]type:T, group:T/ID or regex:RE)"
            )
        if kind == "regex":
            try:
                re.compile(value)
            except re.error as error:
                raise GroupFilterError(f"group filter {text!r}: {error}") from None
        return cls(exclude, kind, value)

    def matches(self, group: BackupGroup) -> bool:
        if self.kind == "type":
            return group.backup_type == self.value
        if self.kind == "group":
            return str(group) == self.value
        return re.search(self.value, str(group)) is not None


def group_passes(group: BackupGroup, filters: Sequence[GroupFilter]) -> bool:
    includes = [f for f in filters if not f.exclude]
    if includes and not any(f.matches(group) for f in includes):
        return False
    return not any(f.matches(group) for f in filters if f.exclude)
