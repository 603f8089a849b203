"""``tapefs``: the top-level command; each subcommand group lives in its own module, imported
only when it is used (see `LazyGroup`)."""

import click

from tapefs_tools.cli import CommandGroup, setup_logging

_TAPE_ADMIN = "tapefs_tools.tapefs_tape_admin"

#: command name → ``module:attribute`` of its click command
COMMANDS = {
    "datastore": "tapefs_tools.tapefs_datastore:datastore",
    "key": "tapefs_tools.tapefs_keys:key",
    "catalog": "tapefs_tools.tapefs_catalog:catalog",
    "scan": "tapefs_tools.tapefs_catalog:scan",
    "backup": "tapefs_tools.tapefs_tape_jobs:backup",
    "restore": "tapefs_tools.tapefs_tape_jobs:restore",
    "backup-job": "tapefs_tools.tapefs_backup_job:backup_job",
    "mount": "tapefs_tools.tapefs_mount:mount",
    "umount": "tapefs_tools.tapefs_mount:umount",
    "file-catalog": "tapefs_tools.tapefs_file_catalog:file_catalog",
    "labels": "tapefs_tools.tapefs_labels:labels",
    **{
        name: f"{_TAPE_ADMIN}:{name.replace('-', '_')}"
        for name in (
            "changer",
            "drive",
            "pool",
            "media",
            "label",
            "barcode-label",
            "read-label",
            "inventory",
            "load-media",
            "load-media-from-slot",
            "unload",
            "eject",
            "export-media",
            "clean",
            "rewind",
            "status",
            "cartridge-memory",
            "volume-statistics",
        )
    },
    "format": f"{_TAPE_ADMIN}:format_",
    "notification": "tapefs_tools.tapefs_notification:notification",
    "s3": "tapefs_tools.tapefs_s3:s3",
    "calendar-event": "tapefs_tools.tapefs_calendar:calendar_event",
    "scheduler": "tapefs_tools.tapefs_scheduler:scheduler",
    "job": "tapefs_tools.tapefs_scheduler:job",
    "task": "tapefs_tools.tapefs_tasks:task",
}


@click.group("tapefs", cls=CommandGroup, lazy_commands=COMMANDS)
@click.option("-v", "--verbose", is_flag=True, help="Log progress (or set TAPEFS_LOG=info|debug).")
def main(verbose: bool) -> None:
    """tapefs: PBS-compatible datastores and tape backup."""
    setup_logging(verbose)
