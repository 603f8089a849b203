"""pmt: control a tape drive (the commands and semantics of Proxmox's pmt, plus raw and --trace)."""

from __future__ import annotations

import sys

import click

from tapefs.device.drive import DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE, OPEN_READY_TIMEOUT, Drive
from tapefs.device.tape_alert import flag_name
from tapefs.media.drive_selection import select_drive_path
from tapefs.scsi.errors import EndOfData, FilemarkDetected
from tapefs_tools.cli import emit, format_value, key_value_table, output_format_option, setup_logging, simple_table
from tapefs_tools.device_cli import (
    CliState,
    DeviceGroup,
    DeviceKind,
    raw_command,
    scan_command,
    state_of,
    trace_option,
)

COUNT = click.IntRange(1, 2**31 - 1)


def ready_timeout_option(fn):
    def remember(ctx: click.Context, _param, value: float | None) -> None:
        if value is not None:
            state_of(ctx).ready_timeout = value

    return click.option(
        "--ready-timeout",
        type=click.FloatRange(min=0),
        default=None,
        expose_value=False,
        callback=remember,
        metavar="SECONDS",
        help=f"How long to wait for a tape that is becoming ready (default {OPEN_READY_TIMEOUT:g}).",
    )(fn)


@click.group(cls=DeviceGroup)
@trace_option
@ready_timeout_option
@click.pass_context
def pmt(ctx: click.Context):
    """Control a tape drive through SCSI (SG_IO or a vtape socket)."""
    state_of(ctx)


def open_drive(path: str, state: CliState) -> Drive:
    """Open as PBS does: a load's unit attention is absorbed, a tape becoming ready waited for."""
    timeout = OPEN_READY_TIMEOUT if state.ready_timeout is None else state.ready_timeout
    return Drive.open(path, state.tracer(), ready_timeout=timeout)


DRIVE = DeviceKind(
    "drive",
    "Drive name from tape.cfg.",
    "Drive device path (/dev/sgN, /dev/tape/by-id/…, a vtape socket).",
    select_drive_path,
    open_drive,
)


def drive_command(name: str, **kwargs):
    def wrap(fn):
        return DRIVE.command(pmt, name, **kwargs)(ready_timeout_option(fn))

    return wrap


def _count_argument(default=None):
    if default is None:
        return click.argument("count", type=COUNT)
    return click.argument("count", type=click.IntRange(0, 2**31 - 1), default=default, required=False)


@drive_command("asf")
@click.argument("count", type=click.IntRange(0, 2**31 - 1))
def asf(drive: Drive, count: int):
    """Position at the beginning of file COUNT (0 = beginning of tape)."""
    drive.locate_file(count)


@drive_command("bsf")
@_count_argument()
def bsf(drive: Drive, count: int):
    """Space back COUNT filemarks (ends before the filemark, at the end of the previous file)."""
    drive.space_filemarks(-count)


@drive_command("bsfm")
@_count_argument()
def bsfm(drive: Drive, count: int):
    """Space back COUNT filemarks, then forward over the last one (start of that file)."""
    drive.backward_space_filemarks_then_forward(count)


@drive_command("bsr")
@_count_argument()
def bsr(drive: Drive, count: int):
    """Space back COUNT records."""
    drive.space_blocks(-count)


@drive_command("fsf")
@_count_argument()
def fsf(drive: Drive, count: int):
    """Space forward COUNT filemarks (ends at the start of the next file)."""
    drive.space_filemarks(count)


@drive_command("fsfm")
@_count_argument()
def fsfm(drive: Drive, count: int):
    """Space forward COUNT filemarks, then back before the last one."""
    drive.forward_space_filemarks_then_back(count)


@drive_command("fsr")
@_count_argument()
def fsr(drive: Drive, count: int):
    """Space forward COUNT records."""
    drive.space_blocks(count)


@drive_command("eod")
def eod(drive: Drive):
    """Move to end of data (to append)."""
    drive.space_to_end_of_data()


@drive_command("rewind")
def rewind(drive: Drive):
    """Rewind to the beginning of the tape."""
    drive.rewind()


@drive_command("weof")
@_count_argument(default=1)
def weof(drive: Drive, count: int):
    """Write COUNT filemarks (default 1; 0 flushes the drive's buffer)."""
    drive.write_filemarks(count)


@drive_command("load")
def load(drive: Drive):
    """Load (thread) the cartridge in the drive."""
    drive.load()


@drive_command("eject")
def eject(drive: Drive):
    """Rewind and unload the cartridge."""
    drive.eject()


@drive_command("lock")
def lock(drive: Drive):
    """Prevent medium removal."""
    drive.lock()


@drive_command("unlock")
def unlock(drive: Drive):
    """Allow medium removal."""
    drive.unlock()


@drive_command("erase")
@click.option("--fast/--no-fast", default=True, show_default=True, help="Write EOD only instead of erasing to the end.")
def erase(drive: Drive, fast: bool):
    """Erase from the current position."""
    drive.erase(fast=fast)


@drive_command("format")
@click.option("--fast/--no-fast", default=True, show_default=True, help="Skip the long erase after formatting.")
def format_(drive: Drive, fast: bool):
    """Format the whole tape as a single partition (erases all data)."""
    drive.format_medium(fast=fast)


@drive_command("options")
@click.option("--compression", type=bool, default=None, help="Hardware compression on or off.")
@click.option("--blocksize", type=click.IntRange(0, MAX_BLOCK_SIZE), default=None, help="Block size, 0 = variable.")
@click.option("--buffer-mode", "--buffer_mode", "buffer_mode", type=bool, default=None, help="Buffered mode on or off.")
@click.option("--defaults", is_flag=True, default=False, help="Compression on, variable blocks, buffered mode.")
@output_format_option
def options(drive: Drive, compression, blocksize, buffer_mode, defaults, output_format):
    """Set drive options; print the options in effect."""
    if defaults:
        drive.set_default_options()
    if compression is not None or blocksize is not None or buffer_mode is not None:
        drive.set_options(compression=compression, block_length=blocksize, buffer_mode=buffer_mode)
    result = drive.options()
    data = {"compression": result.compression, "blocksize": result.block_length, "buffer-mode": result.buffer_mode}
    emit(output_format, data, lambda out: out.print(key_value_table(list(data.items()))))


@drive_command("status")
@output_format_option
def status(drive: Drive, output_format: str):
    """Drive and medium status."""
    data = drive.status().to_dict()
    data["alert-flags"] = [flag_name(n) for n in data["alert-flags"]]
    emit(output_format, data, lambda out: out.print(key_value_table(list(data.items()))))


@drive_command("tape-alert-flags")
@output_format_option
def tape_alert_flags(drive: Drive, output_format: str):
    """TapeAlert flags the drive has set."""
    flags = drive.tape_alert_flags()
    data = [{"flag": n, "name": flag_name(n)} for n in flags]

    def render(out):
        if not flags:
            out.print("no TapeAlert flags set")
        for n in flags:
            out.print(f"{n:#04x} {flag_name(n)}", markup=False)

    emit(output_format, data, render)


@drive_command("volume-statistics")
@output_format_option
def volume_statistics(drive: Drive, output_format: str):
    """Volume statistics of the loaded cartridge (log page 17h)."""
    statistics = drive.volume_statistics()
    data = {key.replace("_", "-"): value for key, value in statistics.to_dict().items()}
    data["medium-passes"], data["medium-wearout"] = statistics.medium_passes, statistics.wearout
    emit(output_format, data, lambda out: out.print(key_value_table(list(data.items()))))


@drive_command("cartridge-memory")
@output_format_option
def cartridge_memory(drive: Drive, output_format: str):
    """Cartridge memory (MAM) attributes."""
    attributes = drive.cartridge_memory()
    data = [a.to_dict() for a in attributes]

    def render(out):
        table = simple_table("id", "name", "value")
        for a in data:
            table.add_row(a["id"], a["name"], format_value(a["value"]))
        out.print(table)

    emit(output_format, data, render)


@drive_command("encryption")
@click.option(
    "--key-file",
    type=click.File("rb"),
    default=None,
    help="Encrypt from now on with this AES-256 key (32 bytes, raw or as 64 hex digits).",
)
@click.option("--clear", is_flag=True, default=False, help="Switch hardware encryption off.")
@output_format_option
def encryption(drive: Drive, key_file, clear: bool, output_format: str):
    """Show the drive's hardware encryption state; set or clear the key."""
    if key_file is not None and clear:
        raise click.UsageError("give --key-file or --clear, not both")
    if key_file is not None:
        drive.set_encryption_key(_read_key(key_file.read()))
    elif clear:
        drive.clear_encryption_key()
    data = drive.encryption_status().to_dict()
    emit(output_format, data, lambda out: out.print(key_value_table(list(data.items()))))


def _read_key(raw: bytes) -> bytes:
    if len(raw) == 32:
        return raw
    text = raw.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except ValueError:
            raise ValueError(
                "the key file has 64 characters, but they are not hex digits "
                "(an AES-256 key is 32 raw bytes or 64 hex digits)"
            ) from None
    raise ValueError(f"an AES-256 key is 32 raw bytes or 64 hex digits; the key file has {len(raw)} bytes")


@drive_command("write")
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--block-size", type=click.IntRange(1, MAX_BLOCK_SIZE), default=DEFAULT_BLOCK_SIZE, show_default=True)
def write(drive: Drive, source, block_size: int):
    """Write SOURCE (default stdin) at the current position in blocks; no filemark is added."""
    while True:
        block = source.read(block_size)
        if not block:
            return
        if drive.write_block(block):
            click.echo("pmt: write: early warning, the tape is nearly full", err=True)


@drive_command("read")
@click.option(
    "--output", "target", type=click.File("wb"), default="-", help="Where to write the data (default stdout)."
)
@click.option(
    "--block-size",
    type=click.IntRange(1, MAX_BLOCK_SIZE),
    default=DEFAULT_BLOCK_SIZE,
    show_default=True,
    help="Read buffer: the largest block expected.",
)
def read(drive: Drive, target, block_size: int):
    """Read blocks from the current position to the end of the file (its filemark is passed).
    Fails at end of data when there was nothing left to read."""
    blocks = 0
    while True:
        try:
            target.write(drive.read_block(block_size))
        except FilemarkDetected:
            return
        except EndOfData:
            if blocks == 0:
                raise
            return
        blocks += 1


scan_command(pmt, "drive", "tape drives")
raw_command(pmt, DRIVE)


def main() -> None:
    setup_logging()
    pmt(prog_name="pmt")


if __name__ == "__main__":
    sys.exit(main())
