"""``tapefs catalog``, ``tapefs scan`` and the catalog part of ``tapefs inventory --catalog``:
thin commands over ``tapefs.jobs.catalog_rebuild`` and ``tapefs.jobs.tape_scan``."""

from __future__ import annotations

import contextlib
import dataclasses
import sys

import click

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.jobs.catalog_rebuild import CatalogRebuildResult, rebuild_catalog, restore_missing_catalogs
from tapefs.jobs.drive_session import DriveSession, drive_setup
from tapefs.jobs.tape_scan import TapeFileReport, scan_tape
from tapefs.media.inventory import Inventory
from tapefs.media.tape_config import load_tape_config
from tapefs.progress import ProgressEvent
from tapefs_tools.cli import emit, format_value, output_format_option, progress_reporter, simple_table
from tapefs_tools.tapefs_tape_jobs import drive_option

label_text_option = click.option(
    "--label-text", default=None, help="Load this tape through the changer (default: the tape in the drive)."
)


@contextlib.contextmanager
def catalog_progress(label_text: str | None):
    """The job's progress, with files read; where a scan starts is always said, with how to
    continue it after an interruption."""
    files, tape = [0], [label_text or "tape"]
    with progress_reporter("catalog") as report:

        def on_event(event: ProgressEvent) -> None:
            if event.message == "tape-loaded":
                tape[0] = event.detail
            elif event.message == "scan-started":
                click.echo(
                    f"scanning tape {tape[0]} from file {event.detail}; if interrupted, "
                    f"run `{_rerun_command()}` again: it continues after the last file registered",
                    err=True,
                )
            elif event.message == "file-done":
                files[0] = int(event.detail) + 1
            detail = event.detail if event.message == "tape-loaded" else f"{files[0]} files"
            report(dataclasses.replace(event, detail=detail))

        yield on_event


def _rerun_command() -> str:
    """This command line without --force (which would start the scan anew)."""
    return " ".join(["tapefs", *(arg for arg in sys.argv[1:] if arg != "--force")])


def _session(drive: str | None) -> DriveSession:
    return DriveSession(drive_setup(load_tape_config(), drive))


def _summary_lines(result: CatalogRebuildResult, verbose: bool) -> list[str]:
    where = f"tape {result.label_text} ({result.media_uuid})"
    if result.method == "catalog-archive":
        lines = [f"{where}: catalog restored from the catalog archive at file {result.catalog_file}"]
    elif result.method == "scan":
        how = f"continued the interrupted scan at file {result.resumed_at}" if result.resumed_at else "scanned"
        lines = [f"{where}: catalog rebuilt from the tape ({how})"]
    else:
        lines = [f"{where}: nothing to catalog"]
    if result.inventorized:
        lines.append(
            f"added {result.label_text} to the inventory (media set {result.media_set}, member {result.seq_nr})"
        )
    lines += [f"note: {note}" for note in result.notes]
    lines += [f"damaged: file {d['file']} ({d['type']}): {d['error']}" for d in result.damaged]
    if result.other_catalogs:
        lines.append(f"also restored the catalogs of {', '.join(result.other_catalogs)}")
    if verbose:
        for report in result.files:
            what = " ".join(str(v) for v in (report.kind, report.store, report.snapshot) if v)
            chunks = f", {report.chunks} chunks" if report.chunks is not None else ""
            note = _describe(report)
            lines.append(f"file {report.file_number}: {what}{chunks}" + (f" ({note})" if note else ""))
            lines += [f"  chunk {c.digest.hex()} offset {c.offset} size {c.size}" for c in report.locations]
    rate = result.bytes_read / result.seconds / 1e6 if result.seconds else 0.0
    lines.append(
        f"{result.archives} archives: {result.snapshots} snapshots, {result.chunks} chunks; "
        f"{result.bytes_read} bytes read in {result.seconds:.1f} s ({rate:.1f} MB/s)"
    )
    return lines


@click.command("catalog")
@label_text_option
@click.option("--scan", is_flag=True, help="Read the whole tape instead of restoring its catalog archive.")
@click.option("--force", is_flag=True, help="Rebuild a catalog that exists (and start an interrupted scan anew).")
@click.option("--verbose", is_flag=True, help="List every file read and every chunk registered.")
@drive_option
@output_format_option
def catalog(label_text, scan, force, verbose, drive, output_format):
    """Restore the media catalog of a tape from the tape: fast from the catalog archive written
    after the data, or (--scan, and when there is none) by reading every file."""
    with (
        Inventory.open() as inventory,
        MediaCatalog.open() as media_catalog,
        _session(drive) as session,
        catalog_progress(label_text) as progress,
    ):
        result = rebuild_catalog(session, inventory, media_catalog, label_text, scan, force, progress)

    def render(out) -> None:
        for line in _summary_lines(result, verbose):
            out.print(line)

    emit(output_format, result.to_dict(), render)


def _describe(report: TapeFileReport) -> str:
    """The note column of a listing: what the header says beyond the columns, and any damage."""
    header = report.header_json
    parts = []
    if report.kind == "media-label":
        parts.append(str(header.get("label_text")) + (f", pool {header['pool']}" if header.get("pool") else ""))
    elif report.kind == "media-set-label":
        parts.append(f"member {header.get('seq_nr')}, pool {header.get('pool')}")
    elif report.kind == "catalog-archive":
        parts.append(f"catalog of member {header.get('seq_nr')}")
    elif report.kind == "unknown":
        parts.append(report.content_name)
    if report.incomplete:
        parts.append("continued on the next tape")
    if report.missing_end_marker:
        parts.append("no end marker (write aborted)")
    if report.error:
        parts.append(f"error: {report.error}")
    return "; ".join(parts)


SCAN_COLUMNS = ("file", "type", "uuid", "part", "store", "snapshot", "chunks", "size", "note")


@click.command("scan")
@label_text_option
@drive_option
@output_format_option
def scan(label_text, drive, output_format):
    """List every file on a tape: content type, content UUID, part, store, snapshot, chunks."""
    with _session(drive) as session, catalog_progress(label_text) as progress:
        reports = scan_tape(session, label_text, progress)

    def render(out) -> None:
        if not reports:
            out.print("the tape is empty")
            return
        table = simple_table(*SCAN_COLUMNS)
        # UUIDs and snapshot names whole; the note column wraps instead.
        for name in ("uuid", "snapshot"):
            table.columns[SCAN_COLUMNS.index(name)].no_wrap = True
        table.columns[SCAN_COLUMNS.index("uuid")].min_width = 36
        for report in reports:
            values = (
                report.file_number,
                report.kind,
                report.content_uuid,
                report.part_number,
                report.store,
                report.snapshot,
                report.chunks,
                report.size,
                _describe(report),
            )
            table.add_row(*(format_value(value) for value in values))
        out.print(table)

    emit(output_format, [report.to_dict() for report in reports], render)


def restore_read_catalogs(rows: list[dict], drive: str) -> None:
    """`inventory --catalog`: the fast catalog restore for the tapes the inventory just read;
    how each went goes into the row's `catalog` column. The drive is emptied afterwards."""
    read = [row["label-text"] for row in rows if row.get("result") == "read"]
    if not read:
        return
    with Inventory.open() as inventory, MediaCatalog.open() as media_catalog, _session(drive) as session:
        try:
            results = restore_missing_catalogs(session, inventory, media_catalog, read)
        finally:
            if session.label_text is not None:
                session.eject()
    methods = {result.label_text: result.method for result in results}
    for row in rows:
        row["catalog"] = methods.get(row["label-text"])
