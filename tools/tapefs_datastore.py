"""``tapefs datastore ...``: create, register, list, back up, restore and verify datastores.

Thin wrappers: the work is done by tapefs.datastore.
"""

import os
import sys

import click

from tapefs.config.sizes import parse_size
from tapefs.datastore.backup import CHANGE_DETECTION_MODES, backup, parse_sources
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.key_config import KeyConfig
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.datastore.permissions import fix_permissions, group_id
from tapefs.datastore.registry import DatastoreRegistry, check_options
from tapefs.datastore.restore import restore
from tapefs.datastore.s3_backend import BackendConfig
from tapefs.datastore.verify import snapshot_label
from tapefs.errors import InvalidInput
from tapefs.jobs.maintenance_notifications import verify_and_notify
from tapefs.jobs.request_rate_alerts import request_rates_checked
from tapefs.pxar.errors import ExistingEntryError
from tapefs.pxar.extract import Overwrite
from tapefs.tasks.worker import run_task
from tapefs_tools.cli import LazyGroup, emit_json, human_size, output_format_option, print_table, progress_reporter

OVERWRITE_OPTIONS = {
    Overwrite.FILES: "--overwrite-files",
    Overwrite.SYMLINKS: "--overwrite-symlinks",
    Overwrite.HARDLINKS: "--overwrite-hardlinks",
}
PASSPHRASE_ENV = "TAPEFS_KEY_PASSPHRASE"

namespace_option = click.option(
    "--ns", "namespace", default="", metavar="NS", help="Namespace, e.g. site/a (default: root)."
)
keyfile_option = click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False),
    help=f"Encryption key file (proxmox-backup-client format); passphrase from ${PASSPHRASE_ENV} or a prompt.",
)


def _load_key(keyfile: str | None) -> CryptConfig | None:
    if keyfile is None:
        return None
    key_config = KeyConfig.load(keyfile)
    passphrase = None
    if key_config.kdf is not None:
        text = os.environ.get(PASSPHRASE_ENV)
        if text is None:
            if not sys.stdin.isatty():
                raise InvalidInput(
                    f"{keyfile} is protected by a passphrase and there is no terminal to ask for it: "
                    f"set {PASSPHRASE_ENV}"
                )
            text = click.prompt(f"Passphrase for {keyfile}", hide_input=True, err=True)
        passphrase = text.encode("utf-8")
    return key_config.decrypt(passphrase)


def s3_datastore_options(fn):
    """Settings kept in datastore.cfg for the scheduler and the telemetry alert."""
    fn = click.option(
        "--request-rate-threshold",
        type=click.IntRange(min=1),
        help="Warn when S3 requests in a minute exceed N [s3].",
    )(fn)
    fn = click.option(
        "--counter-reset-schedule", metavar="CALENDAR", help="When to zero the S3 request counters, e.g. daily [s3]."
    )(fn)
    fn = click.option("--verify-schedule", metavar="CALENDAR", help="When to verify, e.g. monthly [s3].")(fn)
    return click.option("--gc-schedule", metavar="CALENDAR", help="When to collect garbage, e.g. daily [s3].")(fn)


_MAINTENANCE = "tapefs_tools.tapefs_datastore_maintenance"
_S3 = "tapefs_tools.tapefs_s3"


@click.group(
    cls=LazyGroup,
    lazy_commands={
        **{
            name: f"{_MAINTENANCE}:{name.replace('-', '_')}"
            for name in (
                "forget",
                "protect",
                "unprotect",
                "notes",
                "owner",
                "prune",
                "prune-job",
                "gc",
                "status",
                "sync",
                "sync-job",
                "update",
            )
        },
        "telemetry": f"{_S3}:telemetry",
        "s3-refresh": f"{_S3}:s3_refresh",
    },
)
def datastore() -> None:
    """PBS-compatible datastores: create, register, list, back up, restore, verify."""


@datastore.command()
@click.argument("name")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--comment", help="Free text stored with the datastore.")
@click.option("--group", metavar="GROUP", help="A group that may read the datastore (e.g. backup); others never can.")
@click.option(
    "--backend",
    type=click.Choice(["filesystem", "s3"]),
    default="filesystem",
    show_default=True,
    help="Where chunks live: PATH itself, or an S3 bucket with PATH as the local cache.",
)
@click.option("--endpoint", "endpoint_id", metavar="ID", help="S3 endpoint (tapefs s3 endpoint create) [s3].")
@click.option("--bucket", help="Bucket; the datastore's keys go below NAME/ in it [s3].")
@click.option("--max-cache-size", metavar="SIZE", help="Bound the local chunk cache, e.g. 20GiB [s3].")
@click.option("--reuse-datastore", is_flag=True, help="Re-attach the datastore NAME already in the bucket [s3].")
@click.option("--overwrite-in-use", is_flag=True, help="Take over a datastore another host marked in use [s3].")
@s3_datastore_options
def create(
    name: str,
    path: str,
    comment: str | None,
    group: str | None,
    backend: str,
    endpoint_id: str | None,
    bucket: str | None,
    max_cache_size: str | None,
    reuse_datastore: bool,
    overwrite_in_use: bool,
    **settings,
) -> None:
    """Create a new datastore in PATH (an empty or missing directory) named NAME.

    Directories are 0750 and files 0640: the owner writes, GROUP (if given) reads. With
    --backend s3, PATH is the local cache of a datastore kept in BUCKET on ENDPOINT."""
    registry = DatastoreRegistry()
    if backend == "filesystem":
        s3_only = [option for option, value in (("--endpoint", endpoint_id), ("--bucket", bucket),
                   ("--max-cache-size", max_cache_size)) if value]  # fmt: skip
        if s3_only or reuse_datastore or overwrite_in_use or any(settings.values()):
            raise InvalidInput("--endpoint, --bucket, --max-cache-size and the S3 options need --backend s3")
        store = registry.create(name, path, comment, group)
        click.echo(f"created datastore {name} at {store.root}")
        return
    if not endpoint_id or not bucket:
        raise InvalidInput("--backend s3 needs --endpoint and --bucket")
    options = {key.replace("_", "-"): str(value) for key, value in settings.items() if value is not None}
    check_options(options)  # a bad schedule fails before the bucket is touched
    try:
        cache_size = parse_size(max_cache_size) if max_cache_size else None
    except ValueError as exc:
        raise InvalidInput(f"--max-cache-size: {exc}") from None
    s3_store = registry.create_s3(
        name, path, BackendConfig(endpoint_id, bucket, cache_size), comment, reuse_datastore, overwrite_in_use
    )
    registry.set_options(name, options)
    click.echo(f"created datastore {name} at {s3_store.root} (S3 bucket {bucket} on endpoint {endpoint_id})")


@datastore.command("fix-permissions")
@click.argument("name")
@click.option("--group", metavar="GROUP", help="Also give everything to GROUP, which may then read it.")
@output_format_option
def fix_permissions_command(name: str, group: str | None, output_format: str) -> None:
    """Restrict an existing datastore: every directory 0750, every file 0640 (owners unchanged)."""
    store = DatastoreRegistry().lookup(name)
    report = fix_permissions(store.root, group_id(group) if group is not None else None)
    if output_format != "text":
        emit_json({"directories": report.directories, "files": report.files, "changed": report.changed}, output_format)
    else:
        click.echo(
            f"checked {report.directories} directories and {report.files} files of datastore {name}, "
            f"changed {report.changed}"
        )


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
        {"name": s.id, "path": s.properties.get("path", ""), "comment": s.properties.get("comment")}
        for s in registry.entries()
    ]
    if output_format != "text":
        emit_json(entries, output_format)
    elif entries:
        print_table(["name", "path", "comment"], [[e["name"], e["path"], e["comment"] or ""] for e in entries])
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
            unfinished = {u.snapshot: u for u in store.unfinished_snapshots(group)}
            for info in store.list_snapshots(group, include_unfinished=True):
                row = {
                    "ns": str(ns),
                    "group": str(group),
                    "snapshot": str(info.snapshot),
                    "backup-time": info.snapshot.backup_time,
                }
                if not info.finished:
                    if info.snapshot not in unfinished:  # finished or removed since the listing
                        continue
                    row.update(
                        {
                            "size": None,
                            "files": [],
                            "unfinished": unfinished[info.snapshot].state,
                            "error": f"unfinished snapshot ({unfinished[info.snapshot].describe()})",
                        }
                    )
                    rows.append(row)
                    continue
                try:
                    manifest = store.load_manifest(info.snapshot)
                except DatastoreError as exc:
                    # one unreadable manifest must not hide the rest of the listing
                    row.update({"size": None, "files": [], "error": str(exc)})
                else:
                    row["size"] = sum(f.size for f in manifest.files)
                    row["files"] = [
                        {"filename": f.filename, "size": f.size, "crypt-mode": f.crypt_mode} for f in manifest.files
                    ]
                rows.append(row)
    if output_format != "text":
        emit_json(rows, output_format)
    elif rows:
        print_table(
            ["namespace", "snapshot", "size", "files"],
            [
                [
                    r["ns"] or "/",
                    r["snapshot"],
                    human_size(r["size"]) if r["size"] is not None else "?",
                    ("(unfinished, see below)" if "unfinished" in r else "(unreadable, see below)")
                    if "error" in r
                    else " ".join(f["filename"] for f in r["files"]),
                ]
                for r in rows
            ],
            right_aligned=("size",),
        )
        for row in rows:
            if "error" in row:
                click.echo(f"{row['snapshot']}: {row['error']}")
    else:
        click.echo(f"no snapshots in datastore {name}")


@datastore.command("backup")
@click.argument("name")
@click.argument("group_name", metavar="TYPE/ID")
@click.argument("sources", metavar="SOURCE...", nargs=-1, required=True)
@namespace_option
@keyfile_option
@click.option(
    "--change-detection-mode",
    type=click.Choice(CHANGE_DETECTION_MODES),
    default="legacy",
    show_default=True,
    help="As in proxmox-backup-client: legacy writes pxar v1 archives and a file catalog; data writes split "
    "archives (NAME.mpxar + NAME.ppxar, file contents chunked at file starts); metadata writes split archives "
    "too, but takes unchanged files (same size, mtime, mode, owner, xattrs, ACLs) unread from the previous "
    "snapshot's payload chunks.",
)
@click.option(
    "--upload-concurrency",
    type=click.IntRange(1, 64),
    help="Chunks encoded and stored at once (default 2, or 8 for an S3 datastore).",
)
def backup_command(
    name: str,
    group_name: str,
    sources: tuple[str, ...],
    namespace: str,
    keyfile: str | None,
    change_detection_mode: str,
    upload_concurrency: int | None,
) -> None:
    """Back up SOURCEs into a new snapshot of group TYPE/ID (type: host, vm or ct).

    A directory becomes root.pxar (with a file catalog), a file or block device
    <name>.img; name archives yourself with LABEL.pxar:DIR or LABEL.img:FILE.
    """
    store = DatastoreRegistry().lookup(name)
    group = BackupGroup.parse(group_name, BackupNamespace.parse(namespace))
    with (
        run_task("backup", f"{name}:{group}"),
        request_rates_checked(store),
        progress_reporter(f"backup {group}") as progress,
    ):
        result = backup(
            store,
            group,
            parse_sources(list(sources)),
            _load_key(keyfile),
            change_detection_mode=change_detection_mode,
            progress=progress,
            upload_concurrency=upload_concurrency,
        )
    stats = result.stats
    for leftover in result.removed_leftovers:
        click.echo(f"removed unfinished snapshot {leftover} (left by an interrupted backup)")
    click.echo(f"snapshot {result.snapshot}")
    for info in result.manifest.files:
        click.echo(f"  {info.filename}: {human_size(info.size)}")
    # a rate over a fraction of a second (mostly the final sync) says nothing
    rate = f", {stats.size / result.seconds / 1e6:.0f} MB/s" if stats.size >= 64 << 20 and result.seconds else ""
    click.echo(
        f"{human_size(stats.size)} in {stats.chunk_count} chunks ({stats.duplicate_count} known), "
        f"{human_size(stats.stored_size)} stored, {result.seconds:.1f} s{rate}"
    )
    for note in result.notes:
        click.echo(f"note: {note}")
    for filename, reuse in result.change_detection.items():
        click.echo(
            f"{filename}: {reuse.files_reused} unchanged files reused ({human_size(reuse.bytes_reused)}), "
            f"{reuse.files_read} read ({human_size(reuse.bytes_read)})"
        )


@datastore.command("restore")
@click.argument("name")
@click.argument("snapshot_name", metavar="SNAPSHOT")
@click.argument("archive")
@click.argument("target", type=click.Path())
@namespace_option
@keyfile_option
@click.option("--sync", is_flag=True, help="fsync a restored image before it gets its final name.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace existing files, symlinks and hardlinks, and give existing directories the archive's "
    "owner, mode and times.",
)
@click.option(
    "--overwrite-files",
    is_flag=True,
    help="Replace existing entries where the archive has a file (or device node, FIFO, socket); "
    "an image may replace an existing file.",
)
@click.option("--overwrite-symlinks", is_flag=True, help="Replace existing entries where the archive has a symlink.")
@click.option("--overwrite-hardlinks", is_flag=True, help="Replace existing entries where the archive has a hardlink.")
def restore_command(
    name: str,
    snapshot_name: str,
    archive: str,
    target: str,
    namespace: str,
    keyfile: str | None,
    sync: bool,
    overwrite: bool,
    overwrite_files: bool,
    overwrite_symlinks: bool,
    overwrite_hardlinks: bool,
) -> None:
    """Restore ARCHIVE of SNAPSHOT (TYPE/ID/TIME) to TARGET: a .pxar archive into a directory,
    an .img archive into a new file (or an existing block device).

    Nothing that exists in TARGET is replaced unless an --overwrite option allows it; existing
    directories are merged into and keep their owner, mode and times."""
    store = DatastoreRegistry().lookup(name)
    snapshot = BackupSnapshot.parse(snapshot_name, BackupNamespace.parse(namespace))
    allowed = Overwrite.ALL if overwrite else Overwrite.NONE
    for given, flag in (
        (overwrite_files, Overwrite.FILES),
        (overwrite_symlinks, Overwrite.SYMLINKS),
        (overwrite_hardlinks, Overwrite.HARDLINKS),
    ):
        if given:
            allowed |= flag
    try:
        with run_task("restore", f"{name}:{snapshot}"):
            result = restore(store, snapshot, archive, target, _load_key(keyfile), sync, allowed)
    except ExistingEntryError as error:
        option = OVERWRITE_OPTIONS.get(error.needed)
        hint = f"; {option} or --overwrite replaces it" if option else ""
        raise DatastoreError(f"{error}{hint}") from error
    detail = f", {result.entries} entries" if result.entries else ""
    skipped = f", {result.skipped} skipped (see warnings)" if result.skipped else ""
    click.echo(f"restored {result.archive} to {result.target} ({human_size(result.size)}{detail}{skipped})")


@datastore.command()
@click.argument("name")
@keyfile_option
@click.option("--mark-bad", is_flag=True, help="Rename corrupt chunks to <digest>.N.bad, as PBS verify does.")
@output_format_option
def verify(name: str, keyfile: str | None, mark_bad: bool, output_format: str) -> None:
    """Check every snapshot's indexes and every chunk's CRC and digest; exit 1 if anything is bad."""
    store = DatastoreRegistry().lookup(name)
    with run_task("verify", name) as task:
        report = verify_and_notify(store, _load_key(keyfile), mark_bad)
        if not report.ok:
            task.fail(f"verification of {name} failed: {report.failure()}")
    bad = [
        {"digest": digest.hex(), "problem": problem, "snapshots": sorted(report.users.get(digest, ()))}
        for digest, problem in sorted(report.bad_chunks.items())
    ]
    if output_format != "text":
        emit_json(
            {
                "ok": report.ok,
                "snapshots": report.snapshot_count,
                "chunks": report.chunk_count,
                "crc-only": report.crc_only_count,
                "key-mismatch": {k: v for k, v in sorted(report.key_mismatches.items())},
                "open-to-others": {
                    "directories": report.permissions.open_directories,
                    "files": report.permissions.open_files,
                },
                "bad-chunks": bad,
                "snapshot-errors": {k: v for k, v in sorted(report.snapshot_errors.items())},
                "unfinished-snapshots": [
                    {"snapshot": snapshot_label(u), "state": u.state, "detail": u.describe()} for u in report.unfinished
                ],
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
        for unfinished in report.unfinished:
            click.echo(f"unfinished snapshot {snapshot_label(unfinished)} ({unfinished.describe()})")
        if report.permissions.open_to_others:
            click.echo(
                f"warning: {report.permissions.open_directories} directories and {report.permissions.open_files} "
                f"files of datastore {name} are open to other users; "
                f"'tapefs datastore fix-permissions {name}' restricts them"
            )
        for snapshot, mismatch in sorted(report.key_mismatches.items()):
            click.echo(f"snapshot {snapshot}: {mismatch}; its chunks were checked by CRC only")
        reason = "no matching key" if keyfile else "no key"
        crc_only = f" ({report.crc_only_count} encrypted, CRC only: {reason})" if report.crc_only_count else ""
        verdict = "ok" if report.ok else f"FAILED: {report.failure()}"
        click.echo(f"verified {report.snapshot_count} snapshots, {report.chunk_count} chunks{crc_only}: {verdict}")
    if not report.ok:
        sys.exit(1)
