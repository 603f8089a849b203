"""Which snapshots a tape backup job writes, in which order (docs/tape-backup.md, "Backup")."""

from __future__ import annotations

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.group_filter import GroupFilter, group_passes
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.datastore.snapshot_include import SnapshotInclude

#: PBS sorts groups by type in this order, then by id (numeric ids first, numerically).
TYPE_ORDER = {"ct": 0, "host": 1, "vm": 2}


def group_sort_key(group: BackupGroup) -> tuple:
    numeric = group.backup_id.isdigit()
    # Unlike PBS, the namespace breaks ties, so the order is the same on every run.
    return (
        TYPE_ORDER.get(group.backup_type, 99),
        not numeric,
        int(group.backup_id) if numeric else 0,
        group.backup_id,
        group.namespace,
    )


def select_snapshots(
    datastore: Datastore,
    namespace: BackupNamespace = BackupNamespace(),
    max_depth: int | None = None,
    filters: list[GroupFilter] = (),
    latest_only: bool = False,
    include: SnapshotInclude | None = None,
) -> list[BackupSnapshot]:
    """Finished snapshots to back up, group by group, oldest first within a group. ``include``
    (``--include``) adds group filters and may take only the snapshots retention selectors keep."""
    include = include or SnapshotInclude()
    filters = [*filters, *include.group_filters]
    namespaces = [
        ns
        for ns in datastore.list_namespaces(namespace)
        if max_depth is None or len(ns.components) - len(namespace.components) <= max_depth
    ]
    groups = sorted((group for ns in namespaces for group in datastore.list_groups(ns)), key=group_sort_key)
    selected: list[BackupSnapshot] = []
    for group in groups:
        if not group_passes(group, filters):
            continue
        snapshots = include.select([info.snapshot for info in datastore.list_snapshots(group) if info.finished])
        selected.extend(snapshots[-1:] if latest_only else snapshots)
    return selected
