"""Prune selection against a plain reference of PBS's rules, on synthetic snapshot histories."""

import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.datastore.prune import KEEP_RULES, KeepOptions, PruneCandidate, compute_prune, prune_datastore
from tests.helpers.synthetic_snapshots import make_snapshot

GROUP = BackupGroup(BackupNamespace(), "vm", "100")
FORMATS = {"keep-last": None, "keep-hourly": "%Y/%m/%d/%H", "keep-daily": "%Y/%m/%d", "keep-weekly": "%G/%V",
           "keep-monthly": "%Y/%m", "keep-yearly": "%Y"}


@pytest.fixture(autouse=True)
def local_time_zone():
    """Periods are local time; pin a zone with daylight saving so its hours are exercised."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Vienna"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def reference_prune(snapshots: list[tuple[int, bool, bool]], keep: dict[str, int]) -> dict[int, str]:
    """(time, finished, protected) -> time: keep/keep-partial/protected/remove, straight from
    the rules as PBS documents them."""
    order = sorted(snapshots, reverse=True)
    if not any(keep.values()):
        return {t: "protected" if protected else "keep" for t, _, protected in order}
    mark = {}
    unfinished = [t for t, finished, _ in order if not finished]
    if unfinished and unfinished[0] == order[0][0]:
        mark[unfinished[0]] = "keep-partial"
    for t in unfinished:
        mark.setdefault(t, "remove")
    for rule, period_format in FORMATS.items():
        wanted = keep.get(rule, 0)
        if not wanted:
            continue

        def period(t):
            return t if period_format is None else time.strftime(period_format, time.localtime(t))

        already = {period(t) for t, m in mark.items() if m == "keep"}
        chosen = []
        for t, _, protected in order:
            if t in mark:
                continue
            if protected:
                mark[t] = "protected"
            elif period(t) in already:
                pass
            elif period(t) in chosen:
                mark[t] = "remove"
            elif len(chosen) == wanted:
                break
            else:
                chosen.append(period(t))
                mark[t] = "keep"
    return {t: "protected" if protected else mark.get(t, "remove") for t, _, protected in order}


def decide(snapshots, keep):
    candidates = [PruneCandidate(BackupSnapshot(GROUP, t), finished, protected) for t, finished, protected in snapshots]
    return {d.candidate.snapshot.backup_time: d.mark for d in compute_prune(candidates, KeepOptions.from_mapping(keep))}


def test_pbs_documentation_example():
    """keep-daily 3 + keep-weekly 2 on two snapshots a day: newest of each day, then the newest
    of each earlier week."""
    start = int(time.mktime((2024, 6, 3, 8, 0, 0, 0, 0, -1)))  # Monday
    times = [start + day * 86400 + hour * 3600 for day in range(14) for hour in (0, 10)]
    result = decide([(t, True, False) for t in times], {"keep-daily": 3, "keep-weekly": 2})
    kept = sorted(time.strftime("%a %d %H", time.localtime(t)) for t, m in result.items() if m == "keep")
    # days 16, 15, 14 (Sun, Sat, Fri of the second week) by keep-daily; that week is covered, so
    # keep-weekly takes the newest of the first week (Sun 9th) and then nothing older exists
    assert kept == ["Fri 14 18", "Sat 15 18", "Sun 09 18", "Sun 16 18"]


@pytest.mark.slow
def test_three_years_of_daily_snapshots(tmp_path):
    store = Datastore.create(tmp_path / "store", prefix_dirs=False)
    start = int(time.mktime((2021, 1, 1, 22, 30, 0, 0, 0, -1)))
    times = [start + day * 86400 for day in range(3 * 365 + 1)]
    protected = {times[100], times[500]}
    for t in times:
        make_snapshot(store, BackupSnapshot(GROUP, t), protected=t in protected)
    keep = {"keep-last": 2, "keep-daily": 5, "keep-weekly": 4, "keep-monthly": 12, "keep-yearly": 5}
    expected = reference_prune([(t, True, t in protected) for t in times], keep)
    dry = prune_datastore(store, KeepOptions.from_mapping(keep), dry_run=True)
    assert {d.candidate.snapshot.backup_time: d.mark for d in dry[0].decisions} == expected
    assert len(store.list_snapshots(GROUP)) == len(times)
    [result] = prune_datastore(store, KeepOptions.from_mapping(keep))
    assert not result.errors
    remaining = sorted(info.snapshot.backup_time for info in store.list_snapshots(GROUP))
    assert remaining == sorted(t for t, m in expected.items() if m != "remove")
    assert protected <= set(remaining)
    rules = [d.rule for d in dry[0].decisions if d.rule]
    # every rule found its N periods, except keep-yearly: the history ends on 2024-01-01, and
    # the 12 months (Nov 2023 back to Dec 2022) already cover 2024, 2023 and 2022, leaving 2021
    assert {rule: rules.count(rule) for rule in rules} == {
        "keep-last": 2, "keep-daily": 5, "keep-weekly": 4, "keep-monthly": 12, "keep-yearly": 1}


snapshot_lists = st.lists(
    st.tuples(st.integers(1_500_000_000, 1_600_000_000), st.booleans(), st.booleans()).map(
        lambda s: (s[0], s[1] or s[0] % 3 != 0, s[2] and s[0] % 5 == 0)),
    max_size=60, unique_by=lambda s: s[0])
keep_maps = st.fixed_dictionaries({rule: st.integers(0, 6) for rule in KEEP_RULES})


@settings(max_examples=300, deadline=None)
@given(snapshot_lists, keep_maps)
def test_selection_matches_reference(snapshots, keep):
    result = decide(snapshots, keep)
    assert result == reference_prune(snapshots, keep)
    assert all(result[t] == "protected" for t, _, protected in snapshots if protected)
    finished_newest = [t for t, finished, protected in sorted(snapshots, reverse=True) if finished and not protected]
    assert all(result[t] == "keep" for t in finished_newest[:keep["keep-last"]])


def test_unfinished_snapshots():
    result = decide([(300, False, False), (200, True, False), (100, False, False)], {"keep-last": 5})
    assert result == {300: "keep-partial", 200: "keep", 100: "remove"}
    result = decide([(300, True, False), (200, False, False)], {"keep-last": 5})
    assert result == {300: "keep", 200: "remove"}


def test_no_rule_keeps_everything():
    assert set(decide([(1, True, False), (2, True, False)], {}).values()) == {"keep"}


def test_namespaces_and_max_depth(tmp_path):
    store = Datastore.create(tmp_path / "store", prefix_dirs=False)
    groups = [BackupGroup(BackupNamespace.parse(ns), "host", "x") for ns in ("", "a", "a/b")]
    for group in groups:
        for t in (100, 200, 300):
            make_snapshot(store, BackupSnapshot(group, t))
    prune_datastore(store, KeepOptions.from_mapping({"keep-last": 1}), BackupNamespace.parse("a"), max_depth=0)
    assert [len(store.list_snapshots(g)) for g in groups] == [3, 1, 3]
    prune_datastore(store, KeepOptions.from_mapping({"keep-last": 2}))
    assert [len(store.list_snapshots(g)) for g in groups] == [2, 1, 2]
