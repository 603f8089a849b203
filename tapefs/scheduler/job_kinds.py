"""The kinds of scheduled job, where each is configured, and what one run of each does.

| kind (PBS job type) | one job per | configured in | schedule key |
|---|---|---|---|
| ``garbage_collection`` | datastore | datastore.cfg | ``gc-schedule`` |
| ``prunejob`` | prune job | prune.cfg | ``schedule`` |
| ``syncjob`` | sync job | sync.cfg | ``schedule`` |
| ``verificationjob`` | datastore | datastore.cfg | ``verify-schedule`` |
| ``tape-backup-job`` | tape backup job | tape-job.cfg | ``schedule`` |
| ``logrotate`` | (one: ``tasks``) | built in | ``daily`` |
| ``notification-threshold-reset`` | S3 datastore | datastore.cfg | ``counter-reset-schedule`` |

The scheduler and the ``run`` commands (``tapefs backup-job run``, ``tapefs datastore
prune-job run``, ``tapefs datastore sync-job run``) all go through :func:`tapefs.scheduler.runner.run_job`, so a manual run takes
the same locks and records the same state and task log as a scheduled one.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.datastore.gc import DEFAULT_ATIME_CUTOFF_MINUTES
from tapefs.datastore.group_filter import GroupFilter
from tapefs.datastore.naming import BackupNamespace
from tapefs.datastore.prune_job import PruneJobConfig
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.datastore.sync import SyncStats
from tapefs.datastore.sync_job import SyncJobConfig
from tapefs.errors import DataDamaged, NotFound
from tapefs.jobs.backup import BackupRequest, BackupResult, backup_datastore
from tapefs.jobs.drive_session import DriveSession, drive_setup
from tapefs.jobs.maintenance_notifications import (
    garbage_collect_and_notify,
    prune_and_notify,
    sync_and_notify,
    verify_and_notify,
)
from tapefs.jobs.operator_wait import OperatorWait
from tapefs.media.inventory import Inventory
from tapefs.media.tape_config import load_media_pool_config, load_tape_config, load_tape_job, load_tape_job_config
from tapefs.progress import ProgressCallback
from tapefs.s3.telemetry import Telemetry
from tapefs.tasks.task_log import rotate_task_logs
from tapefs.tasks.worker import Task

log = logging.getLogger(__name__)

GARBAGE_COLLECTION = "garbage_collection"
PRUNE_JOB = "prunejob"
SYNC_JOB = "syncjob"
VERIFICATION_JOB = "verificationjob"
TAPE_BACKUP_JOB = "tape-backup-job"
LOG_ROTATE = "logrotate"
COUNTER_RESET = "notification-threshold-reset"
#: the order in which one scheduler tick looks at the kinds, as PBS's proxy does
KINDS = (GARBAGE_COLLECTION, PRUNE_JOB, SYNC_JOB, VERIFICATION_JOB, TAPE_BACKUP_JOB, LOG_ROTATE, COUNTER_RESET)

LOG_ROTATE_ID = "tasks"
LOG_ROTATE_SCHEDULE = "daily"
#: finished task logs older than this are removed by the daily rotation
TASK_LOG_MAX_AGE_DAYS = 30


@dataclass(frozen=True)
class ScheduledJob:
    kind: str
    id: str
    schedule: str | None  # None: runs only by hand
    what: str  # a short description for listings


@dataclass(frozen=True)
class RunOptions:
    """What a manual run may ask for beyond the job's configuration."""

    wait_seconds: float = 0.0
    progress: ProgressCallback | None = None
    dry_run: bool = False


def configured_jobs() -> list[ScheduledJob]:
    """Every job of every kind, scheduled or not, in tick order."""
    jobs: list[ScheduledJob] = []
    stores = DatastoreRegistry().entries()
    for section in stores:
        schedule = section.properties.get("gc-schedule")
        jobs.append(ScheduledJob(GARBAGE_COLLECTION, section.id, str(schedule) if schedule else None, "gc"))
    for job in PruneJobConfig().jobs():
        keep = " ".join(f"{rule}={count}" for rule, count in job.keep.counts)
        jobs.append(ScheduledJob(PRUNE_JOB, job.id, job.schedule, f"prune {job.store} {keep}"))
    for sync_job in SyncJobConfig().jobs():
        jobs.append(
            ScheduledJob(SYNC_JOB, sync_job.id, sync_job.schedule, f"sync {sync_job.remote_store} to {sync_job.store}")
        )
    for section in stores:
        schedule = section.properties.get("verify-schedule")
        jobs.append(ScheduledJob(VERIFICATION_JOB, section.id, str(schedule) if schedule else None, "verify"))
    for tape_job in load_tape_job_config().values():
        what = f"{tape_job.store} to pool {tape_job.pool} on {tape_job.drive}"
        jobs.append(ScheduledJob(TAPE_BACKUP_JOB, tape_job.id, tape_job.schedule, what))
    jobs.append(
        ScheduledJob(
            LOG_ROTATE, LOG_ROTATE_ID, LOG_ROTATE_SCHEDULE, f"remove task logs after {TASK_LOG_MAX_AGE_DAYS} days"
        )
    )
    for section in stores:
        schedule = section.properties.get("counter-reset-schedule")
        if schedule:
            jobs.append(ScheduledJob(COUNTER_RESET, section.id, str(schedule), "reset the S3 request counters"))
    return jobs


def tape_backup(
    store: str, pool: str, drive: str | None, request: BackupRequest, wait_seconds: float, progress: ProgressCallback
) -> BackupResult:
    """``tapefs backup``: datastore ``store`` to media pool ``pool`` on ``drive``."""
    datastore = DatastoreRegistry().lookup(store)
    pools = load_media_pool_config()
    if pool not in pools:
        raise NotFound(f"no media pool named {pool!r} in media-pool.cfg")
    with Inventory.open() as inventory, MediaCatalog.open() as catalog:
        wait = OperatorWait(wait_seconds, inventory) if wait_seconds else None
        with DriveSession(drive_setup(load_tape_config(), drive), wait) as session:
            return backup_datastore(datastore, pools[pool], request, session, inventory, catalog, progress)


def _run_tape_backup_job(job_id: str, task: Task, options: RunOptions) -> BackupResult:
    job = load_tape_job(job_id)
    request = BackupRequest(
        job.pool,
        job.ns,
        job.max_depth,
        tuple(job.group_filter),
        bool(job.latest_only),
        bool(job.eject_media),
        bool(job.export_media_set),
        False,
        job_id=job_id,
        includes=tuple(job.include),
        chunk_order=job.chunk_order or "inode",
    )
    task.fields.update({"job-id": job_id, "datastore": job.store, "tape-pool": job.pool, "tape-drive": job.drive})
    result = tape_backup(job.store, job.pool, job.drive, request, options.wait_seconds, options.progress or _quiet)
    for name in result.snapshots_written:
        task.log(f"wrote {name}")
    task.log(
        f"{len(result.snapshots_written)} snapshots, {result.bytes_written} bytes on {', '.join(result.tapes) or 'no tape'}"
    )
    task.fields.update({"used-tapes-list": result.tapes, "snapshot-list": result.snapshots_written})
    return result


def _run_prune_job(job_id: str, task: Task, options: RunOptions) -> Any:
    job = PruneJobConfig().lookup(job_id)
    task.fields.update({"job-id": job_id, "datastore": job.store})
    results = prune_and_notify(
        DatastoreRegistry().lookup(job.store),
        job.keep,
        job.namespace,
        job.max_depth,
        None,
        dry_run=options.dry_run,
        job_id=job_id,
    )
    removed = sum(decision.mark == "remove" for result in results for decision in result.decisions)
    task.log(f"{'would remove' if options.dry_run else 'removed'} {removed} snapshots in {len(results)} groups")
    return results


def _run_sync_job(job_id: str, task: Task, options: RunOptions) -> SyncStats:
    job = SyncJobConfig().lookup(job_id)
    registry = DatastoreRegistry()
    task.fields.update({"job-id": job_id, "datastore": job.store, "remote-datastore": job.remote_store})
    stats = sync_and_notify(
        registry.lookup(job.remote_store),
        registry.lookup(job.store),
        BackupNamespace.parse(job.remote_ns),
        BackupNamespace.parse(job.ns),
        job.max_depth,
        [GroupFilter.parse(text) for text in job.group_filter],
        job.remove_vanished,
        job.transfer_last,
        job_id=job_id,
    )
    for error in stats.errors:
        task.warn(error)
    task.log(
        f"{stats.snapshots_copied} snapshots copied, {stats.snapshots_skipped} already there, "
        f"{stats.snapshots_removed} removed; {stats.chunks_copied} chunks copied"
    )
    return stats


def _run_garbage_collection(store: str, task: Task, options: RunOptions) -> Any:
    task.fields["datastore"] = store
    result = garbage_collect_and_notify(DatastoreRegistry().lookup(store), DEFAULT_ATIME_CUTOFF_MINUTES)
    task.log(f"removed {result.removed_chunks} chunks ({result.removed_bytes} bytes), {result.pending_chunks} pending")
    task.fields.update(result.to_json())
    return result


def _run_verification(store: str, task: Task, options: RunOptions) -> Any:
    task.fields["datastore"] = store
    report = verify_and_notify(DatastoreRegistry().lookup(store), job_id=store)
    task.log(f"verified {report.snapshot_count} snapshots")
    if not report.ok:
        raise DataDamaged(f"verification of {store} failed: {report.failure()}")
    return report


def _run_log_rotation(job_id: str, task: Task, options: RunOptions) -> int:
    removed = rotate_task_logs(TASK_LOG_MAX_AGE_DAYS)
    task.log(f"removed {removed} task logs older than {TASK_LOG_MAX_AGE_DAYS} days")
    return removed


def _run_counter_reset(store: str, task: Task, options: RunOptions) -> Telemetry:
    """Zero the S3 request counters of datastore ``store``, logging what they had counted."""
    task.fields["datastore"] = store
    before = DatastoreRegistry().s3_telemetry(store).reset()
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(before.since))
    methods = ", ".join(f"{method} {count}" for method, count in before.methods.items())
    task.log(
        f"S3 request counters of {store} since {since}: {before.requests} requests ({methods}), "
        f"{before.uploaded} bytes uploaded, {before.downloaded} bytes downloaded, "
        f"{before.errors} errors, {before.retries} retries"
    )
    task.log("counters reset")
    return before


def _quiet(event) -> None:
    pass


RUNNERS: dict[str, Callable[[str, Task, RunOptions], Any]] = {
    GARBAGE_COLLECTION: _run_garbage_collection,
    PRUNE_JOB: _run_prune_job,
    SYNC_JOB: _run_sync_job,
    VERIFICATION_JOB: _run_verification,
    TAPE_BACKUP_JOB: _run_tape_backup_job,
    LOG_ROTATE: _run_log_rotation,
    COUNTER_RESET: _run_counter_reset,
}


def check_job_exists(kind: str, job_id: str) -> None:
    """Fail with NotFound before anything is locked or logged when there is no such job."""
    if kind not in RUNNERS:
        raise NotFound(f"no job kind {kind!r} (known: {', '.join(KINDS)})")
    if kind == TAPE_BACKUP_JOB:
        load_tape_job(job_id)
    elif kind == PRUNE_JOB:
        PruneJobConfig().lookup(job_id)
    elif kind == SYNC_JOB:
        SyncJobConfig().lookup(job_id)
    elif kind in (GARBAGE_COLLECTION, VERIFICATION_JOB):
        DatastoreRegistry().lookup(job_id)
    elif kind == COUNTER_RESET:
        DatastoreRegistry().s3_telemetry(job_id)
