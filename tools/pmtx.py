"""pmtx: control a medium changer (the commands of Proxmox's pmtx, plus raw and --trace)."""

from __future__ import annotations

import sys

import click

from tapefs.device.changer import Changer, ChangerStatus
from tapefs.media.drive_selection import select_changer_path
from tapefs_tools.cli import emit, format_value, key_value_table, output_format_option, setup_logging, simple_table
from tapefs_tools.device_cli import DeviceGroup, DeviceKind, raw_command, scan_command, state_of, trace_option

SLOT = click.IntRange(1)
DRIVE_NUMBER = click.IntRange(0)


@click.group(cls=DeviceGroup)
@trace_option
@click.pass_context
def pmtx(ctx: click.Context):
    """Control a tape library's medium changer through SCSI (SG_IO or a vtape socket)."""
    state_of(ctx)


CHANGER = DeviceKind(
    "changer",
    "Changer name from tape.cfg.",
    "Changer device path (/dev/sgN, a vtape changer socket).",
    select_changer_path,
    lambda path, state: Changer.open(path, state.tracer()),
)


def changer_command(name: str):
    return CHANGER.command(pmtx, name)


@changer_command("inquiry")
@output_format_option
def inquiry(changer: Changer, output_format: str):
    """Device type, vendor, product and revision."""
    identity = changer.inquiry()
    data = {
        "peripheral-type": identity.device_type,
        "type": identity.device_type_name,
        "vendor": identity.vendor,
        "product": identity.product,
        "revision": identity.revision,
    }
    rows = [
        ("Type", data["type"]),
        ("Vendor", data["vendor"]),
        ("Product", data["product"]),
        ("Revision", data["revision"]),
    ]
    emit(output_format, data, lambda out: out.print(key_value_table(rows)))


@changer_command("inventory")
def inventory(changer: Changer):
    """Make the library rescan its barcodes (INITIALIZE ELEMENT STATUS)."""
    changer.inventory()


@changer_command("load")
@click.argument("slot", type=SLOT)
@click.option("--drivenum", type=DRIVE_NUMBER, default=0, show_default=True, help="Drive number (0-based).")
def load(changer: Changer, slot: int, drivenum: int):
    """Move the cartridge in SLOT into a drive."""
    changer.load(slot, drivenum)


@changer_command("unload")
@click.option(
    "--slot",
    type=SLOT,
    default=None,
    help="Target slot (default: the slot it came from if empty, else the first free slot).",
)
@click.option("--drivenum", type=DRIVE_NUMBER, default=0, show_default=True, help="Drive number (0-based).")
def unload(changer: Changer, slot: int | None, drivenum: int):
    """Move a drive's cartridge back to a storage slot."""
    changer.unload(slot, drivenum)


@changer_command("transfer")
@click.argument("from_slot", metavar="FROM", type=SLOT)
@click.argument("to_slot", metavar="TO", type=SLOT)
def transfer(changer: Changer, from_slot: int, to_slot: int):
    """Move a cartridge from one slot to another."""
    changer.transfer(from_slot, to_slot)


def _render_status(status: ChangerStatus):
    def render(out):
        table = simple_table("element", "address", "status", "barcode", "from slot", "drive serial")
        for transport in status.transports:
            table.add_row(
                "transport",
                str(transport.address),
                "full" if transport.full else "empty",
                format_value(transport.barcode),
                "",
                "",
            )
        for drive in status.drives:
            table.add_row(
                f"drive {drive.number}",
                str(drive.address),
                "full" if drive.full else "empty",
                format_value(drive.barcode),
                format_value(drive.loaded_slot),
                format_value(drive.serial),
            )
        for slot in status.slots:
            kind = "import/export" if slot.import_export else "slot"
            table.add_row(
                f"{kind} {slot.number}",
                str(slot.address),
                "full" if slot.full else "empty",
                format_value(slot.barcode),
                "",
                "",
            )
        out.print(table)

    return render


@changer_command("status")
@output_format_option
def status(changer: Changer, output_format: str):
    """Transport, drives (with source slot and serial), storage and import/export slots."""
    result = changer.status()
    emit(output_format, result.to_dict(), _render_status(result))


scan_command(pmtx, "changer", "changers")
raw_command(pmtx, CHANGER)


def main() -> None:
    setup_logging()
    pmtx(prog_name="pmtx")


if __name__ == "__main__":
    sys.exit(main())
