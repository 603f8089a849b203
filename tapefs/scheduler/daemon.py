"""``tapefs scheduler``: wake at every full minute, start the jobs that are due, each in a thread
of its own, and record how they went (PBS's proxy does the same in-process).

A job is due when the first event of its schedule after its last run has passed
(``job_state.next_run``). A job that is running (its lock is held, by this scheduler or by a manual
run) is skipped, so it never runs twice at once. The clock is injectable, and :meth:`tick` can be
called directly, so tests drive the scheduler through simulated days.
"""

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tapefs.config import paths
from tapefs.config.calendar_event import CalendarEvent, CalendarEventError
from tapefs.config.private_files import make_private_dirs
from tapefs.errors import Busy
from tapefs.jobs.request_rate_alerts import check_all_request_rates
from tapefs.scheduler.job_kinds import RunOptions, ScheduledJob, configured_jobs
from tapefs.scheduler.job_state import JobBusy, JobState, JobStateFile, next_run
from tapefs.scheduler.runner import run_job

log = logging.getLogger(__name__)

TICK_SECONDS = 60
#: the files jobs are configured in: the scheduler reads them again when one changes
CONFIG_FILES = ("datastore.cfg", "prune.cfg", "sync.cfg", "tape-job.cfg")
SCHEDULER_LOCK_NAME = "scheduler.lck"


class SchedulerRunning(Busy):
    """Another scheduler holds the scheduler lock of this state directory."""


def _run_logged(job: ScheduledJob) -> None:
    try:
        run_job(job.kind, job.id, RunOptions())
    except JobBusy:
        log.info("%s %s is running already: skipped", job.kind, job.id)
    except Exception as error:  # its task log and state file hold the error
        log.warning("%s %s failed: %s", job.kind, job.id, error)


class Scheduler:
    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        start: Callable[[ScheduledJob], None] | None = None,
        tick_seconds: float = TICK_SECONDS,
    ):
        self.clock = clock
        self.tick_seconds = tick_seconds
        self._start = start or self._start_thread
        self._threads: dict[tuple[str, str], threading.Thread] = {}
        self._events: dict[str, CalendarEvent | None] = {}
        # state files that are neither missing nor "started", by path: (mtime_ns, size, state, next run)
        self._states: dict[Path, tuple[int, int, JobState, int | None]] = {}
        self._jobs: tuple[tuple, list[ScheduledJob]] | None = None
        self._state_files: dict[tuple[str, str], JobStateFile] = {}

    def _event(self, text: str) -> CalendarEvent | None:
        if text not in self._events:
            try:
                self._events[text] = CalendarEvent.parse(text)
            except CalendarEventError as error:  # refused at create time; a hand-edited file may still have one
                log.warning("%s", error)
                self._events[text] = None
        return self._events[text]

    def _jobs_now(self) -> list[ScheduledJob]:
        """The configured jobs, read again only when one of the configuration files changed."""
        stamps = []
        for name in CONFIG_FILES:
            try:
                info = os.stat(paths.config_file(name))
                stamps.append((info.st_mtime_ns, info.st_size, info.st_ino))
            except FileNotFoundError:
                stamps.append(None)
        key = tuple(stamps)
        if self._jobs is None or self._jobs[0] != key:
            self._jobs = (key, configured_jobs())
        return self._jobs[1]

    def _next_run(self, state_file: JobStateFile, event: CalendarEvent, now: int) -> int | None | bool:
        """When the job is due next, or False while it runs; a state file is read again only
        when it changed."""
        try:
            info = os.stat(state_file.path)
        except FileNotFoundError:
            return next_run(event, state_file.ensure_created(now))
        cached = self._states.get(state_file.path)
        if cached is not None and cached[:2] == (info.st_mtime_ns, info.st_size):
            return cached[3]
        state = state_file.load(now)
        if state.kind == "started":
            return False
        when = next_run(event, state)
        self._states[state_file.path] = (info.st_mtime_ns, info.st_size, state, when)
        return when

    def due_jobs(self, now: float) -> list[ScheduledJob]:
        """The scheduled jobs whose next run is at or before ``now`` and that are not running."""
        due = []
        for job in self._jobs_now():
            if job.schedule is None:
                continue
            event = self._event(job.schedule)
            if event is None:
                continue
            state_file = self._state_files.get((job.kind, job.id))
            if state_file is None:
                state_file = self._state_files[(job.kind, job.id)] = JobStateFile(job.kind, job.id)
            when = self._next_run(state_file, event, int(now))
            if when is not None and when is not False and when <= now:
                due.append(job)
        return due

    def tick(self, now: float | None = None) -> list[ScheduledJob]:
        """Start every due job that this scheduler is not running; the jobs started. Then report
        new S3 request-rate excursions, whoever made the requests."""
        moment = self.clock() if now is None else now
        started = []
        for job in self.due_jobs(moment):
            thread = self._threads.get((job.kind, job.id))
            if thread is not None and thread.is_alive():
                continue
            log.info("starting %s %s (schedule %s)", job.kind, job.id, job.schedule)
            self._start(job)
            started.append(job)
        check_all_request_rates()
        return started

    def _start_thread(self, job: ScheduledJob) -> None:
        thread = threading.Thread(target=_run_logged, args=(job,), name=f"{job.kind}-{job.id}")
        self._threads[(job.kind, job.id)] = thread
        thread.start()

    def run(self, stop: threading.Event) -> None:
        """Tick at every multiple of ``tick_seconds`` until ``stop`` is set; then wait for the
        running jobs to end."""
        log.info("scheduler started (pid %d)", os.getpid())
        while not stop.is_set():
            try:
                self.tick()
            except Exception as error:  # a bad config file must not end the daemon
                log.error("scheduler tick failed: %s", error)
            now = self.clock()
            stop.wait(self.tick_seconds - now % self.tick_seconds)
        for thread in list(self._threads.values()):
            thread.join()
        log.info("scheduler stopped")


def hold_scheduler_lock() -> int:
    """One scheduler per state directory: a descriptor holding the lock for the process's life."""
    path = paths.state_dir() / SCHEDULER_LOCK_NAME
    make_private_dirs(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SchedulerRunning(f"a scheduler is running already ({path} is locked)") from None
    return fd
