"""``tapefs backup-job``: tape backup jobs in tape-job.cfg, as ``proxmox-tape backup-job``.

``run ID`` is ``tapefs backup`` with the job's settings, run as ``tapefs scheduler`` runs it at
the times of its ``schedule`` (same lock, job state and task log). The job's end is a notification
(``tapefs notification``, docs/notifications.md); ``notify-user`` and ``notification-mode`` are
kept for PBS and ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import click

from tapefs.config.paths import config_file
from tapefs.media.tape_config import (
    CHUNK_ORDERS,
    TAPE_JOB_CONFIG_NAME,
    TapeJobConfig,
    config_digest,
    config_keys,
    create_section,
    load_tape_job,
    load_tape_job_config,
    remove_section,
    update_section,
)
from tapefs.scheduler.job_kinds import TAPE_BACKUP_JOB, RunOptions
from tapefs.scheduler.runner import run_job
from tapefs_tools.cli import (
    emit,
    format_value,
    key_value_table,
    output_format_option,
    progress_reporter,
    simple_table,
)
from tapefs_tools.tapefs_tape_jobs import print_backup_result, wait_option

LIST_COLUMNS = ("id", "store", "pool", "drive", "schedule", "next-run", "comment")
IGNORED_NOTE = (
    "note: notify-user and notification-mode are kept in tape-job.cfg for PBS and ignored; "
    "tapefs sends notifications through its matchers and targets (tapefs notification)"
)


def _job_dict(job: TapeJobConfig) -> dict:
    data = {key.replace("_", "-"): value for key, value in vars(job).items() if value not in (None, ())}
    if job.group_filter:
        data["group-filter"] = list(job.group_filter)
    if job.include:
        data["include"] = list(job.include)
    return data


def _format_time(epoch: int | None) -> str | None:
    return None if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


@click.group("backup-job")
def backup_job() -> None:
    """Tape backup jobs (tape-job.cfg)."""


@backup_job.command("list")
@output_format_option
def job_list(output_format: str) -> None:
    """The configured jobs, with the next scheduled time."""
    now = time.time()
    rows = [{**_job_dict(job), "next-run": job.next_run(now)} for job in load_tape_job_config().values()]

    def render(out) -> None:
        if not rows:
            out.print("no tape backup jobs configured")
            return
        table = simple_table(*LIST_COLUMNS)
        for row in rows:
            values = {**row, "next-run": _format_time(row["next-run"])}
            table.add_row(*(format_value(values.get(column)) for column in LIST_COLUMNS))
        out.print(table)

    emit(output_format, rows, render)


@backup_job.command("show")
@click.argument("job_id", metavar="ID")
@output_format_option
def job_show(job_id: str, output_format: str) -> None:
    """One job's configuration."""
    data = {**_job_dict(load_tape_job(job_id)), "digest": config_digest(config_file(TAPE_JOB_CONFIG_NAME))}
    emit(output_format, data, lambda out: out.print(key_value_table(list(data.items()))))


def job_options(required: bool) -> Callable[[Callable], Callable]:
    def decorate(fn: Callable) -> Callable:
        for option in reversed(
            (
                click.option("--store", required=required, help="Datastore to back up."),
                click.option("--pool", required=required, help="Media pool to write to."),
                click.option("--drive", required=required, help="Drive name from tape.cfg."),
                click.option("--schedule", default=None, help="Calendar event: when `tapefs scheduler` runs it."),
                click.option("--eject-media", type=click.BOOL, default=None, help="Eject the tape at the end."),
                click.option(
                    "--export-media-set",
                    type=click.BOOL,
                    default=None,
                    help="Move the set's tapes to import/export slots at the end.",
                ),
                click.option(
                    "--latest-only", type=click.BOOL, default=None, help="Only the newest snapshot of each group."
                ),
                click.option("--notify-user", default=None, help="Kept for PBS and ignored (see tapefs notification)."),
                click.option(
                    "--notification-mode", default=None, help="Kept for PBS and ignored (see tapefs notification)."
                ),
                click.option(
                    "--group-filter",
                    "group_filter",
                    multiple=True,
                    help="[include:|exclude:]type:T | group:T/ID | regex:RE (repeatable; "
                    "on update the list replaces the old one).",
                ),
                click.option(
                    "--include",
                    "include",
                    multiple=True,
                    help="Group filter or retention selector such as keep-yearly=* (repeatable; "
                    "on update the list replaces the old one).",
                ),
                click.option("--ns", default=None, help="Namespace to back up (default: root), with its children."),
                click.option("--max-depth", type=int, default=None, help="Namespace levels below --ns (0..7)."),
                click.option("--comment", default=None, help="Free text."),
                click.option(
                    "--chunk-order",
                    type=click.Choice(CHUNK_ORDERS),
                    default=None,
                    help="Order of each index's chunks on tape (default inode, as PBS).",
                ),
            )
        ):
            fn = option(fn)
        return fn

    return decorate


def _changes(properties: dict) -> dict:
    lists = ("group_filter", "include")
    changes = {key: value for key, value in properties.items() if value is not None and key not in lists}
    for key in lists:
        if properties[key]:
            changes[key] = tuple(properties[key])
    if changes.get("notify_user") or changes.get("notification_mode"):
        click.echo(IGNORED_NOTE, err=True)
    return changes


@backup_job.command("create")
@click.argument("job_id", metavar="ID")
@job_options(required=True)
def job_create(job_id: str, **properties) -> None:
    """Add a job."""
    create_section(TapeJobConfig(job_id, **_changes(properties)))


@backup_job.command("update")
@click.argument("job_id", metavar="ID")
@job_options(required=False)
@click.option(
    "--delete",
    multiple=True,
    type=click.Choice([key for key in config_keys(TapeJobConfig) if key not in ("store", "pool", "drive")]),
    help="Remove a property (repeatable).",
)
@click.option("--digest", default=None, help="Refuse if tape-job.cfg changed since this digest was shown.")
def job_update(job_id: str, delete, digest, **properties) -> None:
    """Change a job."""
    update_section(TapeJobConfig, job_id, _changes(properties), delete, digest=digest)


@backup_job.command("remove")
@click.argument("job_id", metavar="ID")
def job_remove(job_id: str) -> None:
    """Remove a job."""
    remove_section(TapeJobConfig, job_id)


@backup_job.command("run")
@click.argument("job_id", metavar="ID")
@wait_option
@output_format_option
def job_run(job_id: str, wait_seconds: float, output_format: str) -> None:
    """Run a job now, as the scheduler runs it: `tapefs backup` with the job's store, pool, drive
    and options, as task tape-backup-job, recorded in the job's state."""
    with progress_reporter(f"backup job {job_id}") as progress:
        result = run_job(TAPE_BACKUP_JOB, job_id, RunOptions(wait_seconds=wait_seconds, progress=progress))
    print_backup_result(result, output_format)
