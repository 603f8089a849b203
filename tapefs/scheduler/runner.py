"""One run of a job, manual or scheduled: the job's lock, its state file and its task."""

import logging
import os
from typing import Any

from tapefs.scheduler.job_kinds import RUNNERS, RunOptions, check_job_exists
from tapefs.scheduler.job_state import JobState, JobStateFile
from tapefs.tasks import task_log
from tapefs.tasks.upid import Upid
from tapefs.tasks.worker import run_task

log = logging.getLogger(__name__)


def run_job(kind: str, job_id: str, options: RunOptions | None = None) -> Any:
    """Run job ``job_id`` of ``kind`` now and return what its work returned. Raises JobBusy when
    it is running already, and whatever the job raised (its task log and state say so too)."""
    check_job_exists(kind, job_id)
    state_file = JobStateFile(kind, job_id)
    lock = state_file.lock()
    started: list[Upid] = []

    def record_start(upid: Upid) -> None:
        started.append(upid)
        state_file.save(JobState("started", upid=upid))

    try:
        try:
            with run_task(kind, job_id, on_start=record_start) as task:
                return RUNNERS[kind](job_id, task, options or RunOptions())
        finally:
            if started:
                result = task_log.read_status(started[0])
                state_file.save(JobState("finished", upid=started[0], result=result))
    finally:
        os.close(lock)
