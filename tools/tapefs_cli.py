"""``tapefs``: the top-level command; each subcommand group lives in its own module."""

import click

from tools.cli import CommandGroup, setup_logging
from tools.tapefs_backup_job import backup_job
from tools.tapefs_catalog import COMMANDS as CATALOG_COMMANDS
from tools.tapefs_datastore import datastore
from tools.tapefs_keys import key
from tools.tapefs_file_catalog import file_catalog
from tools.tapefs_mount import mount, umount
from tools.tapefs_tape_jobs import backup, restore
from tools.tapefs_tape_admin import COMMANDS as TAPE_ADMIN_COMMANDS


@click.group("tapefs", cls=CommandGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log progress (or set TAPEFS_LOG=info|debug).")
def main(verbose: bool) -> None:
    """tapefs: PBS-compatible datastores and tape backup."""
    setup_logging(verbose)


main.add_command(datastore)
main.add_command(key)
for command in CATALOG_COMMANDS:
    main.add_command(command)
main.add_command(backup); main.add_command(restore)
main.add_command(backup_job)
main.add_command(mount); main.add_command(umount); main.add_command(file_catalog)
for command in TAPE_ADMIN_COMMANDS:
    main.add_command(command)
