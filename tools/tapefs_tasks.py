"""``tapefs task list|log|stop``: the task log, as ``proxmox-backup-manager task``."""

from __future__ import annotations

import datetime
import sys
import time

import click

from tapefs.errors import InvalidInput
from tapefs.tasks.task_log import RUNNING, find_task, list_tasks, log_path, read_status, request_stop
from tapefs_tools.cli import emit, format_value, output_format_option, simple_table

LIST_COLUMNS = ("upid", "type", "id", "start", "end", "status")
FOLLOW_POLL_SECONDS = 0.2


def format_time(epoch: float | None) -> str | None:
    return None if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def parse_since(text: str | None) -> int | None:
    """Epoch seconds, or a local date and time as YYYY-MM-DD[ HH:MM[:SS]]."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.datetime.fromisoformat(text).timestamp())
    except ValueError:
        raise InvalidInput(f"invalid --since {text!r} (epoch seconds or YYYY-MM-DD[ HH:MM[:SS]])") from None


@click.group("task")
def task() -> None:
    """Tasks: every job and long command, with its log (STATE/tasks)."""


@task.command("list")
@click.option("--running", is_flag=True, help="Only tasks that are still running.")
@click.option("--since", metavar="TIME", help="Only tasks started at or after TIME (epoch or YYYY-MM-DD[ HH:MM]).")
@output_format_option
def task_list(running: bool, since: str | None, output_format: str) -> None:
    """The tasks, newest first."""
    rows = [status.to_json() for status in list_tasks(parse_since(since), running)]

    def render(out) -> None:
        if not rows:
            out.print("no tasks")
            return
        table = simple_table(*LIST_COLUMNS)
        for row in rows:
            status = {"ok": "OK", "warning": f"WARNINGS: {row['warnings']}", "error": f"ERROR: {row['message']}"}
            table.add_row(
                row["upid"],
                row["worker-type"],
                format_value(row["worker-id"] or None),
                format_value(format_time(row["starttime"])),
                format_value(format_time(row["endtime"])),
                status.get(row["status"], row["status"]),
            )
        out.print(table)

    emit(output_format, rows, render)


@task.command("log")
@click.argument("upid", metavar="UPID")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the task ends.")
def task_log_command(upid: str, follow: bool) -> None:
    """Print the log of task UPID."""
    task_upid = find_task(upid)
    with open(log_path(task_upid)) as file:
        while True:
            chunk = file.read()
            if chunk:
                sys.stdout.write(chunk)
                sys.stdout.flush()
            elif not follow or read_status(task_upid).status != RUNNING:
                break
            else:
                time.sleep(FOLLOW_POLL_SECONDS)
        sys.stdout.write(file.read())


@task.command("stop")
@click.argument("upid", metavar="UPID")
def task_stop(upid: str) -> None:
    """Ask task UPID to stop at its next safe point (what it finished is kept)."""
    status = request_stop(find_task(upid))
    if status.status == RUNNING:
        click.echo(f"asked {upid} to stop; `tapefs task log {upid} --follow` shows when it has")
    else:
        click.echo(f"{upid} is not running ({status.summary})")
