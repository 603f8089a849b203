"""The S3 request-rate alert: after work on an S3 datastore, a new excursion of its request rate
above the datastore's ``request-rate-threshold`` is reported once: a logged warning (which the
running task's log records, so the task ends with warnings) and a ``thresholds-exceeded``
notification.

It sits here because it joins two layers that must not know each other: tapefs.s3 finds the
excursions, tapefs.notify sends the notification. The jobs (sync, GC, verify, prune, tape backup),
run by hand or by the scheduler, check the datastores they touched when they end, and the
scheduler checks every S3 datastore at each tick, so an excursion caused by any process is
reported within a minute of that process writing its counts (after each snapshot, GC sweep and
at its end).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.datastore.s3_backend import S3Datastore
from tapefs.notify import events
from tapefs.notify.dispatch import send
from tapefs.s3.telemetry import RateExcursion, TelemetryFile, new_rate_excursion

log = logging.getLogger(__name__)

THRESHOLD_OPTION = "request-rate-threshold"
#: the name of the limit in the notification ("The S3 request rate of datastore 'x' is ...")
THRESHOLD_NAME = "S3 request rate (requests per minute)"


def _threshold(name: str, registry: DatastoreRegistry | None) -> int | None:
    value = (registry or DatastoreRegistry()).option(name, THRESHOLD_OPTION)
    return int(value) if value is not None else None


def _report(name: str, excursion: RateExcursion) -> None:
    # inside a task, the task log gets it as a warning too
    log.warning("datastore %s: %s", name, excursion.message())
    # a request rate is traffic: the template then points at the jobs that may run away
    send(events.threshold_exceeded(name, THRESHOLD_NAME, excursion.threshold, excursion.peak, is_traffic=True))


def _check_file(name: str, telemetry: TelemetryFile, threshold: int) -> RateExcursion | None:
    excursion = new_rate_excursion(telemetry, threshold)
    if excursion is not None:
        _report(name, excursion)
    return excursion


def check_request_rate(datastore: Datastore, registry: DatastoreRegistry | None = None) -> RateExcursion | None:
    """Count what ``datastore`` has done so far and report a new excursion above its threshold:
    the excursion, or None (not an S3 datastore, no threshold, nothing new)."""
    if not isinstance(datastore, S3Datastore):
        return None
    threshold = _threshold(datastore.name, registry)
    if threshold is None:
        return None
    datastore.flush_telemetry()
    return _check_file(datastore.name, datastore.telemetry, threshold)


def check_all_request_rates(registry: DatastoreRegistry | None = None) -> list[RateExcursion]:
    """Report the new excursions of every S3 datastore with a threshold, from the counts its
    users have written so far (no S3 client is made: the scheduler calls this at every tick)."""
    registry = registry or DatastoreRegistry()
    found = []
    for section in registry.entries():
        threshold = section.properties.get(THRESHOLD_OPTION)
        if not section.properties.get("backend") or threshold is None:
            continue
        excursion = _check_file(section.id, registry.s3_telemetry(section.id), int(str(threshold)))
        if excursion is not None:
            found.append(excursion)
    return found


@contextlib.contextmanager
def request_rates_checked(*datastores: Datastore) -> Iterator[None]:
    """Check the request rates of ``datastores`` when the block ends, however it ends."""
    try:
        yield
    finally:
        for datastore in datastores:
            try:
                check_request_rate(datastore)
            except Exception as error:  # the alert must never fail or mask the work it watches
                log.warning("request-rate check of datastore %s failed: %s", datastore.name, error)
