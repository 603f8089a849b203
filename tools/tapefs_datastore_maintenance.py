"""``tapefs datastore ...`` maintenance: forget, protect, notes, owner, prune, prune jobs,
garbage collection, status, sync.

Registered on the ``datastore`` group of tools.tapefs_datastore; the work is done by the
library modules in tapefs.datastore.
"""

import sys
import time
from collections.abc import Callable

import click

from tapefs.datastore.gc import DEFAULT_ATIME_CUTOFF_MINUTES
from tapefs.datastore.group_filter import GroupFilter
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.datastore.prune import KEEP_RULES, GroupPruneResult, KeepOptions
from tapefs.datastore.prune_job import OTHER_KEYS as PRUNE_JOB_KEYS
from tapefs.datastore.prune_job import PruneJob, PruneJobConfig, check_max_depth
from tapefs.datastore.registry import UPDATABLE_KEYS, DatastoreRegistry
from tapefs.datastore.snapshot_admin import (
    describe_snapshot,
    group_notes,
    group_owner,
    remove_snapshot,
    set_group_notes,
    set_group_owner,
    set_protected,
    set_snapshot_notes,
    snapshot_notes,
)
from tapefs.datastore.status import datastore_status
from tapefs.datastore.sync import SyncStats
from tapefs.datastore.sync_job import KEYS as SYNC_JOB_KEYS
from tapefs.datastore.sync_job import REQUIRED_KEYS as SYNC_JOB_REQUIRED_KEYS
from tapefs.datastore.sync_job import SyncJob, SyncJobConfig
from tapefs.jobs.maintenance_notifications import garbage_collect_and_notify, prune_and_notify, sync_and_notify
from tapefs.scheduler.job_kinds import PRUNE_JOB, SYNC_JOB
from tapefs.scheduler.runner import run_job
from tapefs.tasks.worker import run_task
from tapefs_tools.cli import emit_json, human_size, output_format_option, print_table
from tapefs_tools.tapefs_datastore import namespace_option

max_depth_option = click.option(
    "--max-depth", type=click.IntRange(0, 7), default=None, help="Namespace levels below NS to include (default: all)."
)


def keep_options(function):
    for rule in reversed(KEEP_RULES):
        function = click.option(
            f"--{rule}",
            rule.replace("-", "_"),
            type=click.IntRange(min=0),
            default=None,
            metavar="N",
            help=f"PBS's {rule}.",
        )(function)
    return function


def _keep_from_arguments(arguments: dict) -> KeepOptions:
    return KeepOptions.from_mapping({rule: arguments.pop(rule.replace("-", "_")) for rule in KEEP_RULES})


def _snapshot(text: str, namespace: str) -> BackupSnapshot:
    return BackupSnapshot.parse(text, BackupNamespace.parse(namespace))


@click.command()
@click.argument("name")
@click.argument("snapshot_name", metavar="SNAPSHOT")
@namespace_option
def forget(name: str, snapshot_name: str, namespace: str) -> None:
    """Remove SNAPSHOT (TYPE/ID/TIME); refused while it is protected."""
    snapshot = _snapshot(snapshot_name, namespace)
    remove_snapshot(DatastoreRegistry().lookup(name), snapshot)
    click.echo(f"removed {describe_snapshot(snapshot)}")


@click.command()
@click.argument("name")
@click.argument("snapshot_name", metavar="SNAPSHOT")
@namespace_option
def protect(name: str, snapshot_name: str, namespace: str) -> None:
    """Protect SNAPSHOT from forget and prune (PBS's .protected marker)."""
    snapshot = _snapshot(snapshot_name, namespace)
    set_protected(DatastoreRegistry().lookup(name), snapshot, True)
    click.echo(f"protected {describe_snapshot(snapshot)}")


@click.command()
@click.argument("name")
@click.argument("snapshot_name", metavar="SNAPSHOT")
@namespace_option
def unprotect(name: str, snapshot_name: str, namespace: str) -> None:
    """Remove the protection of SNAPSHOT."""
    snapshot = _snapshot(snapshot_name, namespace)
    set_protected(DatastoreRegistry().lookup(name), snapshot, False)
    click.echo(f"unprotected {describe_snapshot(snapshot)}")


@click.command()
@click.argument("name")
@click.argument("target", metavar="GROUP|SNAPSHOT")
@namespace_option
@click.option("--set", "new_notes", metavar="TEXT", help="Replace the notes with TEXT.")
@click.option("--clear", is_flag=True, help="Remove the notes.")
@output_format_option
def notes(name: str, target: str, namespace: str, new_notes: str | None, clear: bool, output_format: str) -> None:
    """Show or change the notes of a group (TYPE/ID) or a snapshot (TYPE/ID/TIME)."""
    if new_notes is not None and clear:
        raise click.UsageError("--set and --clear exclude each other")
    store = DatastoreRegistry().lookup(name)
    ns = BackupNamespace.parse(namespace)
    if target.count("/") == 1:
        subject = BackupGroup.parse(target, ns)
        read, write = group_notes, set_group_notes
    else:
        subject = BackupSnapshot.parse(target, ns)
        read, write = snapshot_notes, set_snapshot_notes
    if new_notes is not None or clear:
        write(store, subject, "" if clear else new_notes)
    text = read(store, subject)
    if output_format != "text":
        emit_json({"notes": text}, output_format)
    elif new_notes is None and not clear:
        click.echo(text, nl=not text.endswith("\n"))


@click.command()
@click.argument("name")
@click.argument("group_name", metavar="TYPE/ID")
@namespace_option
@click.option("--set", "new_owner", metavar="AUTHID", help="Make AUTHID (user@realm or user@realm!token) the owner.")
@output_format_option
def owner(name: str, group_name: str, namespace: str, new_owner: str | None, output_format: str) -> None:
    """Show or change the owner of group TYPE/ID."""
    store = DatastoreRegistry().lookup(name)
    group = BackupGroup.parse(group_name, BackupNamespace.parse(namespace))
    if new_owner is not None:
        set_group_owner(store, group, new_owner)
    current = group_owner(store, group)
    if output_format != "text":
        emit_json({"owner": current}, output_format)
    else:
        click.echo(current)


def _run_prune(
    store_name: str,
    keep: KeepOptions,
    namespace: BackupNamespace,
    max_depth: int | None,
    group: BackupGroup | None,
    dry_run: bool,
    output_format: str,
) -> None:
    store = DatastoreRegistry().lookup(store_name)
    with run_task("prune", store_name):
        results = prune_and_notify(store, keep, namespace, max_depth, group, dry_run=dry_run)
    _print_prune(results, keep, dry_run, output_format)


def _print_prune(results: list[GroupPruneResult], keep: KeepOptions, dry_run: bool, output_format: str) -> None:
    rows = []
    for result in results:
        for decision in result.decisions:
            snapshot = decision.candidate.snapshot
            action = decision.mark
            if snapshot in result.errors:
                action = "failed"
            elif snapshot in result.skipped:
                action = "kept-running"
            rows.append(
                {
                    "ns": str(snapshot.group.namespace),
                    "snapshot": str(snapshot),
                    "action": action,
                    "rule": decision.rule,
                    "finished": decision.candidate.finished,
                    "error": result.errors.get(snapshot),
                }
            )
    failed = [row for row in rows if row["error"]]
    if output_format != "text":
        emit_json({"dry-run": dry_run, "snapshots": rows}, output_format)
    else:
        if rows:
            print_table(
                ["namespace", "snapshot", "action", "rule"],
                [
                    [
                        r["ns"] or "/",
                        r["snapshot"] + ("" if r["finished"] else " (unfinished)"),
                        r["action"],
                        r["rule"] or "",
                    ]
                    for r in rows
                ],
            )
        for row in failed:
            click.echo(f"{row['snapshot']}: {row['error']}", err=True)
        removed = sum(r["action"] == "remove" for r in rows)
        verb = "would remove" if dry_run else "removed"
        click.echo(
            f"{verb} {removed} of {len(rows)} snapshots in {len(results)} groups"
            + ("" if keep.keeps_something else " (no keep option given: everything is kept)")
        )
    if failed:
        sys.exit(1)


@click.command()
@click.argument("name")
@click.argument("group_name", metavar="[TYPE/ID]", required=False)
@namespace_option
@max_depth_option
@keep_options
@click.option("--dry-run", is_flag=True, help="Only show what would be kept and removed.")
@output_format_option
def prune(
    name: str, group_name: str | None, namespace: str, max_depth: int | None, dry_run: bool, output_format: str, **keep
) -> None:
    """Remove the snapshots the --keep-* rules do not keep, in group TYPE/ID or in every group
    of NS and the namespaces below it. Protected snapshots are always kept."""
    ns = BackupNamespace.parse(namespace)
    group = BackupGroup.parse(group_name, ns) if group_name else None
    _run_prune(name, _keep_from_arguments(keep), ns, max_depth, group, dry_run, output_format)


@click.group("prune-job")
def prune_job() -> None:
    """Named prune settings, kept in prune.cfg."""


@prune_job.command("create")
@click.argument("job_id", metavar="JOB")
@click.argument("store_name", metavar="NAME")
@namespace_option
@max_depth_option
@keep_options
@click.option("--comment", default="", help="Free text stored with the job.")
@click.option("--schedule", default=None, metavar="EVENT", help="Calendar event: when `tapefs scheduler` runs it.")
def prune_job_create(
    job_id: str, store_name: str, namespace: str, max_depth: int | None, comment: str, schedule: str | None, **keep
) -> None:
    """Store prune job JOB for datastore NAME."""
    DatastoreRegistry().lookup(store_name)
    config = PruneJobConfig()
    config.add(
        PruneJob(
            job_id,
            store_name,
            _keep_from_arguments(keep),
            BackupNamespace.parse(namespace),
            check_max_depth(max_depth),
            comment,
            schedule,
        )
    )
    click.echo(f"created prune job {job_id} in {config.config_path}")


@prune_job.command("update")
@click.argument("job_id", metavar="JOB")
@click.option("--store", default=None, metavar="NAME", help="The datastore to prune.")
@click.option("--ns", default=None, metavar="NS", help="Namespace to prune.")
@click.option("--max-depth", type=click.IntRange(min=0), default=None, help="Namespace levels below --ns.")
@keep_options
@click.option("--schedule", default=None, metavar="EVENT", help="Calendar event: when `tapefs scheduler` runs it.")
@click.option("--comment", default=None, help="Free text stored with the job.")
@click.option(
    "--delete",
    multiple=True,
    type=click.Choice([key for key in (*PRUNE_JOB_KEYS, *KEEP_RULES) if key != "store"]),
    help="Remove a property (repeatable).",
)
def prune_job_update(job_id: str, delete: tuple[str, ...], **settings) -> None:
    """Change prune job JOB; options not given stay as they are."""
    job = PruneJobConfig().update(job_id, _config_changes(settings), delete)
    click.echo(f"updated prune job {job.id}")


def _config_changes(settings: dict) -> dict[str, str]:
    """The options given to an update command, as config keys (``keep_daily`` → ``keep-daily``)."""
    return {key.replace("_", "-"): str(value) for key, value in settings.items() if value is not None}


@prune_job.command("list")
@output_format_option
def prune_job_list(output_format: str) -> None:
    """List the prune jobs."""
    config = PruneJobConfig()
    _print_jobs(
        [job.to_json() for job in config.jobs()],
        output_format,
        ["job", "store", "namespace", "max-depth", "keep", "schedule", "comment"],
        lambda j: [
            j["id"],
            j["store"],
            j["ns"] or "/",
            "" if j["max-depth"] is None else str(j["max-depth"]),
            " ".join(f"{rule}={j[rule]}" for rule in KEEP_RULES if rule in j),
            j.get("schedule", ""),
            j["comment"],
        ],
        f"no prune jobs ({config.config_path})",
    )


def _print_jobs(
    jobs: list[dict], output_format: str, headers: list[str], row: Callable[[dict], list[str]], none_text: str
) -> None:
    """A job listing: JSON, a table of `row(job)` lines, or `none_text` when there is no job."""
    if output_format != "text":
        emit_json(jobs, output_format)
    elif jobs:
        print_table(headers, [row(job) for job in jobs])
    else:
        click.echo(none_text)


@prune_job.command("remove")
@click.argument("job_id", metavar="JOB")
def prune_job_remove(job_id: str) -> None:
    """Delete prune job JOB."""
    PruneJobConfig().remove(job_id)
    click.echo(f"removed prune job {job_id}")


@prune_job.command("run")
@click.argument("job_id", metavar="JOB")
@click.option("--dry-run", is_flag=True, help="Only show what would be kept and removed.")
@output_format_option
def prune_job_run(job_id: str, dry_run: bool, output_format: str) -> None:
    """Prune as job JOB says."""
    job = PruneJobConfig().lookup(job_id)
    if dry_run:
        _run_prune(job.store, job.keep, job.namespace, job.max_depth, None, dry_run, output_format)
        return
    _print_prune(run_job(PRUNE_JOB, job_id), job.keep, dry_run, output_format)


@click.command()
@click.argument("name")
@click.option(
    "--atime-cutoff",
    type=click.IntRange(min=0),
    default=DEFAULT_ATIME_CUTOFF_MINUTES,
    show_default=True,
    metavar="MINUTES",
    help="Remove chunks unused for this long (PBS's gc-atime-cutoff).",
)
@output_format_option
def gc(name: str, atime_cutoff: int, output_format: str) -> None:
    """Garbage collection: remove the chunks no snapshot uses."""
    store = DatastoreRegistry().lookup(name)
    with run_task("garbage_collection", name) as task:
        result = garbage_collect_and_notify(store, atime_cutoff)
        task.fields.update(result.to_json())
    if output_format != "text":
        emit_json(result.to_json(), output_format)
        return
    for snapshot in result.removed_unfinished:
        click.echo(f"removed unfinished snapshot {snapshot} (left by an interrupted backup)")
    click.echo(f"index files: {result.index_file_count}, {human_size(result.index_data_bytes)} of data")
    click.echo(
        f"removed: {result.removed_chunks} chunks, {human_size(result.removed_bytes)}"
        f" ({result.removed_bad} bad copies, {result.removed_temp} temp files)"
    )
    click.echo(
        f"pending: {result.pending_chunks} chunks, {human_size(result.pending_bytes)} (a later run removes them)"
    )
    click.echo(
        f"on disk: {result.disk_chunks} chunks, {human_size(result.disk_bytes)}; "
        f"deduplication factor {result.dedup_factor:.2f}"
    )
    if result.still_bad:
        click.echo(f"bad chunks still in use: {result.still_bad}")
    if result.missing_chunks:
        click.echo(
            f"MISSING: {result.missing_chunks} chunks, e.g. {', '.join(result.missing_examples[:3])} "
            "(run verify to see the snapshots affected)"
        )
    click.echo(f"took {result.seconds:.1f} s")


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _print_status(status: dict) -> None:
    click.echo(f"datastore {status['name']} ({status['path']})")
    click.echo(
        f"  space: {human_size(status['used-bytes'])} used of {human_size(status['total-bytes'])}, "
        f"{human_size(status['available-bytes'])} available"
    )
    click.echo(
        f"  contents: {status['namespaces']} namespaces, {status['groups']} groups, {status['snapshots']} snapshots "
        f"({status['protected-snapshots']} protected, {status['unfinished-snapshots']} unfinished), "
        f"{status['chunks']} chunks"
    )
    gc_result = status["last-gc"]
    if gc_result is None:
        click.echo("  last gc: never")
    else:
        click.echo(
            f"  last gc: {_when(gc_result['started'])}, removed {gc_result['removed-chunks']} chunks "
            f"({human_size(gc_result['removed-bytes'])}), {gc_result['pending-chunks']} pending, "
            f"{gc_result['disk-chunks']} on disk ({human_size(gc_result['disk-bytes'])}), "
            f"deduplication factor {gc_result['dedup-factor']:.2f}"
        )
    verify_result = status["last-verify"]
    if verify_result is None:
        click.echo("  last verify: never")
    else:
        verdict = (
            "ok"
            if verify_result["ok"]
            else (
                f"FAILED ({verify_result['bad-chunks']} bad chunks, "
                f"{verify_result['snapshot-errors']} snapshots with errors)"
            )
        )
        click.echo(
            f"  last verify: {_when(verify_result['time'])}, {verify_result['snapshots']} snapshots, "
            f"{verify_result['chunks']} chunks: {verdict}"
        )
    if len(status["gc-history"]) > 1:
        click.echo("  gc history:")
        print_table(
            ["started", "seconds", "removed", "pending", "on disk", "dedup"],
            [
                [
                    _when(g["started"]),
                    f"{g['seconds']:.1f}",
                    human_size(g["removed-bytes"]),
                    human_size(g["pending-bytes"]),
                    human_size(g["disk-bytes"]),
                    f"{g['dedup-factor']:.2f}",
                ]
                for g in status["gc-history"]
            ],
            right_aligned=("seconds", "removed", "pending", "on disk", "dedup"),
        )


@click.command()
@click.argument("names", metavar="[NAME]...", nargs=-1)
@output_format_option
def status(names: tuple[str, ...], output_format: str) -> None:
    """Space, contents, last garbage collection (with history) and last verify of datastores
    NAME (default: every registered one)."""
    registry = DatastoreRegistry()
    names = names or tuple(section.id for section in registry.entries())
    statuses = [datastore_status(registry.lookup(name)).to_json() for name in names]
    if output_format != "text":
        emit_json(statuses, output_format)
    elif not statuses:
        click.echo(f"no datastores configured ({registry.config_path})")
    for entry in statuses if output_format == "text" else ():
        _print_status(entry)


@click.command()
@click.argument("source_name", metavar="SOURCE")
@click.argument("target_name", metavar="TARGET")
@namespace_option
@click.option("--target-ns", default="", metavar="NS", help="Namespace in TARGET that NS maps to (default: root).")
@max_depth_option
@click.option(
    "--group-filter",
    "group_filters",
    multiple=True,
    metavar="FILTER",
    help="[include:|exclude:]type:TYPE, group:TYPE/ID or regex:REGEX; repeatable.",
)
@click.option("--remove-vanished", is_flag=True, help="Remove snapshots and groups SOURCE no longer has.")
@click.option(
    "--transfer-last",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Copy only the newest N snapshots of each group.",
)
@output_format_option
def sync(
    source_name: str,
    target_name: str,
    namespace: str,
    target_ns: str,
    max_depth: int | None,
    group_filters: tuple[str, ...],
    remove_vanished: bool,
    transfer_last: int | None,
    output_format: str,
) -> None:
    """Copy the snapshots TARGET lacks from datastore SOURCE to datastore TARGET (a pull from
    TARGET's side, a push from SOURCE's). Only missing chunks are copied; encrypted snapshots
    are copied as they are."""
    filters = [GroupFilter.parse(text) for text in group_filters]
    registry = DatastoreRegistry()
    source, target = registry.lookup(source_name), registry.lookup(target_name)
    with run_task("sync", f"{source_name}/{target_name}") as task:
        stats = sync_and_notify(
            source,
            target,
            BackupNamespace.parse(namespace),
            BackupNamespace.parse(target_ns),
            max_depth,
            filters,
            remove_vanished,
            transfer_last,
        )
        for error in stats.errors:
            task.warn(error)
    _print_sync(stats, output_format)


def _print_sync(stats: SyncStats, output_format: str) -> None:
    if output_format != "text":
        emit_json(stats.to_json(), output_format)
    else:
        for name in stats.copied:
            click.echo(f"copied {name}")
        for name in stats.removed:
            click.echo(f"removed {name}")
        for error in stats.errors:
            click.echo(f"error: {error}", err=True)
        # a rate over a few megabytes says nothing
        rate = (
            f", {stats.chunk_bytes_copied / stats.seconds / 1e6:.0f} MB/s"
            if stats.chunk_bytes_copied >= 64 << 20 and stats.seconds
            else ""
        )
        click.echo(
            f"{stats.snapshots_copied} snapshots copied, {stats.snapshots_skipped} already there, "
            f"{stats.snapshots_removed} removed; {stats.chunks_copied} chunks copied "
            f"({human_size(stats.chunk_bytes_copied)}{rate}), {stats.chunks_present} already present; "
            f"{stats.seconds:.1f} s"
        )
    if stats.errors:
        sys.exit(1)


@click.group("sync-job")
def sync_job() -> None:
    """Named syncs between datastores, kept in sync.cfg (PBS's local sync jobs)."""


@sync_job.command("create")
@click.argument("job_id", metavar="ID")
@click.option("--store", "target", required=True, metavar="TARGET", help="The datastore to copy into.")
@click.option("--remote-store", "source", required=True, metavar="SOURCE", help="The datastore to copy from.")
@click.option("--remote-ns", default="", metavar="NS", help="Namespace of SOURCE to copy (default: root).")
@click.option("--ns", "target_ns", default="", metavar="NS", help="Namespace in TARGET it maps to (default: root).")
@max_depth_option
@click.option("--group-filter", "group_filters", multiple=True, metavar="FILTER", help="As for sync; repeatable.")
@click.option("--remove-vanished", is_flag=True, help="Remove snapshots and groups SOURCE no longer has.")
@click.option("--transfer-last", type=click.IntRange(min=1), default=None, metavar="N", help="Newest N per group.")
@click.option("--schedule", default=None, metavar="EVENT", help="Calendar event: when `tapefs scheduler` runs it.")
@click.option("--comment", default="", help="Free text stored with the job.")
def sync_job_create(
    job_id: str,
    target: str,
    source: str,
    remote_ns: str,
    target_ns: str,
    max_depth: int | None,
    group_filters: tuple[str, ...],
    remove_vanished: bool,
    transfer_last: int | None,
    schedule: str | None,
    comment: str,
) -> None:
    """Store sync job ID: copy what TARGET lacks from SOURCE."""
    config = SyncJobConfig()
    config.add(
        SyncJob(
            job_id,
            target,
            source,
            remote_ns,
            target_ns,
            max_depth,
            group_filters,
            remove_vanished,
            transfer_last,
            schedule,
            comment,
        )
    )
    click.echo(f"created sync job {job_id} in {config.config_path}")


@sync_job.command("update")
@click.argument("job_id", metavar="ID")
@click.option("--store", "target", default=None, metavar="TARGET", help="The datastore to copy into.")
@click.option("--remote-store", "source", default=None, metavar="SOURCE", help="The datastore to copy from.")
@click.option("--remote-ns", default=None, metavar="NS", help="Namespace of SOURCE to copy.")
@click.option("--ns", "target_ns", default=None, metavar="NS", help="Namespace in TARGET it maps to.")
@click.option("--max-depth", type=click.IntRange(min=0), default=None, help="Namespace levels below --remote-ns.")
@click.option(
    "--group-filter", "group_filters", multiple=True, metavar="FILTER", help="Replaces the job's filters; repeatable."
)
@click.option("--remove-vanished", type=click.BOOL, default=None, help="true: remove what SOURCE no longer has.")
@click.option("--transfer-last", type=click.IntRange(min=1), default=None, metavar="N", help="Newest N per group.")
@click.option("--schedule", default=None, metavar="EVENT", help="Calendar event: when `tapefs scheduler` runs it.")
@click.option("--comment", default=None, help="Free text stored with the job.")
@click.option(
    "--delete",
    multiple=True,
    type=click.Choice([key for key in SYNC_JOB_KEYS if key not in SYNC_JOB_REQUIRED_KEYS]),
    help="Remove a property (repeatable).",
)
def sync_job_update(
    job_id: str,
    target: str | None,
    source: str | None,
    target_ns: str | None,
    group_filters: tuple[str, ...],
    remove_vanished: bool | None,
    delete: tuple[str, ...],
    **settings,
) -> None:
    """Change sync job ID; options not given stay as they are."""
    changes: dict[str, str | list[str]] = dict(
        _config_changes({"store": target, "remote_store": source, "ns": target_ns, **settings})
    )
    if remove_vanished is not None:
        changes["remove-vanished"] = "true" if remove_vanished else "false"
    if group_filters:
        changes["group-filter"] = list(group_filters)
    job = SyncJobConfig().update(job_id, changes, delete)
    click.echo(f"updated sync job {job.id}")


@sync_job.command("list")
@output_format_option
def sync_job_list(output_format: str) -> None:
    """List the sync jobs."""
    config = SyncJobConfig()
    _print_jobs(
        [job.to_json() for job in config.jobs()],
        output_format,
        ["job", "from", "to", "schedule", "comment"],
        lambda j: [
            j["id"],
            j["remote-store"] + (f" ({j['remote-ns']})" if j["remote-ns"] else ""),
            j["store"] + (f" ({j['ns']})" if j["ns"] else ""),
            j.get("schedule", ""),
            j["comment"],
        ],
        f"no sync jobs ({config.config_path})",
    )


@sync_job.command("remove")
@click.argument("job_id", metavar="ID")
def sync_job_remove(job_id: str) -> None:
    """Delete sync job ID."""
    SyncJobConfig().remove(job_id)
    click.echo(f"removed sync job {job_id}")


@sync_job.command("run")
@click.argument("job_id", metavar="ID")
@output_format_option
def sync_job_run(job_id: str, output_format: str) -> None:
    """Run sync job ID now, as the scheduler runs it."""
    _print_sync(run_job(SYNC_JOB, job_id), output_format)


@click.command()
@click.argument("name")
@click.option("--gc-schedule", default=None, metavar="EVENT", help="When `tapefs scheduler` collects garbage.")
@click.option("--verify-schedule", default=None, metavar="EVENT", help="When `tapefs scheduler` verifies it.")
@click.option(
    "--counter-reset-schedule", default=None, metavar="EVENT", help="When `tapefs scheduler` zeroes its S3 counters."
)
@click.option(
    "--request-rate-threshold",
    default=None,
    type=click.IntRange(min=1),
    help="Warn when S3 requests a minute exceed N.",
)
@click.option("--comment", default=None, help="Free text stored with the datastore.")
@click.option("--delete", multiple=True, type=click.Choice(UPDATABLE_KEYS), help="Remove a property (repeatable).")
def update(name: str, delete: tuple[str, ...], **settings) -> None:
    """Change datastore NAME's schedules, S3 threshold or comment in datastore.cfg."""
    changes = {key.replace("_", "-"): str(value) for key, value in settings.items() if value is not None}
    DatastoreRegistry().update(name, changes, delete)
