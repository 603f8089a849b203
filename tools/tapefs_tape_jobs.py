"""``tapefs backup`` and ``tapefs restore``: thin commands over ``tapefs.jobs``."""

from __future__ import annotations

import click

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.datastore.snapshot_include import parse_includes
from tapefs.jobs.backup import BackupRequest, BackupResult
from tapefs.jobs.drive_session import DriveSession, drive_setup
from tapefs.jobs.namespace_map import NamespaceMap
from tapefs.jobs.operator_wait import OperatorWait
from tapefs.jobs.restore import StoreMap, check_owner, media_selection, restore_media_set
from tapefs.jobs.restore_plan import request_retrieval, restore_plan
from tapefs.media.inventory import Inventory
from tapefs.media.tape_config import CHUNK_ORDERS, load_tape_config
from tapefs.scheduler.job_kinds import tape_backup
from tapefs.tasks.worker import run_task
from tapefs_tools.cli import emit, emit_json, format_value, output_format_option, progress_reporter, simple_table

drive_option = click.option(
    "--drive",
    envvar="PROXMOX_TAPE_DRIVE",
    help="Drive name from tape.cfg (default: env PROXMOX_TAPE_DRIVE, else the only drive).",
)
wait_option = click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    metavar="SECONDS",
    help="When a tape is not in the library, ask for it and wait this long for it to be inserted (0: fail at once).",
)


def drive_session(drive: str | None, wait_seconds: float, inventory: Inventory) -> DriveSession:
    wait = OperatorWait(wait_seconds, inventory) if wait_seconds else None
    return DriveSession(drive_setup(load_tape_config(), drive), wait)


def emit_lines(value: dict, output_format: str, text_lines: list[str]) -> None:
    if output_format == "text":
        for line in text_lines:
            click.echo(line)
    else:
        emit_json(value, output_format)


@click.command("backup")
@click.argument("store")
@click.argument("pool")
@drive_option
@click.option("--latest-only", is_flag=True, help="Only the newest snapshot of each group.")
@click.option("--ns", "namespace", help="Namespace to back up (default: root), with its children.")
@click.option("--max-depth", type=click.IntRange(0, 7), help="Namespace levels below --ns (default: all).")
@click.option(
    "--group", "group_filters", multiple=True, help="[include:|exclude:]type:T | group:T/ID | regex:RE (repeatable)."
)
@click.option(
    "--include",
    "includes",
    multiple=True,
    metavar="FILTER|keep-RULE=N|*",
    help="A group filter as --group takes, or a retention selector such as keep-yearly=* or keep-monthly=12: "
    "only the snapshots such a prune would keep (repeatable).",
)
@click.option("--eject-media", is_flag=True, help="Eject the tape at the end.")
@click.option("--export-media-set", is_flag=True, help="Move the set's tapes to import/export slots at the end.")
@click.option("--force-media-set", is_flag=True, help="Start a new media set.")
@click.option(
    "--chunk-order",
    type=click.Choice(CHUNK_ORDERS),
    default="inode",
    show_default=True,
    help="Order of each index's chunks on tape: by chunk file inode (PBS's default) or index order.",
)
@wait_option
@output_format_option
def backup(
    store,
    pool,
    drive,
    latest_only,
    namespace,
    max_depth,
    group_filters,
    includes,
    eject_media,
    export_media_set,
    force_media_set,
    chunk_order,
    wait_seconds,
    output_format,
):
    """Back up datastore STORE to media pool POOL."""
    parse_includes(includes)  # a bad expression fails before any tape moves
    request = BackupRequest(
        pool,
        namespace,
        max_depth,
        tuple(group_filters),
        latest_only,
        eject_media,
        export_media_set,
        force_media_set,
        includes=tuple(includes),
        chunk_order=chunk_order,
    )
    with run_task("tape-backup", store), progress_reporter(f"backup {store}") as progress:
        result = tape_backup(store, pool, drive, request, wait_seconds, progress)
    print_backup_result(result, output_format)


def print_backup_result(result: BackupResult, output_format: str) -> None:
    rate = result.bytes_written / result.seconds / 1e6 if result.seconds else 0.0
    emit_lines(
        result.to_dict(),
        output_format,
        [
            f"media set {result.media_set}"
            + (f" (new: {result.new_media_set_reason})" if result.new_media_set_reason else ""),
            *(f"wrote {name}" for name in result.snapshots_written),
            *(f"already on the set: {name}" for name in result.snapshots_skipped),
            *(f"warning: {warning}" for warning in result.warnings),
            f"{len(result.snapshots_written)} snapshots, {result.chunks_written} chunks, "
            f"{result.bytes_written} bytes in {result.seconds:.1f} s ({rate:.1f} MB/s) "
            f"on {', '.join(result.tapes) or 'no tape'}",
        ],
    )


PLAN_COLUMNS = ("seq-nr", "label-text", "place", "where", "element", "note", "reason")


def _print_restore_plan(
    media_set: str, snapshots: list[str] | None, output_format: str, notify_drive: str | None = None
) -> None:
    """``notify_drive``: the drive the restore will use, to ask for the missing tapes there."""
    tape_config = load_tape_config()
    with Inventory.open() as inventory, MediaCatalog.open() as catalog:
        tapes = restore_plan(media_set, inventory, catalog, tape_config, snapshots)
    if notify_drive is not None:
        setup = drive_setup(tape_config, notify_drive or None)
        request_retrieval(media_set, tapes, setup.changer_name or setup.name, setup.changer_name is not None)
    rows = [tape.to_dict() for tape in tapes]

    def render(out) -> None:
        table = simple_table(*PLAN_COLUMNS)
        for row in rows:
            table.add_row(*(format_value(row[column]) for column in PLAN_COLUMNS))
        out.print(table)
        away = [row["label-text"] for row in rows if row["place"] in ("vault", "offline", "import-export")]
        out.print(f"to bring into the library first: {', '.join(away)}" if away else "every tape is in the library")

    emit(output_format, rows, render)


@click.command("restore")
@click.argument("arguments", nargs=-1, required=True, metavar="[MEDIA-SET] STORE-MAP [SNAPSHOT]...")
@click.option(
    "--media",
    "label_text",
    metavar="LABEL",
    default=None,
    help="Restore what this tape holds (its snapshots; chunks they share with other tapes of its set are "
    "read from those) instead of naming a MEDIA-SET.",
)
@click.option(
    "--owner",
    metavar="AUTHID",
    default=None,
    help="Owner of the groups the restore creates (user@realm or user@realm!token); "
    "existing groups of another owner are refused.",
)
@click.option(
    "--namespaces",
    "--namespace",
    "namespaces",
    multiple=True,
    metavar="store=SOURCE-STORE[,source=NS][,target=NS][,max-depth=N]",
    help="Restore the snapshots of SOURCE-STORE under NS (default: root) into target NS "
    "(repeatable; with any mapping and no SNAPSHOT, only mapped stores are restored).",
)
@drive_option
@wait_option
@click.option(
    "--plan",
    is_flag=True,
    default=False,
    help="Only list the tapes the restore needs and where each is (drive, slot, vault, offline).",
)
@click.option(
    "--notify",
    is_flag=True,
    default=False,
    help="With --plan: ask for each tape outside the library with a tape-load notification.",
)
@output_format_option
def restore(arguments, label_text, owner, namespaces, drive, wait_seconds, plan, notify, output_format):
    """Restore MEDIA-SET (uuid), or with --media LABEL what that tape holds, into datastores:
    STORE-MAP is TARGET or SOURCE=TARGET[,…]; SNAPSHOT is [STORE:][ns/NS/…]TYPE/ID/TIME
    (default: everything)."""
    if label_text is None and len(arguments) < 2:
        raise click.UsageError("give MEDIA-SET and STORE-MAP (or --media LABEL and STORE-MAP)")
    if notify and not plan:
        raise click.UsageError("--notify goes with --plan (a restore that waits for a tape asks for it by itself)")
    check_owner(owner)
    namespace_map = NamespaceMap.parse(namespaces)
    if label_text is None:
        media_set, store_map, *snapshots = arguments
        targets = StoreMap.parse([store_map], DatastoreRegistry().lookup)
        selected = list(snapshots) or None
    else:
        store_map, *snapshots = arguments
        targets = StoreMap.parse([store_map], DatastoreRegistry().lookup)
        with Inventory.open() as inventory, MediaCatalog.open() as catalog:
            media_set, selected = media_selection(label_text, inventory, catalog, list(snapshots) or None)
    if plan:
        _print_restore_plan(media_set, selected, output_format, (drive or "") if notify else None)
        return
    with (
        run_task("tape-restore", media_set),
        Inventory.open() as inventory,
        MediaCatalog.open() as catalog,
        drive_session(drive, wait_seconds, inventory) as session,
        progress_reporter("restore") as progress,
    ):
        result = restore_media_set(
            media_set, targets, session, inventory, catalog, selected, progress, namespace_map, owner
        )
    for kept in result.snapshots_kept:
        click.echo(f"tapefs: warning: snapshot {kept} already exists; kept as it was, not restored from tape", err=True)
    kept = f", {len(result.snapshots_kept)} existing snapshots kept as they were" if result.snapshots_kept else ""
    emit_lines(
        result.to_dict(),
        output_format,
        [
            *(
                f"restored {name}" + (f" as {', '.join(result.targets[name])}" if namespace_map else "")
                for name in result.snapshots_restored
            ),
            *(f"kept as it was: {name}" for name in result.snapshots_kept),
            *([f"read tapes {', '.join(result.tapes)}"] if result.tapes else []),
            f"{len(result.snapshots_restored)} snapshots, {result.chunks_restored} chunks in {result.seconds:.1f} s"
            f"{kept}",
        ],
    )
