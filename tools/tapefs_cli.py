"""``tapefs``: the top-level command; each subcommand group lives in its own module."""

import click

from tapefs_tools.cli import CommandGroup, setup_logging
from tapefs_tools.tapefs_backup_job import backup_job
from tapefs_tools.tapefs_calendar import calendar_event
from tapefs_tools.tapefs_catalog import COMMANDS as CATALOG_COMMANDS
from tapefs_tools.tapefs_datastore import datastore
from tapefs_tools.tapefs_datastore_maintenance import COMMANDS as DATASTORE_MAINTENANCE_COMMANDS
from tapefs_tools.tapefs_file_catalog import file_catalog
from tapefs_tools.tapefs_keys import key
from tapefs_tools.tapefs_labels import labels
from tapefs_tools.tapefs_mount import mount, umount
from tapefs_tools.tapefs_notification import notification
from tapefs_tools.tapefs_s3 import DATASTORE_COMMANDS as S3_DATASTORE_COMMANDS
from tapefs_tools.tapefs_s3 import s3
from tapefs_tools.tapefs_scheduler import job, scheduler
from tapefs_tools.tapefs_tape_admin import COMMANDS as TAPE_ADMIN_COMMANDS
from tapefs_tools.tapefs_tape_jobs import backup, restore
from tapefs_tools.tapefs_tasks import task


@click.group("tapefs", cls=CommandGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log progress (or set TAPEFS_LOG=info|debug).")
def main(verbose: bool) -> None:
    """tapefs: PBS-compatible datastores and tape backup."""
    setup_logging(verbose)


for command in DATASTORE_MAINTENANCE_COMMANDS:
    datastore.add_command(command)
main.add_command(datastore)
main.add_command(key)
for command in CATALOG_COMMANDS:
    main.add_command(command)
main.add_command(backup)
main.add_command(restore)
main.add_command(backup_job)
main.add_command(mount)
main.add_command(umount)
main.add_command(file_catalog)
main.add_command(labels)
for command in TAPE_ADMIN_COMMANDS:
    main.add_command(command)
main.add_command(notification)
main.add_command(s3)
for command in S3_DATASTORE_COMMANDS:
    datastore.add_command(command)
main.add_command(calendar_event)
main.add_command(scheduler)
main.add_command(job)
main.add_command(task)
