"""``--include`` expressions of tape backup jobs: which snapshots go to tape.

An expression is either a group filter (``type:vm``, ``group:vm/100``, ``regex:^ct/``, each
optionally ``include:``/``exclude:``; see :mod:`tapefs.datastore.group_filter`) or a retention
selector: ``keep-yearly=*``, ``keep-monthly=12``, several joined by commas
(``keep-yearly=*,keep-monthly=3``). A selector takes, in every group, only the snapshots a prune
with those options would keep *by its rules* (``*``: every period); protection plays no part,
so ``keep-yearly=*`` is the newest snapshot of each year of every group. Selectors given in
several expressions are one prune rule set; giving the same rule twice is an error.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.group_filter import GroupFilter
from tapefs.datastore.naming import BackupSnapshot
from tapefs.datastore.prune import KEEP, KEEP_RULES, KeepOptions, PruneCandidate, compute_prune
from tapefs.errors import InvalidInput

#: ``*``: no limit on the number of periods
UNLIMITED = sys.maxsize
_SELECTOR = re.compile(r"(?P<rule>keep-[a-z]+)=(?P<count>\*|[0-9]+)")


class SnapshotIncludeError(InvalidInput, DatastoreError, ValueError):
    pass


@dataclass(frozen=True)
class SnapshotInclude:
    group_filters: tuple[GroupFilter, ...] = ()
    #: None: every finished snapshot of a group that passes the filters
    keep: KeepOptions | None = None

    def select(self, snapshots: Sequence[BackupSnapshot]) -> list[BackupSnapshot]:
        """Of one group's finished snapshots, those the retention selectors take, oldest first."""
        if self.keep is None:
            return sorted(snapshots)
        decisions = compute_prune([PruneCandidate(snapshot) for snapshot in snapshots], self.keep)
        return sorted(decision.candidate.snapshot for decision in decisions if decision.mark == KEEP)


def is_retention_selector(text: str) -> bool:
    return text.startswith("keep-")


def _parse_selector(text: str, counts: dict[str, int]) -> None:
    for item in text.split(","):
        match = _SELECTOR.fullmatch(item.strip())
        if not match or match["rule"] not in KEEP_RULES:
            raise SnapshotIncludeError(
                f"invalid retention selector {item.strip()!r} in --include {text!r} "
                f"(expected RULE=N or RULE=*, RULE one of {', '.join(KEEP_RULES)})"
            )
        rule, count = match["rule"], match["count"]
        if rule in counts:
            raise SnapshotIncludeError(f"--include {text!r}: {rule} is given twice")
        counts[rule] = UNLIMITED if count == "*" else int(count)
        if counts[rule] == 0:
            raise SnapshotIncludeError(f"--include {text!r}: {rule}=0 would keep nothing (use a count or *)")


def parse_includes(texts: Iterable[str]) -> SnapshotInclude:
    filters: list[GroupFilter] = []
    counts: dict[str, int] = {}
    for text in texts:
        if is_retention_selector(text):
            _parse_selector(text, counts)
        else:
            try:
                filters.append(GroupFilter.parse(text))
            except ValueError as error:
                raise SnapshotIncludeError(
                    f"invalid --include {text!r}: neither a group filter ([include:|exclude:]type:T, group:T/ID, "
                    f"regex:RE) nor a retention selector (keep-yearly=*, keep-monthly=12, ...)"
                ) from error
    return SnapshotInclude(tuple(filters), KeepOptions.from_mapping(counts) if counts else None)


def check_include(text: str) -> str:
    """One expression, checked (for configuration files)."""
    parse_includes([text])
    return text
