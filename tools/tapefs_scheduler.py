"""``tapefs scheduler`` (the daemon) and ``tapefs job list``."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import click

from tapefs.config.atomic_file import atomic_write
from tapefs.config.calendar_event import CalendarEvent
from tapefs.scheduler.daemon import TICK_SECONDS, Scheduler, hold_scheduler_lock
from tapefs.scheduler.job_kinds import configured_jobs
from tapefs.scheduler.job_state import JobStateFile, next_run
from tapefs_tools.cli import emit, format_value, output_format_option, simple_table
from tapefs_tools.tapefs_tasks import format_time

JOB_COLUMNS = ("kind", "id", "what", "schedule", "last-run", "result", "upid", "next-run")


def _daemonize(pid_file: Path) -> None:
    """Detach (double fork, new session, stdio to /dev/null); the pid file names the daemon."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    atomic_write(pid_file, f"{os.getpid()}\n".encode(), mode=0o644)


@click.command("scheduler")
@click.option("--background", is_flag=True, help="Detach from the terminal (needs --pid-file).")
@click.option("--pid-file", type=click.Path(dir_okay=False, path_type=Path), help="Write the daemon's pid here.")
@click.option(
    "--tick",
    "tick_seconds",
    type=click.FloatRange(min=1),
    default=TICK_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="How often to look for due jobs (PBS: every minute; less for tests and demonstrations).",
)
def scheduler(background: bool, pid_file: Path | None, tick_seconds: float) -> None:
    """Run scheduled jobs: tape backup, prune, GC and verify schedules, task log rotation.
    Runs in the foreground (for systemd) until SIGTERM or SIGINT."""
    if background and pid_file is None:
        raise click.UsageError("--background needs --pid-file")
    lock = hold_scheduler_lock()
    if background:
        assert pid_file is not None
        _daemonize(pid_file.absolute())
    elif pid_file is not None:
        atomic_write(pid_file, f"{os.getpid()}\n".encode(), mode=0o644)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        Scheduler(tick_seconds=tick_seconds).run(stop)
    finally:
        os.close(lock)
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
    sys.exit(0)


@click.group("job")
def job() -> None:
    """Scheduled jobs of every kind."""


@job.command("list")
@output_format_option
def job_list(output_format: str) -> None:
    """Every job with its schedule, last run, result and next run."""
    now = int(time.time())
    rows = []
    for entry in configured_jobs():
        state = JobStateFile(entry.kind, entry.id).load(now)
        result = state.result
        upcoming = None
        if entry.schedule is not None and state.kind != "started":
            upcoming = next_run(CalendarEvent.parse(entry.schedule), state)
        rows.append(
            {
                "kind": entry.kind,
                "id": entry.id,
                "what": entry.what,
                "schedule": entry.schedule,
                "last-run": state.upid.starttime if state.upid else None,
                "upid": str(state.upid) if state.upid else None,
                "result": "running" if state.kind == "started" else (result.summary if result else None),
                "endtime": result.endtime if result else None,
                "next-run": max(upcoming, now) if upcoming is not None else None,
            }
        )

    def render(out) -> None:
        table = simple_table(*JOB_COLUMNS)
        for row in rows:
            shown = {**row, "last-run": format_time(row["last-run"]), "next-run": format_time(row["next-run"])}
            table.add_row(*(format_value(shown[column]) for column in JOB_COLUMNS))
        out.print(table)

    emit(output_format, rows, render)
