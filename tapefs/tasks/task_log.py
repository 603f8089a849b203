"""The task log directory: ``STATE/tasks/XX/UPID``, one text file per task, XX being the low byte
of the process start time in hex, as PBS lays it out. Every line is ``TIME: MESSAGE`` (RFC 3339
local time); the last line of a finished task is ``TIME: TASK OK``, ``TIME: TASK WARNINGS: N`` or
``TIME: TASK ERROR: MESSAGE``. A log without such a line belongs to a task that is still running
or whose process died (``unknown``).

Stop requests are files ``STATE/tasks/stop/UPID``: ``tapefs task stop`` writes one, the running
task sees it at its next safe point.
"""

import datetime
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tapefs.config import paths
from tapefs.errors import NotFound
from tapefs.tasks.upid import Upid

log = logging.getLogger(__name__)

TASK_DIR_NAME = "tasks"
STOP_DIR_NAME = "stop"
#: PBS reads the status from the end of the log; a last line is never longer than this
_TAIL_BYTES = 8192

RUNNING, OK, WARNING, ERROR, UNKNOWN = "running", "ok", "warning", "error", "unknown"


def task_dir() -> Path:
    return paths.state_dir() / TASK_DIR_NAME


def log_path(upid: Upid, root: Path | None = None) -> Path:
    return (root or task_dir()) / f"{upid.pstart & 0xFF:02X}" / str(upid)


def stop_request_path(upid: Upid, root: Path | None = None) -> Path:
    return (root or task_dir()) / STOP_DIR_NAME / str(upid)


def log_line(message: str, when: float | None = None) -> str:
    stamp = datetime.datetime.fromtimestamp(time.time() if when is None else when).astimezone()
    return f"{stamp.isoformat(timespec='seconds')}: {message}\n"


@dataclass(frozen=True)
class TaskStatus:
    upid: Upid
    status: str  # running, ok, warning, error or unknown
    endtime: int | None = None
    warnings: int = 0
    message: str = ""  # the error of a failed task

    @property
    def summary(self) -> str:
        """PBS's short form: OK, WARNINGS: N, the error, running or unknown."""
        return {
            OK: "OK",
            WARNING: f"WARNINGS: {self.warnings}",
            ERROR: self.message,
            RUNNING: "running",
            UNKNOWN: "unknown",
        }[self.status]

    def to_json(self) -> dict:
        return {
            "upid": str(self.upid),
            "worker-type": self.upid.worker_type,
            "worker-id": self.upid.worker_id,
            "user": self.upid.auth_id,
            "starttime": self.upid.starttime,
            "endtime": self.endtime,
            "status": self.status,
            "warnings": self.warnings,
            "message": self.message,
        }


def _parse_end_line(line: str) -> tuple[str, int | None, int, str] | None:
    stamp, separator, message = line.partition(": TASK ")
    if not separator:
        return None
    try:
        endtime: int | None = int(datetime.datetime.fromisoformat(stamp).timestamp())
    except ValueError:
        endtime = None
    if message == "OK":
        return OK, endtime, 0, ""
    if message.startswith("WARNINGS: "):
        count = message.removeprefix("WARNINGS: ")
        return WARNING, endtime, int(count) if count.isdigit() else 0, ""
    if message.startswith("ERROR: "):
        return ERROR, endtime, 0, message.removeprefix("ERROR: ")
    return None


def read_status(upid: Upid, root: Path | None = None) -> TaskStatus:
    """The task's state from the end of its log (running while its process lives)."""
    path = log_path(upid, root)
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - _TAIL_BYTES))
            tail = file.read().decode(errors="replace")
    except FileNotFoundError:
        raise NotFound(f"no task {upid} (no log at {path})") from None
    lines = tail.rstrip("\n").splitlines()
    parsed = _parse_end_line(lines[-1]) if lines else None
    if parsed is not None:
        status, endtime, warnings, message = parsed
        return TaskStatus(upid, status, endtime, warnings, message)
    if upid.is_alive():
        return TaskStatus(upid, RUNNING)
    return TaskStatus(upid, UNKNOWN, int(path.stat().st_mtime), 0, "the task's process ended without a result")


def all_task_logs(root: Path | None = None) -> Iterator[tuple[Upid, Path]]:
    base = root or task_dir()
    if not base.is_dir():
        return
    for bucket in base.iterdir():
        if bucket.name == STOP_DIR_NAME or not bucket.is_dir():
            continue
        for entry in bucket.iterdir():
            try:
                yield Upid.parse(entry.name), entry
            except ValueError:
                continue


def list_tasks(since: int | None = None, running_only: bool = False, root: Path | None = None) -> list[TaskStatus]:
    """Tasks newest first; ``since``: only those started at or after that time."""
    found = []
    for upid, _path in all_task_logs(root):
        if since is not None and upid.starttime < since:
            continue
        try:
            status = read_status(upid, root)
        except NotFound:  # removed by log rotation meanwhile
            continue
        if running_only and status.status != RUNNING:
            continue
        found.append(status)
    found.sort(key=lambda status: (status.upid.starttime, status.upid.pid, status.upid.task_id), reverse=True)
    return found


def find_task(text: str, root: Path | None = None) -> Upid:
    upid = Upid.parse(text)
    if not log_path(upid, root).exists():
        raise NotFound(f"no task {text} in {root or task_dir()}")
    return upid


def request_stop(upid: Upid, root: Path | None = None) -> TaskStatus:
    """Ask a running task to stop at its next safe point; its status as it is now."""
    status = read_status(upid, root)
    if status.status == RUNNING:
        path = stop_request_path(upid, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{time.time():.0f}\n")
    return status


def rotate_task_logs(max_age_days: float, now: float | None = None, root: Path | None = None) -> int:
    """Remove the logs of finished tasks that ended more than ``max_age_days`` ago (and stale stop
    requests); the number of logs removed. A running task's log is never removed."""
    cutoff = (time.time() if now is None else now) - max_age_days * 86400
    removed = 0
    for upid, path in list(all_task_logs(root)):
        try:
            if path.stat().st_mtime >= cutoff or read_status(upid, root).status == RUNNING:
                continue
            path.unlink()
            stop_request_path(upid, root).unlink(missing_ok=True)
            removed += 1
        except FileNotFoundError:
            continue
    if removed:
        log.info("task log rotation removed %d logs older than %g days", removed, max_age_days)
    return removed
