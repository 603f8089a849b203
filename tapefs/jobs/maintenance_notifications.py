"""Datastore maintenance that reports how it went: garbage collection, verify, prune and sync run
exactly as by hand, then send their ``*-ok`` or ``*-err`` notification (a failure is sent and
raised again), and then report a new S3 request-rate excursion of the datastores they used.
The command lines and scheduled jobs call these; the datastore layer itself knows nothing of
notifications."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.gc import GcResult, garbage_collect
from tapefs.datastore.prune import GroupPruneResult, prune_datastore
from tapefs.datastore.sync import SyncStats, sync_datastores
from tapefs.datastore.verify import VerifyReport, verify_datastore
from tapefs.jobs.request_rate_alerts import request_rates_checked
from tapefs.notify import events
from tapefs.notify.dispatch import send
from tapefs.notify.notification import Notification

_Result = TypeVar("_Result")


def _reported(
    run: Callable[[], _Result],
    ok: Callable[[_Result], Notification],
    err: Callable[[str], Notification],
    *datastores: Datastore,
):
    with request_rates_checked(*datastores):
        try:
            result = run()
        except Exception as error:
            send(err(str(error)))
            raise
        send(ok(result))
        return result


def garbage_collect_and_notify(datastore: Datastore, *args, **kwargs) -> GcResult:
    """``garbage_collect`` with a ``gc-ok``/``gc-err`` notification."""
    name = datastore.name
    return _reported(
        lambda: garbage_collect(datastore, *args, **kwargs),
        lambda result: events.garbage_collection(name, result.pbs_status()),
        lambda error: events.garbage_collection(name, error=error),
        datastore,
    )


def verify_and_notify(datastore: Datastore, *args, job_id: str | None = None, **kwargs) -> VerifyReport:
    """``verify_datastore`` with ``verify-ok``, or ``verify-err`` listing the damaged snapshots."""
    name = datastore.name
    return _reported(
        lambda: verify_datastore(datastore, *args, **kwargs),
        lambda report: events.verify(name, job_id, sorted(report.affected_snapshots())),
        lambda error: events.verify(name, job_id, error=error),
        datastore,
    )


def prune_and_notify(datastore: Datastore, *args, job_id: str | None = None, **kwargs) -> list[GroupPruneResult]:
    """``prune_datastore`` with ``prune-ok``/``prune-err`` (a dry run sends nothing)."""
    if kwargs.get("dry_run"):
        return prune_datastore(datastore, *args, **kwargs)
    name = datastore.name

    def ok(results: list[GroupPruneResult]) -> Notification:
        decisions = [decision for result in results for decision in result.decisions]
        errors = [f"{snapshot}: {why}" for result in results for snapshot, why in result.errors.items()]
        removed = sum(1 for decision in decisions if decision.removes) - len(errors)
        return events.prune(name, job_id, removed, len(decisions) - removed, "; ".join(errors) or None)

    return _reported(
        lambda: prune_datastore(datastore, *args, **kwargs),
        ok,
        lambda error: events.prune(name, job_id, error=error),
        datastore,
    )


def sync_and_notify(source: Datastore, target: Datastore, *args, job_id: str | None = None, **kwargs) -> SyncStats:
    """``sync_datastores`` with ``sync-ok``, or ``sync-err`` when a snapshot could not be copied."""
    return _reported(
        lambda: sync_datastores(source, target, *args, **kwargs),
        lambda stats: events.sync(target.name, source.name, job_id, error="; ".join(stats.errors) or None),
        lambda error: events.sync(target.name, source.name, job_id, error=error),
        source,
        target,
    )
