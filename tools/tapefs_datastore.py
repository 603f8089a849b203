"""``tapefs datastore ...``: create, register, list, back up, restore and verify datastores.

Thin wrappers: the work is done by tapefs.datastore.
"""

import json
import os
import sys

import click
from rich import box
from rich.console import Console
from rich.table import Table

from tapefs.datastore.backup import CHANGE_DETECTION_MODES, backup, parse_sources
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.key_config import KeyConfig
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.datastore.restore import restore
from tapefs.datastore.verify import verify_datastore

OUTPUT_FORMATS = ("text", "json", "json-pretty")
PASSPHRASE_ENV = "TAPEFS_KEY_PASSPHRASE"

output_format_option = click.option(
    "--output-format", type=click.Choice(OUTPUT_FORMATS), default="text", show_default=True, help="Output format."
)
namespace_option = click.option("--ns", "namespace", default="", metavar="NS", help="Namespace, e.g. site/a (default: root).")
keyfile_option = click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False),
    help=f"Encryption key file (proxmox-backup-client format); passphrase from ${PASSPHRASE_ENV} or a prompt.",
)


def _emit_json(value, output_format: str) -> None:
    indent = 2 if output_format == "json-pretty" else None
    click.echo(json.dumps(value, indent=indent, ensure_ascii=False))


def _print_table(columns: list[str], rows: list[list[str]], right_aligned: tuple[str, ...] = ()) -> None:
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, justify="right" if column in right_aligned else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    Console(soft_wrap=True, width=max(200, os.get_terminal_size().columns if sys.stdout.isatty() else 200)).print(table)


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _load_key(keyfile: str | None) -> CryptConfig | None:
    if keyfile is None:
        return None
    key_config = KeyConfig.load(keyfile)
    passphrase = None
    if key_config.kdf is not None:
        text = os.environ.get(PASSPHRASE_ENV)
        if text is None:
            text = click.prompt(f"Passphrase for {keyfile}", hide_input=True, err=True)
        passphrase = text.encode("utf-8")
    return key_config.decrypt(passphrase)


@click.group()
def datastore() -> None:
    """PBS-compatible datastores: create, register, list, back up, restore, verify."""


@datastore.command()
@click.argument("name")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--comment", help="Free text stored with the datastore.")
def create(name: str, path: str, comment: str | None) -> None:
    """Create a new datastore in PATH (an empty or missing directory) named NAME."""
    store = DatastoreRegistry().create(name, path, comment)
    click.echo(f"created datastore {name} at {store.root}")


@datastore.command()
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--comment", help="Free text stored with the datastore.")
def add(name: str, path: str, comment: str | None) -> None:
    """Register an existing datastore (e.g. one a PBS server made) as NAME."""
    store = DatastoreRegistry().add(name, path, comment)
    click.echo(f"added datastore {name} at {store.root}")


@datastore.command("list")
@output_format_option
def list_datastores(output_format: str) -> None:
    """List the registered datastores."""
    registry = DatastoreRegistry()
    entries = [
        {"name": s.id, "path": s.properties.get("path", ""), "comment": s.properties.get("comment", "")}
        for s in registry.entries()
    ]
    if output_format != "text":
        _emit_json(entries, output_format)
    elif entries:
        _print_table(["name", "path", "comment"], [[e["name"], e["path"], e["comment"]] for e in entries])
    else:
        click.echo(f"no datastores configured ({registry.config_path})")


@datastore.command()
@click.argument("name")
@namespace_option
@output_format_option
def snapshots(name: str, namespace: str, output_format: str) -> None:
    """List the snapshots of datastore NAME, in NS and the namespaces below it."""
    store = DatastoreRegistry().lookup(name)
    rows = []
    for ns in store.list_namespaces(BackupNamespace.parse(namespace)):
        for group in store.list_groups(ns):
            for info in store.list_snapshots(group):
                row = {"ns": str(ns), "group": str(group), "snapshot": str(info.snapshot),
                       "backup-time": info.snapshot.backup_time}
                try:
                    manifest = store.load_manifest(info.snapshot)
                except DatastoreError as exc:
                    # one unreadable manifest must not hide the rest of the listing
                    row.update({"size": None, "files": [], "error": str(exc)})
                else:
                    row["size"] = sum(f.size for f in manifest.files)
                    row["files"] = [{"filename": f.filename, "size": f.size, "crypt-mode": f.crypt_mode} for f in manifest.files]
                rows.append(row)
    if output_format != "text":
        _emit_json(rows, output_format)
    elif rows:
        _print_table(
            ["namespace", "snapshot", "size", "files"],
            [
                [r["ns"] or "/", r["snapshot"], _human_size(r["size"]) if r["size"] is not None else "?",
                 "(unreadable, see below)" if "error" in r else " ".join(f["filename"] for f in r["files"])]
                for r in rows
            ],
            right_aligned=("size",),
        )
        for row in rows:
            if "error" in row:
                click.echo(f"{row['snapshot']}: {row['error']}")
    else:
        click.echo(f"no snapshots in datastore {name}")


def _check_change_detection_mode(ctx, param, value: str) -> str:
    if value == "metadata":
        raise click.BadParameter("PBS's metadata mode (reusing the previous snapshot's chunks for unchanged files) "
                                 "is not supported; use data, which reads every file")
    if value not in CHANGE_DETECTION_MODES:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(CHANGE_DETECTION_MODES)}")
    return value


@datastore.command("backup")
@click.argument("name")
@click.argument("group_name", metavar="TYPE/ID")
@click.argument("sources", metavar="SOURCE...", nargs=-1, required=True)
@namespace_option
@keyfile_option
@click.option("--change-detection-mode", metavar="[legacy|data]", default="legacy", show_default=True,
              callback=_check_change_detection_mode,
              help="As in proxmox-backup-client: legacy writes pxar v1 archives and a file catalog; data writes split "
                   "archives (NAME.mpxar + NAME.ppxar, file contents chunked at file starts). PBS's metadata mode "
                   "(reusing unchanged files' chunks) is not supported.")
def backup_command(name: str, group_name: str, sources: tuple[str, ...], namespace: str, keyfile: str | None,
                   change_detection_mode: str) -> None:
    """Back up SOURCEs into a new snapshot of group TYPE/ID (type: host, vm or ct).

    A directory becomes root.pxar (with a file catalog), a file or block device
    <name>.img; name archives yourself with LABEL.pxar:DIR or LABEL.img:FILE.
    """
    store = DatastoreRegistry().lookup(name)
    group = BackupGroup.parse(group_name, BackupNamespace.parse(namespace))
    result = backup(store, group, parse_sources(list(sources)), _load_key(keyfile),
                    change_detection_mode=change_detection_mode)
    stats = result.stats
    click.echo(f"snapshot {result.snapshot}")
    for info in result.manifest.files:
        click.echo(f"  {info.filename}: {_human_size(info.size)}")
    # a rate over a fraction of a second (mostly the final sync) says nothing
    rate = f", {stats.size / result.seconds / 1e6:.0f} MB/s" if stats.size >= 64 << 20 and result.seconds else ""
    click.echo(
        f"{_human_size(stats.size)} in {stats.chunk_count} chunks ({stats.duplicate_count} known), "
        f"{_human_size(stats.stored_size)} stored, {result.seconds:.1f} s{rate}"
    )


@datastore.command("restore")
@click.argument("name")
@click.argument("snapshot_name", metavar="SNAPSHOT")
@click.argument("archive")
@click.argument("target", type=click.Path())
@namespace_option
@keyfile_option
@click.option("--sync", is_flag=True, help="fsync a restored image before it gets its final name.")
def restore_command(name: str, snapshot_name: str, archive: str, target: str, namespace: str, keyfile: str | None,
                    sync: bool) -> None:
    """Restore ARCHIVE of SNAPSHOT (TYPE/ID/TIME) to TARGET: a .pxar archive into a directory,
    an .img archive into a new file (or an existing block device)."""
    store = DatastoreRegistry().lookup(name)
    snapshot = BackupSnapshot.parse(snapshot_name, BackupNamespace.parse(namespace))
    result = restore(store, snapshot, archive, target, _load_key(keyfile), sync)
    detail = f", {result.entries} entries" if result.entries else ""
    skipped = f", {result.skipped} skipped (see warnings)" if result.skipped else ""
    click.echo(f"restored {result.archive} to {result.target} ({_human_size(result.size)}{detail}{skipped})")


@datastore.command()
@click.argument("name")
@keyfile_option
@click.option("--mark-bad", is_flag=True, help="Rename corrupt chunks to <digest>.N.bad, as PBS verify does.")
@output_format_option
def verify(name: str, keyfile: str | None, mark_bad: bool, output_format: str) -> None:
    """Check every snapshot's indexes and every chunk's CRC and digest; exit 1 if anything is bad."""
    store = DatastoreRegistry().lookup(name)
    report = verify_datastore(store, _load_key(keyfile), mark_bad)
    bad = [
        {"digest": digest.hex(), "problem": problem, "snapshots": sorted(report.users.get(digest, ()))}
        for digest, problem in sorted(report.bad_chunks.items())
    ]
    if output_format != "text":
        _emit_json(
            {
                "ok": report.ok,
                "snapshots": report.snapshot_count,
                "chunks": report.chunk_count,
                "crc-only": report.crc_only_count,
                "bad-chunks": bad,
                "snapshot-errors": {k: v for k, v in sorted(report.snapshot_errors.items())},
            },
            output_format,
        )
    else:
        for entry in bad:
            click.echo(f"bad chunk {entry['digest']}: {entry['problem']}")
            for snapshot in entry["snapshots"]:
                click.echo(f"  used by {snapshot}")
        for snapshot, problems in sorted(report.snapshot_errors.items()):
            for problem in problems:
                click.echo(f"snapshot {snapshot}: {problem}")
        crc_only = f" ({report.crc_only_count} encrypted, CRC only: no key)" if report.crc_only_count else ""
        verdict = "ok" if report.ok else f"FAILED: {len(bad)} bad chunks, {len(report.affected_snapshots())} snapshots affected"
        click.echo(f"verified {report.snapshot_count} snapshots, {report.chunk_count} chunks{crc_only}: {verdict}")
    if not report.ok:
        sys.exit(1)


# forget, protect, notes, owner, prune, gc, status and sync add themselves to the group above
from tools import tapefs_datastore_maintenance  # noqa: E402,F401
