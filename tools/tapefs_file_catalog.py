"""``tapefs file-catalog``: fill the mount's file catalog from tape (PBS tapes, rebuilt state)."""

from __future__ import annotations

import click

from tapefs.catalog.file_catalog import FileCatalog
from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.jobs.file_catalog_from_tape import record_media_set_files
from tapefs.media.inventory import Inventory
from tapefs_tools.cli import output_format_option
from tapefs_tools.tapefs_tape_jobs import drive_option, drive_session, emit_lines, wait_option


@click.command("file-catalog")
@click.argument("media_set")
@drive_option
@wait_option
@output_format_option
def file_catalog(media_set, drive, wait_seconds, output_format):
    """Record the files of every snapshot on MEDIA-SET (uuid) that `tapefs mount` cannot list yet:
    reads each snapshot archive and the chunks of its pxar metadata from tape, once."""
    with (
        Inventory.open() as inventory,
        MediaCatalog.open() as media_catalog,
        FileCatalog.open(inventory.status_dir) as files,
        drive_session(drive, wait_seconds, inventory) as session,
    ):
        try:
            result = record_media_set_files(session, inventory, media_catalog, files, media_set)
        finally:
            session.eject()
    emit_lines(
        result.to_dict(),
        output_format,
        [
            *(f"recorded {name}" for name in result.recorded),
            *(f"already recorded: {name}" for name in result.present),
            *(f"failed {name}: {error}" for name, error in result.failed.items()),
        ],
    )
    if result.failed:
        raise click.ClickException(f"{len(result.failed)} snapshots could not be recorded")
