"""Per-job state files, as PBS keeps them: ``STATE/jobstates/KIND-ID.json`` holding one of

* ``{"created": {"time": EPOCH}}`` (the job was first seen then; it has never run),
* ``{"started": {"upid": "UPID:..."}}`` (a run began),
* ``{"finished": {"upid": "UPID:...", "state": TASKSTATE, "updated": EPOCH|null}}``, TASKSTATE
  being ``{"OK": {"endtime": N}}``, ``{"Warning": {"count": N, "endtime": N}}``,
  ``{"Error": {"message": "...", "endtime": N}}`` or ``{"Unknown": {"endtime": N}}``.

``KIND-ID.lck`` beside it is flocked for the whole run, by a manual run and a scheduled one alike,
so one job never runs twice at once. A ``started`` state whose lock is free belongs to a run that
died (``kill -9``); it reads as that task's result from its log, which is ``unknown`` without a
final line.

The next run is the first event after the last run (the ``created`` time, else ``updated``, else
the start time of the last run): after downtime that is already past, so a job that missed any
number of slots runs once, and then follows its schedule again.
"""

import fcntl
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from tapefs.config import paths
from tapefs.config.atomic_file import atomic_write
from tapefs.config.calendar_event import CalendarEvent
from tapefs.config.private_files import make_private_dirs
from tapefs.errors import Busy
from tapefs.tasks import task_log
from tapefs.tasks.task_log import TaskStatus
from tapefs.tasks.upid import Upid

log = logging.getLogger(__name__)

JOB_STATE_DIR_NAME = "jobstates"
STATE_FILE_MODE = 0o644
#: a job seen for the first time counts as created this long ago, as in PBS
SCHEDULE_FALLBACK_OFFSET = 30

_TASK_STATE_NAMES = {
    task_log.OK: "OK",
    task_log.WARNING: "Warning",
    task_log.ERROR: "Error",
    task_log.UNKNOWN: "Unknown",
}


class JobBusy(Busy):
    """The job is running already (its lock is held)."""


def job_state_dir() -> Path:
    return paths.state_dir() / JOB_STATE_DIR_NAME


@dataclass(frozen=True)
class JobState:
    """What the state file says, with a dead ``started`` run resolved from its task log."""

    kind: str  # created, started, finished or unknown
    time: int | None = None  # created: when
    upid: Upid | None = None
    result: TaskStatus | None = None  # finished (or started and died): the task's result
    updated: int | None = None

    def last_run_time(self) -> int | None:
        if self.kind == "created":
            return self.time
        if self.updated is not None:
            return self.updated
        if self.upid is not None:
            return self.upid.starttime
        return None

    def to_json(self) -> dict:
        if self.kind == "created":
            return {"created": {"time": self.time}}
        if self.kind == "started" and self.upid is not None:
            return {"started": {"upid": str(self.upid)}}
        if self.kind == "finished" and self.upid is not None and self.result is not None:
            return {
                "finished": {"upid": str(self.upid), "state": _task_state_json(self.result), "updated": self.updated}
            }
        return {"unknown": None}


def _task_state_json(result: TaskStatus) -> dict:
    name = _TASK_STATE_NAMES.get(result.status, "Unknown")
    body: dict = {"endtime": result.endtime}
    if result.status == task_log.WARNING:
        body = {"count": result.warnings, **body}
    if result.status == task_log.ERROR:
        body = {"message": result.message, **body}
    return {name: body}


def _task_state_from_json(upid: Upid, value: dict) -> TaskStatus:
    ((name, body),) = value.items()
    status = {v: k for k, v in _TASK_STATE_NAMES.items()}.get(name, task_log.UNKNOWN)
    return TaskStatus(upid, status, body.get("endtime"), int(body.get("count", 0)), body.get("message", ""))


class JobStateFile:
    """The state and lock files of one job (``kind`` is PBS's job type, e.g. tape-backup-job)."""

    def __init__(self, kind: str, job_id: str, directory: Path | None = None):
        self.kind, self.job_id = kind, job_id
        base = directory or job_state_dir()
        self.path = base / f"{kind}-{job_id}.json"
        self.lock_path = base / f"{kind}-{job_id}.lck"

    def load(self, now: int) -> JobState:
        try:
            value = json.loads(self.path.read_text())
        except FileNotFoundError:
            return JobState("created", time=now - SCHEDULE_FALLBACK_OFFSET)
        except (OSError, ValueError):
            log.warning("%s: unreadable job state", self.path)
            return JobState("unknown")
        try:
            return self._from_json(value)
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("%s: unreadable job state", self.path)
            return JobState("unknown")

    def _from_json(self, value) -> JobState:
        if value == "unknown" or "unknown" in value:
            return JobState("unknown")
        if "created" in value:
            return JobState("created", time=int(value["created"]["time"]))
        if "started" in value:
            upid = Upid.parse(value["started"]["upid"])
            if self.is_running():
                return JobState("started", upid=upid)
            # the run died without recording its end: its log says how far it got
            try:
                result = task_log.read_status(upid)
            except Busy:
                raise
            except Exception:
                result = TaskStatus(upid, task_log.UNKNOWN)
            if result.status == task_log.RUNNING:
                result = TaskStatus(upid, task_log.UNKNOWN)
            return JobState("finished", upid=upid, result=result)
        body = value["finished"]
        upid = Upid.parse(body["upid"])
        return JobState(
            "finished", upid=upid, result=_task_state_from_json(upid, body["state"]), updated=body.get("updated")
        )

    def save(self, state: JobState, sync: bool = True) -> None:
        make_private_dirs(self.path.parent)
        atomic_write(self.path, json.dumps(state.to_json()).encode() + b"\n", mode=STATE_FILE_MODE, sync=sync)

    def ensure_created(self, now: int) -> JobState:
        """The state, written as ``created`` the first time a job is seen, so its first run counts
        from then and not from whenever the scheduler looks next."""
        state = self.load(now)
        if not self.path.exists() and state.kind == "created":
            # not synced: lost in a crash, the job just counts as new again
            self.save(state, sync=False)
        return state

    def is_running(self) -> bool:
        """Whether some process holds the job's lock."""
        if not self.lock_path.exists():
            return False
        fd = os.open(self.lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def lock(self) -> int:
        """Take the job's lock (a descriptor to close when the run ends) or raise JobBusy."""
        make_private_dirs(self.lock_path.parent)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JobBusy(f"{self.kind} {self.job_id} is running already") from None
        return fd


def next_run(event: CalendarEvent, state: JobState) -> int | None:
    """When the job is due next: the first event after its last run."""
    last = state.last_run_time()
    if last is None:  # an unreadable state: count from the epoch, i.e. run at the next tick
        return event.next_after(0)
    return event.next_after(last)
