"""Which snapshots a tape backup job writes, in which order (docs/tape-backup.md, "Backup")."""
from __future__ import annotations

import re
from dataclasses import dataclass

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.jobs.errors import JobError

#: PBS sorts groups by type in this order, then by id (numeric ids first, numerically).
TYPE_ORDER = {"ct": 0, "host": 1, "vm": 2}


@dataclass(frozen=True)
class GroupFilter:
    """`[include:|exclude:]type:<t>` | `group:<type>/<id>` | `regex:<re>`."""
    exclude: bool
    kind: str
    value: str

    @classmethod
    def parse(cls, text: str) -> GroupFilter:
        exclude = False
        body = text
        for prefix, is_exclude in (("include:", False), ("exclude:", True)):
            if text.startswith(prefix):
                body, exclude = text[len(prefix):], is_exclude
        kind, _, value = body.partition(":")
        if kind not in ("type", "group", "regex") or not value:
            raise JobError(f"invalid group filter {text!r} "
                           "(expected [include:|exclude:]type:T, group:T/ID or regex:RE)")
        if kind == "regex":
            try:
                re.compile(value)
            except re.error as error:
                raise JobError(f"group filter {text!r}: {error}") from None
        return cls(exclude, kind, value)

    def matches(self, group: BackupGroup) -> bool:
        if self.kind == "type":
            return group.backup_type == self.value
        if self.kind == "group":
            return str(group) == self.value
        return re.search(self.value, str(group)) is not None


def group_sort_key(group: BackupGroup) -> tuple:
    numeric = group.backup_id.isdigit()
    # Unlike PBS, the namespace breaks ties, so the order is the same on every run.
    return (TYPE_ORDER.get(group.backup_type, 99), not numeric, int(group.backup_id) if numeric else 0,
            group.backup_id, group.namespace)


def select_snapshots(datastore: Datastore, namespace: BackupNamespace = BackupNamespace(),
                     max_depth: int | None = None, filters: list[GroupFilter] = (),
                     latest_only: bool = False) -> list[BackupSnapshot]:
    """Finished snapshots to back up, group by group, oldest first within a group."""
    namespaces = [ns for ns in datastore.list_namespaces(namespace)
                  if max_depth is None or len(ns.components) - len(namespace.components) <= max_depth]
    groups = sorted((group for ns in namespaces for group in datastore.list_groups(ns)), key=group_sort_key)
    includes = [f for f in filters if not f.exclude]
    excludes = [f for f in filters if f.exclude]
    selected: list[BackupSnapshot] = []
    for group in groups:
        if includes and not any(f.matches(group) for f in includes):
            continue
        if any(f.matches(group) for f in excludes):
            continue
        snapshots = sorted(info.snapshot for info in datastore.list_snapshots(group) if info.finished)
        selected.extend(snapshots[-1:] if latest_only else snapshots)
    return selected
