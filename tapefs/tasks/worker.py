"""Run a piece of work as a task: :func:`run_task` gives it a UPID and a log file, copies the log
records of its thread into that file, ends the file with ``TASK OK`` / ``TASK WARNINGS: N`` /
``TASK ERROR: ...`` and tells the finish hooks.

Long jobs call :func:`check_stop` at their safe points (between snapshots, chunks written and
registered): when ``tapefs task stop`` has asked the running task to stop, it raises
:class:`TaskStopped` there, so the job ends as after any error, with everything finished so far
kept. Outside a task it does nothing.
"""

import contextlib
import contextvars
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tapefs.errors import ExitCode, TapefsError
from tapefs.tasks import task_log
from tapefs.tasks.upid import DEFAULT_AUTH_ID, Upid

log = logging.getLogger(__name__)


class TaskStopped(TapefsError):
    """The task stopped at a safe point because ``tapefs task stop`` asked it to."""

    exit_code = ExitCode.INTERRUPTED


@dataclass(frozen=True)
class TaskFinished:
    """What the finish hooks get when a task ends (notifications are built from this)."""

    kind: str  # the worker type, e.g. tape-backup-job, garbage_collection
    id: str  # the worker id: job id, datastore name, ...
    upid: str
    status: str  # ok, warning or error
    warnings: int
    duration: float  # seconds
    message: str  # the error of a failed task
    fields: dict[str, Any]  # what the job reported: datastore, snapshots, tapes, ...


_finish_hooks: list[Callable[[TaskFinished], None]] = []


def add_finish_hook(hook: Callable[[TaskFinished], None]) -> None:
    """Call ``hook`` after every task of this process ends; a failing hook is logged in the task
    log and never changes the task's result."""
    _finish_hooks.append(hook)


def remove_finish_hook(hook: Callable[[TaskFinished], None]) -> None:
    _finish_hooks.remove(hook)


_task_counter = itertools.count()
_current: contextvars.ContextVar["Task | None"] = contextvars.ContextVar("current_task", default=None)


@dataclass
class Task:
    upid: Upid
    path: Path
    stop_path: Path
    #: summary values for the finish hooks (the job fills them in)
    fields: dict[str, Any] = field(default_factory=dict)
    warnings: int = 0
    #: set by `fail`: the task ends with this error though the block returned normally
    failure: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def log(self, message: str) -> None:
        with self._lock, open(self.path, "a") as file:
            for line in str(message).splitlines() or [""]:
                file.write(task_log.log_line(line))

    def warn(self, message: str) -> None:
        self.warnings += 1
        self.log(f"WARN: {message}")

    def fail(self, message: str) -> None:
        """End the task as failed with `message` once the block is done (a verify that found
        damage reports it and exits 1 without raising, but its task must not end OK)."""
        self.failure = message
        self.log(f"ERROR: {message}")

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def check_stop(self) -> None:
        if self.stop_requested():
            raise TaskStopped(f"task {self.upid} stopped by request")


def current_task() -> Task | None:
    return _current.get()


def stop_requested() -> bool:
    """Whether the current task was asked to stop (for a job that must tidy up before it raises)."""
    task = _current.get()
    return task is not None and task.stop_requested()


def check_stop() -> None:
    """A safe point: raise TaskStopped if the current task was asked to stop."""
    task = _current.get()
    if task is not None:
        task.check_stop()


class _TaskLogHandler(logging.Handler):
    """Copies the records of the task's own thread into its log; warnings count as task warnings."""

    def __init__(self, task: Task, thread: int):
        super().__init__(logging.INFO)
        self.task, self.thread = task, thread

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            self.task.log(f"ERROR: {message}")
        elif record.levelno >= logging.WARNING:
            self.task.warn(message)
        else:
            self.task.log(message)


@contextlib.contextmanager
def run_task(
    worker_type: str,
    worker_id: str = "",
    auth_id: str = DEFAULT_AUTH_ID,
    root: Path | None = None,
    on_start: Callable[[Upid], None] | None = None,
) -> Iterator[Task]:
    """Run the block as a task of ``worker_type`` (PBS's names: tape-backup-job, garbage_collection,
    verificationjob, ...). ``on_start`` gets the UPID once the log exists (the job state records it)."""
    started = time.time()
    upid = Upid.new(worker_type, worker_id, next(_task_counter), int(started), auth_id)
    path = task_log.log_path(upid, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    task = Task(upid, path, task_log.stop_request_path(upid, root))
    task.log(f"starting {worker_type}" + (f" {worker_id}" if worker_id else ""))
    if on_start is not None:
        on_start(upid)
    handler = _TaskLogHandler(task, threading.get_ident())
    logging.getLogger().addHandler(handler)
    token = _current.set(task)
    status, message = task_log.OK, ""
    try:
        yield task
    except BaseException as error:
        status = task_log.ERROR
        message = (str(error).splitlines() or [type(error).__name__])[0]
        raise
    finally:
        _current.reset(token)
        logging.getLogger().removeHandler(handler)
        if status == task_log.OK and task.failure is not None:
            status, message = task_log.ERROR, task.failure
        elif status == task_log.OK and task.warnings:
            status = task_log.WARNING
        task.stop_path.unlink(missing_ok=True)
        finished = TaskFinished(
            worker_type, worker_id, str(upid), status, task.warnings, time.time() - started, message, task.fields
        )
        for hook in list(_finish_hooks):
            try:
                hook(finished)
            except Exception as error:  # a hook (a notification) never fails the job
                task.log(f"finish hook {getattr(hook, '__name__', hook)!r} failed: {error}")
        task.log(
            {task_log.OK: "TASK OK", task_log.WARNING: f"TASK WARNINGS: {task.warnings}"}.get(status)
            or f"TASK ERROR: {message}"
        )
