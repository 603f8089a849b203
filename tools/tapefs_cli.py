"""``tapefs``: the top-level command; each subcommand group lives in its own module."""

import logging
import os
import sys

import click

from tapefs_tools.tapefs_backup_job import backup_job
from tapefs_tools.tapefs_catalog import COMMANDS as CATALOG_COMMANDS
from tapefs_tools.tapefs_datastore import datastore
from tapefs_tools.tapefs_file_catalog import file_catalog
from tapefs_tools.tapefs_keys import key
from tapefs_tools.tapefs_mount import mount, umount
from tapefs_tools.tapefs_tape_admin import COMMANDS as TAPE_ADMIN_COMMANDS
from tapefs_tools.tapefs_tape_jobs import backup, restore

LOG_LEVEL_ENV = "TAPEFS_LOG"


class TapefsGroup(click.Group):
    """Any failure below ends as one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("tapefs: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # the last line of defence: report, don't dump a stack
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            click.echo(f"tapefs: error: {message}", err=True)
            logging.getLogger(__name__).debug("failure details", exc_info=True)
            ctx.exit(1)


@click.group(cls=TapefsGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log progress (or set TAPEFS_LOG=info|debug).")
def main(verbose: bool) -> None:
    """tapefs: PBS-compatible datastores and tape backup."""
    level_name = "info" if verbose else os.environ.get(LOG_LEVEL_ENV, "warning")
    logging.basicConfig(level=getattr(logging, level_name.upper(), logging.WARNING), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


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
for command in TAPE_ADMIN_COMMANDS:
    main.add_command(command)
