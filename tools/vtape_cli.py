"""``vtape``: create, serve and operate a virtual tape library."""

from __future__ import annotations

from pathlib import Path

import click

from tapefs_tools.cli import CommandGroup, emit, emit_json, kebab_keys, output_format_option, table
from tapefs_tools.vtape_run_with import run_with
from vtape import daemon, media
from vtape.demo import run_demo
from vtape.errors import VtapeError
from vtape.library import CreateOptions, create_library, read_label_list
from vtape.server import serve as serve_library

LIBDIR = click.argument("libdir", type=click.Path(path_type=Path))


def size_option(text: str) -> int:
    try:
        return media.parse_size(text)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.group("vtape", cls=CommandGroup)
def main() -> None:
    """A virtual LTO tape library: file-backed cartridges, SCSI drives and a changer on Unix sockets."""


@main.command()
@LIBDIR
@click.option("--drives", default=2, show_default=True, help="number of tape drives")
@click.option(
    "--generation", default=8, show_default=True, type=click.IntRange(1, 9), help="LTO generation of drives and media"
)
@click.option("--slots", default=16, show_default=True, help="storage slots")
@click.option("--ie-slots", default=2, show_default=True, help="import/export (mail) slots")
@click.option("--cartridges", default=8, show_default=True, help="data cartridges, placed in slots 1..N")
@click.option("--barcode-prefix", default="VT", show_default=True, help="barcode prefix of the data cartridges")
@click.option(
    "--capacity",
    default="8GiB",
    show_default=True,
    help="capacity per cartridge, or 'nominal' for the LTO native capacity",
)
@click.option(
    "--cleaning", default=1, show_default=True, help="cleaning cartridges (CLNnnnL1), placed in the last slots"
)
@click.option("--worm", default=0, show_default=True, help="WORM cartridges")
@click.option("--allow-other-users", is_flag=True, help="let every local user open the device sockets")
@click.option("--timing", is_flag=True, help="simulate load, unload, locate and rewind times")
def create(
    libdir,
    drives,
    generation,
    slots,
    ie_slots,
    cartridges,
    barcode_prefix,
    capacity,
    cleaning,
    worm,
    allow_other_users,
    timing,
):
    """Create a new library directory LIBDIR."""
    capacity_bytes = (
        media.GENERATIONS[generation].capacity_mb * media.MB if capacity == "nominal" else size_option(capacity)
    )
    create_library(
        libdir,
        CreateOptions(
            drives,
            generation,
            slots,
            ie_slots,
            cartridges,
            barcode_prefix,
            capacity_bytes,
            cleaning,
            worm,
            allow_other_users,
            timing,
        ),
    )
    click.echo(f"created {libdir}: {drives} drives, {slots} slots, {ie_slots} import/export slots")


@main.command()
@LIBDIR
def serve(libdir):
    """Serve LIBDIR in the foreground until SIGTERM or SIGINT."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve_library(libdir)


@main.command()
@LIBDIR
def start(libdir):
    """Serve LIBDIR in the background; returns once every device socket accepts."""
    pid = daemon.start(libdir)
    click.echo(f"vtape daemon {pid} serving {libdir.resolve()}")


@main.command()
@LIBDIR
def stop(libdir):
    """Stop the daemon serving LIBDIR."""
    pid = daemon.stop(libdir)
    click.echo(f"stopped vtape daemon {pid}")


def perform(libdir: Path, request: dict) -> dict:
    answer = daemon.perform(libdir, request)
    if not answer.get("ok"):
        raise VtapeError(answer.get("error", "failed"))
    return answer


@main.command()
@LIBDIR
@output_format_option
def status(libdir, output_format):
    """Show devices, slots and cartridges."""
    state = perform(libdir, {"op": "status"})
    state.pop("ok")
    state["daemon"] = daemon.running_pid(libdir)
    emit(output_format, kebab_keys(state), lambda out: _print_status(out, state))


def _print_status(out, state: dict) -> None:
    daemon_text = f"pid {state['daemon']}" if state["daemon"] else "stopped"
    out.print(f"library {state['path']} — daemon: {daemon_text}")
    devices = table("device", "path", "serial", "cartridge", "loaded", "position")
    devices.add_row("changer", state["changer"]["path"], state["changer"]["serial"], "", "", "")
    for d in state["drives"]:
        devices.add_row(
            d["name"],
            d["path"],
            d["serial"],
            d["barcode"] or "",
            "yes" if d["loaded"] else "",
            "" if d["position"] is None else str(d["position"]),
        )
    out.print(devices)
    slots = table("slot", "kind", "address", "cartridge")
    for kind, elements in (("storage", state["storage"]), ("import/export", state["import_export"])):
        for e in elements:
            slots.add_row(str(e["slot"]), kind, f"{e['address']:#06x}", e["barcode"] or "")
    out.print(slots)
    shelf = [c["barcode"] for c in state["cartridges"] if not c["in_library"]]
    if shelf:
        out.print("on the shelf: " + " ".join(shelf))


@main.command()
@LIBDIR
@click.argument("barcode")
def insert(libdir, barcode):
    """Put a cartridge from the shelf into a free import/export slot."""
    answer = perform(libdir, {"op": "insert", "barcode": barcode})
    click.echo(f"{barcode} is in import/export slot {answer['slot']}")


@main.command()
@LIBDIR
@click.argument("barcode")
def remove(libdir, barcode):
    """Take a cartridge out of its import/export slot onto the shelf."""
    perform(libdir, {"op": "remove", "barcode": barcode})
    click.echo(f"{barcode} is on the shelf")


@main.command("add-cartridge")
@LIBDIR
@click.argument("barcode")
@click.option("--capacity", help="capacity, e.g. 512MiB (default 8GiB)")
@click.option("--early-warning", help="early-warning zone before the end, e.g. 16MiB")
@click.option("--shelf", is_flag=True, help="keep it outside the library (insert it later)")
def add_cartridge(libdir, barcode, capacity, early_warning, shelf):
    """Create a new cartridge (barcode such as VT0100L8, CLN002L1, WM0001LY)."""
    answer = perform(
        libdir,
        {
            "op": "add-cartridge",
            "barcode": barcode,
            "capacity": capacity,
            "early_warning": early_warning,
            "shelf": shelf,
        },
    )
    click.echo(f"{barcode} created" + (f" in slot {answer['slot']}" if answer["slot"] else " on the shelf"))


@main.command("add-cartridges")
@LIBDIR
@click.option(
    "--from", "label_list", required=True, type=click.Path(path_type=Path), help="label list: one barcode a line"
)
@click.option("--capacity", help="capacity, e.g. 512MiB (default 8GiB)")
@click.option("--shelf", is_flag=True, help="keep them outside the library (insert them later)")
def add_cartridges(libdir, label_list, capacity, shelf):
    """Create a cartridge for each label of a list; the media type comes from each label's suffix."""
    barcodes = read_label_list(label_list.read_text())
    answer = perform(libdir, {"op": "add-cartridges", "barcodes": barcodes, "capacity": capacity, "shelf": shelf})
    place = "on the shelf" if shelf else "in slots " + ", ".join(map(str, answer["slots"]))
    click.echo(f"{len(barcodes)} cartridges created {place}")


@main.command("write-protect")
@LIBDIR
@click.argument("barcode")
@click.option("--off", is_flag=True, help="clear the write-protect switch")
def write_protect(libdir, barcode, off):
    """Set (or with --off clear) a cartridge's write-protect switch."""
    answer = perform(libdir, {"op": "write-protect", "barcode": barcode, "on": not off})
    click.echo(f"{barcode}: write protect {'on' if answer['write_protected'] else 'off'}")


@main.command()
@LIBDIR
@click.argument("device")
@click.option("--fail-next", type=int, default=0, help="fail the next N commands on DEVICE")
@click.option(
    "--sense", "sense_code", default="4/44/00", show_default=True, help="sense KEY/ASC/ASCQ (hex) for --fail-next"
)
@click.option("--media-error-at", type=int, help="reading this block of the loaded cartridge gives 3/11/00")
@click.option("--not-ready/--ready", default=None, help="drive reports NOT READY 2/04/00 until --ready")
@click.option("--tape-alert", type=int, multiple=True, help="raise this TapeAlert flag (1-64); repeatable")
@click.option(
    "--stale-inventory",
    is_flag=True,
    help="changer reports its full storage slots empty until INITIALIZE ELEMENT STATUS",
)
@click.option("--clear", is_flag=True, help="remove every fault from DEVICE")
def fault(libdir, device, fail_next, sense_code, media_error_at, not_ready, tape_alert, stale_inventory, clear):
    """Make DEVICE (changer, drive0, ...) fail on purpose."""
    answer = perform(
        libdir,
        {
            "op": "fault",
            "device": device,
            "fail_next": fail_next,
            "sense_code": sense_code,
            "media_error_block": media_error_at,
            "not_ready": not_ready,
            "tape_alerts": list(tape_alert),
            "stale_inventory": stale_inventory,
            "clear": clear,
        },
    )
    answer.pop("ok")
    emit_json(kebab_keys(answer), "json")


@main.command()
@click.argument("libdir", required=False, type=click.Path(path_type=Path))
def demo(libdir):
    """Create a library (in a temporary directory unless LIBDIR), load, write and read a tape."""
    run_demo(libdir, click.echo)


main.add_command(run_with)


if __name__ == "__main__":
    main()
