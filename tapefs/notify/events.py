"""One function per event kind: each builds the :class:`Notification` PBS would send for it
(same template names, severities and ``type`` field), for ``tapefs.notify.dispatch.send``.

The ``type`` field of each: ``tape-backup``, ``tape-load``, ``verify``, ``gc``, ``prune``,
``sync``, ``thresholds``; jobs also set ``datastore``, ``job-id`` and ``media-pool`` where they
apply, so a matcher can pick them out (``match-field exact:type=gc``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tapefs.notify.notification import Notification, Severity


def _fields(kind: str, **values: str | None) -> dict[str, str]:
    fields = {"type": kind}
    fields.update({key.replace("_", "-"): value for key, value in values.items() if value is not None})
    return fields


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes}m {seconds}s" if hours else f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


def tape_backup(
    datastore: str,
    pool: str,
    drive: str,
    used_tapes: Sequence[str],
    snapshots: Sequence[str],
    seconds: float,
    job_id: str | None = None,
    error: str | None = None,
) -> Notification:
    """A tape backup ended: ``tape-backup-ok``, or ``tape-backup-err`` when ``error`` is given."""
    data = {
        "datastore": datastore,
        "job-id": job_id,
        "job-duration": format_duration(seconds),
        "tape-pool": pool,
        "tape-drive": drive,
        "used-tapes-list": list(used_tapes),
        "snapshot-list": list(snapshots),
        "error": error,
    }
    return Notification(
        "tape-backup-err" if error else "tape-backup-ok",
        Severity.ERROR if error else Severity.INFO,
        data,
        _fields("tape-backup", datastore=datastore, media_pool=pool, job_id=job_id),
    )


def tape_load(label_text: str, drive: str, reason: str, is_changer: bool = True) -> Notification:
    """An operator must insert or load a tape (an operator wait, a restore's retrieval list)."""
    data = {
        "load-reason": reason,
        "tape-drive": drive,
        "drive-type": "changer" if is_changer else "drive",
        "drive-is-changer": is_changer,
        "tape-label": label_text,
    }
    return Notification("tape-load", Severity.NOTICE, data, _fields("tape-load"))


def verify(
    datastore: str, job_id: str | None = None, failed_snapshots: Sequence[str] = (), error: str | None = None
) -> Notification:
    failed = bool(failed_snapshots) or error is not None
    data = {"datastore": datastore, "job-id": job_id, "failed-snapshot-list": list(failed_snapshots), "error": error}
    return Notification(
        "verify-err" if failed else "verify-ok",
        Severity.ERROR if failed else Severity.INFO,
        data,
        _fields("verify", datastore=datastore, job_id=job_id),
    )


def garbage_collection(
    datastore: str, status: Mapping[str, object] | None = None, error: str | None = None
) -> Notification:
    """``status``: GC figures by PBS name (``removed-chunks``, ``removed-bytes``, ``disk-chunks`` ...)."""
    data: dict[str, object] = {"datastore": datastore, "error": error, **(status or {})}
    return Notification(
        "gc-err" if error else "gc-ok",
        Severity.ERROR if error else Severity.INFO,
        data,
        _fields("gc", datastore=datastore),
    )


def prune(
    datastore: str, job_id: str | None = None, removed: int = 0, kept: int = 0, error: str | None = None
) -> Notification:
    data = {"datastore": datastore, "job-id": job_id, "removed-count": removed, "kept-count": kept, "error": error}
    return Notification(
        "prune-err" if error else "prune-ok",
        Severity.ERROR if error else Severity.INFO,
        data,
        _fields("prune", datastore=datastore, job_id=job_id),
    )


def sync(
    datastore: str,
    remote_datastore: str,
    job_id: str | None = None,
    remote: str | None = None,
    error: str | None = None,
) -> Notification:
    data = {
        "datastore": datastore,
        "job-id": job_id,
        "remote": remote,
        "remote-datastore": remote_datastore,
        "error": error,
    }
    return Notification(
        "sync-err" if error else "sync-ok",
        Severity.ERROR if error else Severity.INFO,
        data,
        _fields("sync", datastore=datastore, job_id=job_id),
    )


def threshold_exceeded(datastore: str, threshold: str, limit: float, value: float, is_traffic: bool) -> Notification:
    """A datastore counter (an S3 store's request rate, its egress) went above its configured limit."""
    data = {"datastore": datastore, "threshold": threshold, "limit": limit, "value": value, "is-traffic": is_traffic}
    return Notification("thresholds-exceeded", Severity.WARNING, data, _fields("thresholds", datastore=datastore))
