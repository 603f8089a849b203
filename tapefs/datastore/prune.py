"""Prune: which snapshots of a group to keep, by PBS's retention rules, and removing the rest.

The rules run in a fixed order: keep-last, -hourly, -daily, -weekly, -monthly, -yearly. Each
takes the group's snapshots newest first and keeps the newest snapshot of each period it has
not yet seen, until it has kept N periods; periods are local time (hour, day, ISO week, month,
year; keep-last: every snapshot is its own period). A period already covered by a snapshot an
earlier rule kept uses up no slot. Protected snapshots are always kept and never count. Without
any rule everything is kept.

Unfinished snapshots (no manifest): the newest is kept ("keep-partial") if no finished snapshot
is newer, every other one is removed; the rules never consider them.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.errors import DatastoreError, UnknownNameError
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.datastore.snapshot_admin import PROTECTED_FILE_NAME, describe_snapshot, remove_snapshot, writer_running
from tapefs.tasks.worker import check_stop

log = logging.getLogger(__name__)

KEEP_LAST = "keep-last"
#: rule name -> local-time period of a snapshot, in the order PBS applies them
PERIOD_FORMATS = {
    "keep-hourly": "%Y/%m/%d/%H",
    "keep-daily": "%Y/%m/%d",
    "keep-weekly": "%G/%V",
    "keep-monthly": "%Y/%m",
    "keep-yearly": "%Y",
}
KEEP_RULES = (KEEP_LAST, *PERIOD_FORMATS)

KEEP = "keep"
KEEP_PARTIAL = "keep-partial"
PROTECTED = "protected"
REMOVE = "remove"


@dataclass(frozen=True)
class KeepOptions:
    """Number of periods each rule keeps (0: rule not used), by PBS option name."""

    counts: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_mapping(cls, counts: dict[str, int | None]) -> "KeepOptions":
        for rule, count in counts.items():
            if rule not in KEEP_RULES:
                raise DatastoreError(f"unknown prune option {rule!r} (one of {', '.join(KEEP_RULES)})")
            if count is not None and count < 0:
                raise DatastoreError(f"{rule} must not be negative, got {count}")
        return cls(tuple((rule, counts[rule]) for rule in KEEP_RULES if counts.get(rule)))

    def count(self, rule: str) -> int:
        return dict(self.counts).get(rule, 0)

    @property
    def keeps_something(self) -> bool:
        return bool(self.counts)

    def to_mapping(self) -> dict[str, int]:
        return dict(self.counts)


@dataclass(frozen=True)
class PruneCandidate:
    snapshot: BackupSnapshot
    finished: bool = True
    protected: bool = False


@dataclass(frozen=True)
class PruneDecision:
    candidate: PruneCandidate
    #: keep, keep-partial, protected or remove
    mark: str
    #: the rule that kept it (keep-last, keep-daily, ...), if a rule did
    rule: str | None = None

    @property
    def removes(self) -> bool:
        return self.mark == REMOVE


def _period_function(rule: str) -> Callable[[int], str]:
    if rule == KEEP_LAST:
        return str
    period_format = PERIOD_FORMATS[rule]
    return lambda backup_time: time.strftime(period_format, time.localtime(backup_time))


def compute_prune(candidates: list[PruneCandidate], options: KeepOptions) -> list[PruneDecision]:
    """The decision for every snapshot of one group, newest first."""
    newest_first = sorted(candidates, key=lambda c: c.snapshot.backup_time, reverse=True)
    if not options.keeps_something:
        return [PruneDecision(c, PROTECTED if c.protected else KEEP) for c in newest_first]
    marks: dict[BackupSnapshot, tuple[str, str | None]] = {}
    keep_unfinished = True
    for candidate in newest_first:
        if not candidate.finished:
            marks[candidate.snapshot] = (KEEP_PARTIAL if keep_unfinished else REMOVE, None)
        keep_unfinished = False
    for rule in KEEP_RULES:
        limit = options.count(rule)
        if not limit:
            continue
        period_of = _period_function(rule)
        covered = {period_of(c.snapshot.backup_time) for c in newest_first if marks.get(c.snapshot, ("",))[0] == KEEP}
        taken: set[str] = set()
        for candidate in newest_first:
            if candidate.snapshot in marks:
                continue
            if candidate.protected:
                marks[candidate.snapshot] = (PROTECTED, None)
                continue
            period = period_of(candidate.snapshot.backup_time)
            if period in covered:
                continue
            if period in taken:
                marks[candidate.snapshot] = (REMOVE, None)
                continue
            if len(taken) >= limit:
                break
            taken.add(period)
            marks[candidate.snapshot] = (KEEP, rule)
    decisions = []
    for candidate in newest_first:
        mark, rule = (PROTECTED, None) if candidate.protected else marks.get(candidate.snapshot, (REMOVE, None))
        decisions.append(PruneDecision(candidate, mark, rule))
    return decisions


@dataclass
class GroupPruneResult:
    group: BackupGroup
    decisions: list[PruneDecision]
    #: snapshot -> why it could not be removed
    errors: dict[BackupSnapshot, str] = field(default_factory=dict)
    #: unfinished snapshots left alone because a backup was running
    skipped: list[BackupSnapshot] = field(default_factory=list)


def group_candidates(datastore: Datastore, group: BackupGroup) -> list[PruneCandidate]:
    return [
        PruneCandidate(info.snapshot, info.finished, (info.path / PROTECTED_FILE_NAME).exists())
        for info in datastore.list_snapshots(group, include_unfinished=True)
    ]


def prune_group(
    datastore: Datastore, group: BackupGroup, options: KeepOptions, dry_run: bool = False, keep_unfinished: bool = False
) -> GroupPruneResult:
    result = GroupPruneResult(group, compute_prune(group_candidates(datastore, group), options))
    if dry_run:
        return result
    for decision in result.decisions:
        if not decision.removes:
            continue
        snapshot = decision.candidate.snapshot
        if keep_unfinished and not decision.candidate.finished:
            result.skipped.append(snapshot)
            continue
        try:
            remove_snapshot(datastore, snapshot)
        except (DatastoreError, OSError) as exc:
            result.errors[snapshot] = str(exc)
            log.warning("prune: cannot remove %s: %s", describe_snapshot(snapshot), exc)
    return result


def prune_groups(datastore: Datastore, namespace: BackupNamespace, max_depth: int | None) -> list[BackupGroup]:
    """The groups of ``namespace`` and of the namespaces up to ``max_depth`` levels below it."""
    if not datastore.namespace_path(namespace).is_dir():
        raise UnknownNameError(f"namespace {namespace} not found in datastore {datastore.name}")
    namespaces = [
        ns
        for ns in datastore.list_namespaces(namespace)
        if max_depth is None or len(ns.components) - len(namespace.components) <= max_depth
    ]
    return [group for ns in namespaces for group in datastore.list_groups(ns)]


def prune_datastore(
    datastore: Datastore,
    options: KeepOptions,
    namespace: BackupNamespace = BackupNamespace(),
    max_depth: int | None = None,
    group: BackupGroup | None = None,
    dry_run: bool = False,
) -> list[GroupPruneResult]:
    """Prune one group, or every group of a namespace tree. Unfinished snapshots are only
    removed while no backup runs in the datastore (one of them may be that backup's)."""
    if group is not None:
        if not datastore.group_path(group).is_dir():
            raise UnknownNameError(f"group {group} not found in datastore {datastore.name}")
        groups = [group]
    else:
        groups = prune_groups(datastore, namespace, max_depth)
    keep_unfinished = not dry_run and writer_running(datastore)
    if keep_unfinished:
        log.info("a backup is running: unfinished snapshots are kept")
    results = []
    for group in groups:
        check_stop()  # between groups: each group's prune is complete
        results.append(prune_group(datastore, group, options, dry_run, keep_unfinished))
    return results
