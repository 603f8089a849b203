"""``tapefs changer|drive|pool|media`` and the tape commands of proxmox-tape (label,
barcode-label, read-label, inventory, load-media, unload, eject, export-media, clean, rewind,
format, status, cartridge-memory, volume-statistics). Each command parses, calls one library
function in ``tapefs.media``, ``tapefs.jobs`` or ``tapefs.device`` and renders a table or JSON;
failures become one line through the ``tapefs`` group.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import click

from tapefs.config.atomic_file import atomic_write
from tapefs.config.paths import config_file
from tapefs.device import discovery
from tapefs.device.tape_alert import flag_name
from tapefs.jobs.cleaning import clean_drive
from tapefs.media import drive_selection, labeling, media_admin, tape_devices, vault
from tapefs.media.inventory import Inventory
from tapefs.media.media_content import media_content
from tapefs.media.media_id import MediaLocation, MediaStatus
from tapefs.media.media_list import list_media
from tapefs.media.online_status import update_online_status
from tapefs.media.tape_config import (
    MEDIA_POOL_CONFIG_NAME,
    TAPE_CONFIG_NAME,
    ChangerConfig,
    DriveConfig,
    MediaPoolConfig,
    config_digest,
    config_keys,
    create_section,
    load_media_pool_config,
    load_tape_config,
    missing_device_warning,
    remove_section,
    update_section,
)
from tapefs_tools.cli import emit, format_value, key_value_table, output_format_option, progress_reporter, simple_table
from tapefs_tools.tapefs_catalog import restore_read_catalogs

BOOL = click.BOOL


def _slot_list(_ctx, _param, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(item) for item in value.replace(";", ",").split(",") if item.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of slot numbers") from None


def drive_option(fn: Callable) -> Callable:
    return click.option(
        "--drive",
        "drive_name",
        default=None,
        help="Drive name from tape.cfg (default: env PROXMOX_TAPE_DRIVE, else the only drive).",
    )(fn)


def _drive(drive_name: str | None) -> DriveConfig:
    return drive_selection.choose_drive(load_tape_config(), drive_name)


def _rows_table(columns: tuple[str, ...], rows: list[dict]):
    table = simple_table(*columns)
    for row in rows:
        table.add_row(*(format_value(row.get(column)) for column in columns))
    return table


def _emit_rows(output_format: str, rows: list[dict], columns: tuple[str, ...], empty: str) -> None:
    def render(out) -> None:
        out.print(_rows_table(columns, rows) if rows else empty)

    emit(output_format, rows, render)


def _emit_mapping(output_format: str, data: dict) -> None:
    emit(output_format, data, lambda out: out.print(key_value_table(list(data.items()))))


def _config_dict(obj, digest: str) -> dict:
    data = {key.replace("_", "-"): value for key, value in vars(obj).items() if value not in (None, ())}
    data["digest"] = digest
    return data


def _tape_cfg_digest() -> str:
    return config_digest(config_file(TAPE_CONFIG_NAME))


# -- changer -------------------------------------------------------------------------------------


@click.group("changer")
def changer() -> None:
    """Configure and use tape changers (tape.cfg)."""


@changer.command("scan")
@click.option(
    "--vtape-library",
    "libraries",
    multiple=True,
    metavar="LIBDIR",
    help="Also list the changer of this vtape library (repeatable; env VTAPE_LIBRARIES).",
)
@output_format_option
def changer_scan(libraries, output_format: str) -> None:
    """List changer devices attached to this host (and of running vtape libraries)."""
    rows = [d.to_dict() for d in discovery.scan(list(libraries), kind="changer")]
    _emit_rows(output_format, rows, ("path", "vendor", "model", "serial"), "no changers found")


@changer.command("list")
@output_format_option
def changer_list(output_format: str) -> None:
    """The configured changers, with what each device says it is."""
    rows = []
    for config in load_tape_config().changers.values():
        identity = tape_devices.device_identity(config.path)
        rows.append(
            {
                "name": config.name,
                "path": config.path,
                "vendor": identity.vendor,
                "model": identity.model,
                "serial": identity.serial,
            }
        )
    _emit_rows(output_format, rows, ("name", "path", "vendor", "model", "serial"), "no changers configured")


@changer.command("config")
@click.argument("name")
@output_format_option
def changer_config(name: str, output_format: str) -> None:
    """Show one changer's configuration."""
    config = drive_selection.choose_changer(load_tape_config(), name)
    _emit_mapping(output_format, _config_dict(config, _tape_cfg_digest()))


@changer.command("create")
@click.argument("name")
@click.option("--path", required=True, help="Device node (/dev/sgN, /dev/tape/by-id/…) or vtape changer socket.")
@click.option("--export-slots", callback=_slot_list, default=None, help="Import/export slots, e.g. 15,16.")
@click.option("--eject-before-unload", type=BOOL, default=None, help="Eject the drive before the robot unloads it.")
def changer_create(name: str, path: str, export_slots, eject_before_unload) -> None:
    """Add a changer to tape.cfg."""
    create_section(ChangerConfig(name, path, export_slots or (), eject_before_unload))
    _warn_if_missing("changer", path)


@changer.command("update")
@click.argument("name")
@click.option("--path", default=None, help="New device path.")
@click.option("--export-slots", callback=_slot_list, default=None, help="Import/export slots, e.g. 15,16.")
@click.option("--eject-before-unload", type=BOOL, default=None, help="Eject the drive before the robot unloads it.")
@click.option(
    "--delete",
    multiple=True,
    type=click.Choice(["export-slots", "eject-before-unload"]),
    help="Remove a property (repeatable).",
)
@click.option("--digest", default=None, help="Refuse if tape.cfg changed since this digest was shown.")
def changer_update(name: str, path, export_slots, eject_before_unload, delete, digest) -> None:
    """Change a changer's configuration."""
    changes = {"path": path, "export_slots": export_slots, "eject_before_unload": eject_before_unload}
    update_section(ChangerConfig, name, {k: v for k, v in changes.items() if v is not None}, delete, digest=digest)
    _warn_if_missing("changer", path)


@changer.command("remove")
@click.argument("name")
def changer_remove(name: str) -> None:
    """Remove a changer from tape.cfg (no drive may still use it)."""
    remove_section(ChangerConfig, name)


@changer.command("status")
@click.argument("name", required=False)
@drive_option
@output_format_option
def changer_status(name: str | None, drive_name: str | None, output_format: str) -> None:
    """What the changer's drives and slots hold (default: the changer of the drive)."""
    config = drive_selection.choose_changer(load_tape_config(), name, drive_name)
    with Inventory.open() as inventory:
        rows = [entry.to_dict() for entry in tape_devices.changer_status(config, inventory)]
    _emit_rows(output_format, rows, ("entry-kind", "entry-id", "label-text", "loaded-slot", "uuid"), "no elements")


@changer.command("reset")
@click.argument("name", required=False)
@drive_option
@output_format_option
def changer_reset(name: str | None, drive_name: str | None, output_format: str) -> None:
    """Library reset: rescan every element, then record the changer's tapes in the inventory."""
    tape_config = load_tape_config()
    config = drive_selection.choose_changer(tape_config, name, drive_name)
    with Inventory.open() as inventory:
        rows = [entry.to_dict() for entry in tape_devices.reset_changer(config, tape_config, inventory)]
    _emit_rows(output_format, rows, ("entry-kind", "entry-id", "label-text", "loaded-slot", "uuid"), "no elements")


@changer.command("transfer")
@click.argument("name", required=False)
@click.option("--from", "from_slot", type=click.IntRange(1), required=True, help="Source slot.")
@click.option("--to", "to_slot", type=click.IntRange(1), required=True, help="Target slot.")
@drive_option
def changer_transfer(name: str | None, from_slot: int, to_slot: int, drive_name: str | None) -> None:
    """Move a tape from one slot to another."""
    tape_devices.transfer_media(
        drive_selection.choose_changer(load_tape_config(), name, drive_name), from_slot, to_slot
    )


# -- drive ---------------------------------------------------------------------------------------


@click.group("drive")
def drive() -> None:
    """Configure tape drives (tape.cfg)."""


@drive.command("scan")
@click.option(
    "--vtape-library",
    "libraries",
    multiple=True,
    metavar="LIBDIR",
    help="Also list the drives of this vtape library (repeatable; env VTAPE_LIBRARIES).",
)
@output_format_option
def drive_scan(libraries, output_format: str) -> None:
    """List tape drives attached to this host (and of running vtape libraries)."""
    rows = [d.to_dict() for d in discovery.scan(list(libraries), kind="drive")]
    _emit_rows(output_format, rows, ("path", "vendor", "model", "serial"), "no drives found")


@drive.command("list")
@output_format_option
def drive_list(output_format: str) -> None:
    """The configured drives, with their changer and what each device says it is."""
    rows = []
    for config in load_tape_config().drives.values():
        identity = tape_devices.device_identity(config.path)
        rows.append(
            {
                "name": config.name,
                "path": config.path,
                "changer": config.changer,
                "changer-drivenum": config.changer_drivenum,
                "vendor": identity.vendor,
                "model": identity.model,
                "serial": identity.serial,
            }
        )
    _emit_rows(
        output_format,
        rows,
        ("name", "path", "changer", "changer-drivenum", "vendor", "model", "serial"),
        "no drives configured",
    )


@drive.command("config")
@click.argument("name")
@output_format_option
def drive_config(name: str, output_format: str) -> None:
    """Show one drive's configuration."""
    _emit_mapping(output_format, _config_dict(_drive(name), _tape_cfg_digest()))


@drive.command("create")
@click.argument("name")
@click.option("--path", required=True, help="Device node (/dev/sgN, /dev/tape/by-id/…) or vtape drive socket.")
@click.option("--changer", "changer_name", default=None, help="The changer this drive is in.")
@click.option("--changer-drivenum", type=click.IntRange(0, 255), default=None, help="Its drive number there.")
def drive_create(name: str, path: str, changer_name, changer_drivenum) -> None:
    """Add a drive to tape.cfg."""
    create_section(DriveConfig(name, path, changer_name, changer_drivenum))
    _warn_if_missing("drive", path)


def _warn_if_missing(kind: str, path: str | None) -> None:
    warning = missing_device_warning(kind, path) if path is not None else None
    if warning is not None:
        click.echo(f"tapefs: warning: {warning}", err=True)


@drive.command("update")
@click.argument("name")
@click.option("--path", default=None, help="New device path.")
@click.option("--changer", "changer_name", default=None, help="The changer this drive is in.")
@click.option("--changer-drivenum", type=click.IntRange(0, 255), default=None, help="Its drive number there.")
@click.option(
    "--delete",
    multiple=True,
    type=click.Choice(["changer", "changer-drivenum"]),
    help="Remove a property (repeatable).",
)
@click.option("--digest", default=None, help="Refuse if tape.cfg changed since this digest was shown.")
def drive_update(name: str, path, changer_name, changer_drivenum, delete, digest) -> None:
    """Change a drive's configuration."""
    changes = {"path": path, "changer": changer_name, "changer_drivenum": changer_drivenum}
    update_section(DriveConfig, name, {k: v for k, v in changes.items() if v is not None}, delete, digest=digest)
    _warn_if_missing("drive", path)


@drive.command("remove")
@click.argument("name")
def drive_remove(name: str) -> None:
    """Remove a drive from tape.cfg."""
    remove_section(DriveConfig, name)


# -- pool ----------------------------------------------------------------------------------------

POOL_COLUMNS = ("name", "allocation", "retention", "template", "encrypt", "comment")


@click.group("pool")
def pool() -> None:
    """Configure media pools (media-pool.cfg)."""


@pool.command("list")
@output_format_option
def pool_list(output_format: str) -> None:
    """The configured media pools."""
    rows = [
        {key.replace("_", "-"): value for key, value in vars(config).items()}
        for config in load_media_pool_config().values()
    ]
    _emit_rows(output_format, rows, POOL_COLUMNS, "no pools configured")


def _named_pool(name: str) -> MediaPoolConfig:
    pools = load_media_pool_config()
    if name not in pools:
        raise click.ClickException(f"no pool named {name!r} (pools: {', '.join(pools) or 'none configured'})")
    return pools[name]


@pool.command("config")
@click.argument("name")
@output_format_option
def pool_config(name: str, output_format: str) -> None:
    """Show one pool's configuration."""
    _emit_mapping(output_format, _config_dict(_named_pool(name), config_digest(config_file(MEDIA_POOL_CONFIG_NAME))))


def pool_options(fn: Callable) -> Callable:
    for option in reversed(
        (
            click.option(
                "--allocation", default=None, help="continue, always or a calendar event (when a new set starts)."
            ),
            click.option(
                "--retention", default=None, help="keep, overwrite or a time span (when a full tape may be reused)."
            ),
            click.option("--template", default=None, help="strftime template of media-set names."),
            click.option("--encrypt", default=None, help="Fingerprint of the tape encryption key."),
            click.option("--comment", default=None, help="Free text."),
        )
    ):
        fn = option(fn)
    return fn


@pool.command("create")
@click.argument("name")
@pool_options
def pool_create(name: str, **properties) -> None:
    """Add a media pool."""
    create_section(MediaPoolConfig(name, **properties))


@pool.command("update")
@click.argument("name")
@pool_options
@click.option(
    "--delete", multiple=True, type=click.Choice(config_keys(MediaPoolConfig)), help="Remove a property (repeatable)."
)
@click.option("--digest", default=None, help="Refuse if media-pool.cfg changed since this digest was shown.")
def pool_update(name: str, delete, digest, **properties) -> None:
    """Change a media pool."""
    update_section(MediaPoolConfig, name, {k: v for k, v in properties.items() if v is not None}, delete, digest=digest)


@pool.command("remove")
@click.argument("name")
def pool_remove(name: str) -> None:
    """Remove a media pool."""
    remove_section(MediaPoolConfig, name)


# -- media ---------------------------------------------------------------------------------------

MEDIA_COLUMNS = ("label-text", "pool", "media-set-name", "seq-nr", "status", "location", "catalog", "uuid")


@click.group("media")
def media() -> None:
    """The inventory's tapes and what they hold."""


@media.command("list")
@click.option("--pool", "pool_name", default=None, help="Only the tapes of this pool.")
@click.option(
    "--update-status",
    type=BOOL,
    default=True,
    show_default=True,
    help="Ask the configured changers which tapes are online first.",
)
@output_format_option
def media_list(pool_name: str | None, update_status: bool, output_format: str) -> None:
    """Every tape with its pool, media set, status and location."""
    with Inventory.open() as inventory:
        if update_status:
            update_online_status(inventory, load_tape_config())
        entries = list_media(inventory, load_media_pool_config(), int(time.time()), pool_name)
    rows = [
        {
            "label-text": e.label_text,
            "pool": e.pool,
            "media-set-name": e.media_set_name,
            "media-set-uuid": e.media_set_uuid,
            "seq-nr": e.seq_nr,
            "status": e.status.value,
            "location": str(e.location),
            "expired": e.expired,
            "catalog": e.catalog,
            "uuid": e.uuid,
            "ctime": e.ctime,
            "bytes-used": e.bytes_used,
        }
        for e in entries
    ]
    _emit_rows(output_format, rows, MEDIA_COLUMNS, "no media in the inventory")


@media.command("content")
@click.option("--pool", "pool_name", default=None, help="Only tapes of this pool.")
@click.option("--label-text", default=None, help="Only this tape.")
@click.option("--media-set", default=None, help="Only tapes of this media set (UUID).")
@output_format_option
def media_content_command(pool_name, label_text, media_set, output_format: str) -> None:
    """The snapshots on each tape, from the media catalogs on disk."""
    with Inventory.open() as inventory:
        rows = [row.to_dict() for row in media_content(inventory, pool_name, label_text, media_set)]
    _emit_rows(
        output_format,
        rows,
        ("label-text", "pool", "seq-nr", "store", "snapshot", "file-number"),
        "no cataloged snapshots",
    )


def _media_entry_dict(entry) -> dict:
    return {
        "label-text": entry.id.label_text,
        "uuid": entry.uuid,
        "status": entry.status.value if entry.status else None,
        "location": str(entry.effective_location),
    }


uuid_option = click.option("--uuid", default=None, help="The tape's UUID, when several tapes carry the label text.")


@media.command("move")
@click.argument("label_text")
@uuid_option
@click.option("--vault", "vault_name", default=None, help="The vault the tape is kept in (3 to 32 characters).")
@click.option("--offline", is_flag=True, default=False, help="Out of the library, in no vault.")
@output_format_option
def media_move(label_text: str, uuid: str | None, vault_name: str | None, offline: bool, output_format: str) -> None:
    """Record where a tape outside the library is kept: a vault, or just offline."""
    if (vault_name is None) == (not offline):
        raise click.UsageError("give either --vault NAME or --offline")
    try:
        location = MediaLocation.vault(vault_name) if vault_name is not None else MediaLocation.offline()
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--vault") from None
    with Inventory.open() as inventory:
        update_online_status(inventory, load_tape_config())
        entry = media_admin.find_media(inventory, label_text, uuid)
        media_admin.move_media(inventory, entry, location)
        _emit_mapping(output_format, _media_entry_dict(inventory.get(entry.uuid)))


@media.group("vault")
def media_vault() -> None:
    """Tapes kept in vaults: record where a tape went, list what each vault holds."""


VAULT_COLUMNS = ("vault", "label-text", "pool", "seq-nr", "recorded-at", "note")


def _vault_row(entry: vault.VaultEntry) -> dict:
    row = entry.to_dict()
    row["recorded-at"] = (
        time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.recorded)) if entry.recorded is not None else None
    )
    return row


@media_vault.command("record")
@click.argument("label_text")
@uuid_option
@click.option("--vault", "vault_name", required=True, help="The vault the tape went to (3 to 32 characters).")
@click.option("--note", default=None, help="One line for whoever fetches it back (shelf, box, courier...).")
@output_format_option
def media_vault_record(
    label_text: str, uuid: str | None, vault_name: str, note: str | None, output_format: str
) -> None:
    """Record that a tape out of the library is now kept in a vault (with a note and the time)."""
    with Inventory.open() as inventory:
        update_online_status(inventory, load_tape_config())
        entry = media_admin.find_media(inventory, label_text, uuid)
        recorded = vault.record_in_vault(inventory, entry, vault_name, note, int(time.time()))
    _emit_mapping(output_format, _vault_row(recorded))


@media_vault.command("list")
@click.option("--vault", "vault_name", default=None, help="Only this vault.")
@click.option(
    "--update-status",
    type=BOOL,
    default=True,
    show_default=True,
    help="Ask the configured changers which tapes are back in the library first.",
)
@output_format_option
def media_vault_list(vault_name: str | None, update_status: bool, output_format: str) -> None:
    """The tapes in each vault, with the note and time recorded when each went there."""
    with Inventory.open() as inventory:
        if update_status:
            update_online_status(inventory, load_tape_config())
        rows = [_vault_row(entry) for entry in vault.vault_contents(inventory, vault_name)]
    _emit_rows(output_format, rows, VAULT_COLUMNS, "no tapes in a vault")


@media.command("status")
@click.argument("label_text")
@uuid_option
@click.option(
    "--set",
    "new_status",
    type=click.Choice([s.value for s in (MediaStatus.FULL, MediaStatus.DAMAGED, MediaStatus.RETIRED)]),
    default=None,
    help="Store this status.",
)
@click.option("--clear", is_flag=True, default=False, help="Remove the stored status.")
@output_format_option
def media_status(label_text: str, uuid: str | None, new_status: str | None, clear: bool, output_format: str) -> None:
    """Show, set (full, damaged, retired) or clear the stored status of a tape."""
    if new_status is not None and clear:
        raise click.UsageError("give --set or --clear, not both")
    with Inventory.open() as inventory:
        entry = media_admin.find_media(inventory, label_text, uuid)
        if new_status is not None or clear:
            media_admin.set_media_status(inventory, entry, MediaStatus(new_status) if new_status else None)
        _emit_mapping(output_format, _media_entry_dict(inventory.get(entry.uuid)))


@media.command("destroy")
@click.argument("label_text")
@uuid_option
@click.option("--force", is_flag=True, default=False, help="Even if the pool's retention still protects its data.")
def media_destroy(label_text: str, uuid: str | None, force: bool) -> None:
    """Remove a tape from the inventory and the media catalog."""
    with Inventory.open() as inventory:
        entry = media_admin.find_media(inventory, label_text, uuid)
        media_admin.destroy_media(inventory, entry, load_media_pool_config(), force)


# -- tapes in drives -------------------------------------------------------------------------------


def _media_id_dict(media_id) -> dict:
    data = {
        "label-text": media_id.label_text,
        "uuid": media_id.uuid,
        "ctime": media_id.label.ctime,
        "pool": media_id.pool,
    }
    set_label = media_id.media_set_label
    if set_label is not None:
        data.update(
            {
                "media-set-uuid": set_label.uuid,
                "seq-nr": set_label.seq_nr,
                "media-set-ctime": set_label.ctime,
                "encryption-key-fingerprint": set_label.encryption_key_fingerprint,
            }
        )
    return data


@click.command("label")
@click.option("--label-text", required=True, help="The label text (usually the barcode).")
@click.option("--pool", "pool_name", default=None, help="Reserve the tape for this pool.")
@click.option("--force", is_flag=True, default=False, help="Overwrite a tape that holds data.")
@drive_option
@output_format_option
def label(label_text: str, pool_name: str | None, force: bool, drive_name: str | None, output_format: str) -> None:
    """Label the tape in the drive (refuses a tape that holds data unless --force)."""
    with progress_reporter("tape") as progress:
        media_id = labeling.label_tape(_drive(drive_name), label_text, pool_name, force, progress=progress)
    _emit_mapping(output_format, _media_id_dict(media_id))


OUTCOME_COLUMNS = ("label-text", "slot", "result", "uuid", "message")


@click.command("barcode-label")
@click.option("--pool", "pool_name", default=None, help="Reserve the tapes for this pool.")
@drive_option
@output_format_option
def barcode_label(pool_name: str | None, drive_name: str | None, output_format: str) -> None:
    """Label every tape of the changer the inventory does not know, with its barcode."""
    with progress_reporter("tape") as progress:
        outcomes = labeling.barcode_label(load_tape_config(), _drive(drive_name), pool_name, progress=progress)
    _emit_rows(output_format, [o.to_dict() for o in outcomes], OUTCOME_COLUMNS, "no unlabelled tapes")


@click.command("read-label")
@click.option("--inventorize", is_flag=True, default=False, help="Store the labels in the inventory.")
@drive_option
@output_format_option
def read_label(inventorize: bool, drive_name: str | None, output_format: str) -> None:
    """Read the labels of the tape in the drive."""
    reading = labeling.read_label(_drive(drive_name), inventorize)
    if reading.media_id is None:
        raise click.ClickException("the tape in the drive is not labelled")
    data = _media_id_dict(reading.media_id)
    data["inventorized"] = reading.inventorized
    _emit_mapping(output_format, data)


@click.group("inventory", invoke_without_command=True)
@click.option(
    "--read-labels", is_flag=True, default=False, help="Load tapes the inventory does not know and read their labels."
)
@click.option("--read-all-labels", is_flag=True, default=False, help="Load every tape and read its label.")
@click.option(
    "--catalog",
    "restore_catalogs",
    is_flag=True,
    default=False,
    help="Restore the missing catalogs of the tapes read, from their catalog archives.",
)
@drive_option
@output_format_option
@click.pass_context
def inventory(
    ctx: click.Context,
    read_labels: bool,
    read_all_labels: bool,
    restore_catalogs: bool,
    drive_name: str | None,
    output_format: str,
) -> None:
    """List the changer's tapes and their UUIDs; optionally read labels into the inventory.
    `import-pbs` and `export-pbs` take over or hand over PBS's inventory.json."""
    if ctx.invoked_subcommand is not None:
        given = [name for name in ("read_labels", "read_all_labels", "restore_catalogs") if ctx.params[name]]
        if given or drive_name is not None or output_format != "text":
            raise click.UsageError(f"the options of 'inventory' do not apply to 'inventory {ctx.invoked_subcommand}'")
        return
    with progress_reporter("tape") as progress:
        outcomes = labeling.update_inventory(
            load_tape_config(), _drive(drive_name), read_labels, read_all_labels, progress=progress
        )
    rows = [o.to_dict() for o in outcomes]
    if restore_catalogs:
        restore_read_catalogs(rows, _drive(drive_name).name)
    columns = OUTCOME_COLUMNS + (("catalog",) if restore_catalogs else ())
    _emit_rows(output_format, rows, columns, "no tapes in the changer")


@inventory.command("import-pbs")
@click.argument("file", type=click.Path(dir_okay=False))
@output_format_option
def inventory_import_pbs(file: str, output_format: str) -> None:
    """Add the tapes of PBS's inventory.json FILE, replacing those with the same UUID (all or nothing)."""
    with Inventory.open() as media_inventory:
        count = media_inventory.import_pbs_file(file, missing_ok=False)
    data = {"file": file, "imported": count}
    emit(output_format, data, lambda out: out.print(f"imported {count} tapes from {file}", markup=False))


@inventory.command("export-pbs")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
def inventory_export_pbs(file: str) -> None:
    """Write the inventory as PBS's inventory.json to FILE ('-': standard output)."""
    with Inventory.open() as media_inventory:
        text = media_inventory.export_pbs_json()
    if file == "-":
        click.echo(text)
    else:
        atomic_write(file, text.encode("utf-8"))


@click.command("load-media")
@click.argument("label_text")
@drive_option
def load_media(label_text: str, drive_name: str | None) -> None:
    """Load the tape with this barcode into the drive."""
    tape_devices.load_media(load_tape_config(), _drive(drive_name), label_text)


@click.command("load-media-from-slot")
@click.argument("slot", type=click.IntRange(1))
@drive_option
def load_media_from_slot(slot: int, drive_name: str | None) -> None:
    """Load the tape in SLOT into the drive."""
    tape_devices.load_media_from_slot(load_tape_config(), _drive(drive_name), slot)


@click.command("unload")
@click.option("--target-slot", type=click.IntRange(1), default=None, help="Default: the slot the tape came from.")
@drive_option
def unload(target_slot: int | None, drive_name: str | None) -> None:
    """Put the drive's tape back into a slot."""
    tape_devices.unload_media(load_tape_config(), _drive(drive_name), target_slot)


@click.command("eject")
@drive_option
def eject(drive_name: str | None) -> None:
    """Eject the tape (in a changer: and put it back into its slot)."""
    config = load_tape_config()
    drive_config = _drive(drive_name)
    tape_devices.eject_media(config, drive_config)
    if drive_config.changer is not None:
        with Inventory.open() as inventory:
            update_online_status(inventory, config, drive_config.changer)


@click.command("export-media")
@click.argument("label_text")
@drive_option
@output_format_option
def export_media(label_text: str, drive_name: str | None, output_format: str) -> None:
    """Move a tape to a free import/export slot of the drive's changer; it becomes offline."""
    config = load_tape_config()
    changer_config, _ = drive_selection.changer_of(config, _drive(drive_name))
    with Inventory.open() as inventory:
        slot = media_admin.export_media(changer_config, label_text, inventory, config.drives.values())
    _emit_mapping(
        output_format, {"label-text": label_text, "changer": changer_config.name, "slot": slot, "location": "offline"}
    )


@click.command("clean")
@drive_option
@output_format_option
def clean(drive_name: str | None, output_format: str) -> None:
    """Clean the drive with a cleaning cartridge (CLN…) of its changer; its tape goes back in."""
    result = clean_drive(load_tape_config(), _drive(drive_name))
    _emit_mapping(output_format, result.to_dict())


@click.command("rewind")
@drive_option
def rewind(drive_name: str | None) -> None:
    """Rewind the tape in the drive."""
    with tape_devices.open_drive(_drive(drive_name), need_medium=True) as opened:
        opened.rewind()


@click.command("format")
@click.option(
    "--fast", type=BOOL, default=True, show_default=True, help="0 adds a long erase (and LTO-9 optimisation)."
)
@click.option("--label-text", default=None, help="Only format if the tape carries this label.")
@drive_option
def format_(fast: bool, label_text: str | None, drive_name: str | None) -> None:
    """Erase the tape in the drive and drop it from the inventory."""
    with progress_reporter("tape") as progress:
        labeling.format_tape(_drive(drive_name), fast, label_text, progress=progress)


@click.command("status")
@drive_option
@output_format_option
def status(drive_name: str | None, output_format: str) -> None:
    """Drive and medium status."""
    with tape_devices.open_drive(_drive(drive_name), exclusive=False) as opened:
        data = opened.status().to_dict()
    data["alert-flags"] = [flag_name(n) for n in data["alert-flags"]]
    _emit_mapping(output_format, data)


@click.command("cartridge-memory")
@drive_option
@output_format_option
def cartridge_memory(drive_name: str | None, output_format: str) -> None:
    """Cartridge memory (MAM) attributes of the tape in the drive."""
    with tape_devices.open_drive(_drive(drive_name), need_medium=True, exclusive=False) as opened:
        rows = [a.to_dict() for a in opened.cartridge_memory()]
    _emit_rows(output_format, rows, ("id", "name", "value"), "no attributes")


@click.command("volume-statistics")
@drive_option
@output_format_option
def volume_statistics(drive_name: str | None, output_format: str) -> None:
    """Volume statistics of the tape in the drive (log page 17h)."""
    with tape_devices.open_drive(_drive(drive_name), need_medium=True, exclusive=False) as opened:
        statistics = opened.volume_statistics()
    data = {key.replace("_", "-"): value for key, value in statistics.to_dict().items()}
    data["medium-passes"], data["medium-wearout"] = statistics.medium_passes, statistics.wearout
    _emit_mapping(output_format, data)
