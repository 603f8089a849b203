"""What pmt and pmtx share: device options, output formats, tracing, one-line errors, raw CDBs."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from tapefs.device import discovery
from tapefs.device.changer import ChangerError
from tapefs.device.drive import PositionError
from tapefs.media.drive_selection import DeviceSelectionError
from tapefs.scsi.cdb import command_name, parse_hex_cdb
from tapefs.scsi.channel import Channel
from tapefs.scsi.errors import STATUS_NAMES, ScsiError
from tapefs.scsi.trace import Tracer, stream_tracer
from tapefs.scsi.transport import GOOD

LOG_LEVEL_ENV = "TAPEFS_LOG"
OUTPUT_FORMATS = ("text", "json", "json-pretty")
#: Failures an operator causes or a device reports: one line on stderr, never a traceback.
EXPECTED_ERRORS = (ScsiError, DeviceSelectionError, ChangerError, PositionError, ValueError, OSError)
RAW_DEFAULT_DATA_IN = 64 * 1024


@dataclasses.dataclass
class CliState:
    trace: bool = False
    device: str | None = None

    def tracer(self) -> Tracer | None:
        return stream_tracer() if self.trace else None


class DeviceGroup(click.Group):
    """A click group whose subcommands fail with one line: ``pmt: rewind: <device>: <reason>``."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # Whoever read our output went away (`pmt read | head`); there is nobody to tell.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo(f"{ctx.info_name}: {ctx.invoked_subcommand}: interrupted", err=True)
            ctx.exit(130)
        except EXPECTED_ERRORS as exc:
            state = ctx.find_object(CliState)
            message = str(exc) or type(exc).__name__
            if state is not None and state.device and state.device not in message:
                message = f"{state.device}: {message}"
            click.echo(f"{ctx.info_name}: {ctx.invoked_subcommand}: {message}", err=True)
            ctx.exit(getattr(exc, "exit_code", 1))


def setup_logging() -> None:
    level = os.environ.get(LOG_LEVEL_ENV, "warning").upper()
    logging.basicConfig(level=getattr(logging, level, logging.WARNING), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def state_of(ctx: click.Context) -> CliState:
    return ctx.ensure_object(CliState)


def trace_option(fn: Callable) -> Callable:
    def enable(ctx: click.Context, _param, value: bool) -> None:
        if value:
            state_of(ctx).trace = True
    return click.option("--trace", is_flag=True, expose_value=False, callback=enable,
                        help="Print every CDB, its status, decoded sense and duration to stderr.")(fn)


def output_format_option(fn: Callable) -> Callable:
    return click.option("--output-format", type=click.Choice(OUTPUT_FORMATS), default="text", show_default=True,
                        help="Output as text or JSON.")(fn)


def console() -> Console:
    # Pipes get a wide console, so tables are never wrapped in the middle of a barcode. Values are
    # data, not rich markup: without emoji=False a key fingerprint's ":ab:" prints as an emoji,
    # and without markup=False a comment like "[old]" vanishes.
    width = shutil.get_terminal_size((160, 24)).columns if sys.stdout.isatty() else 160
    return Console(width=width, soft_wrap=False, highlight=False, emoji=False, markup=False)


def emit(output_format: str, data: Any, render_text: Callable[[Console], None]) -> None:
    """Print data as JSON, or call render_text with a console."""
    if output_format == "json":
        click.echo(json.dumps(data, sort_keys=False))
    elif output_format == "json-pretty":
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        render_text(console())


def key_value_table(rows: list[tuple[str, Any]]) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, format_value(value))
    return table


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value * 100:.2f}%" if value <= 1 else f"{value:g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def simple_table(*columns: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        table.add_column(column)
    return table


def hex_dump(data: bytes) -> str:
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset:offset + 16]
        hex_part = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset:08x}  {hex_part:<47}  {text}")
    return "\n".join(lines)


def run_raw(state: CliState, path: str, cdb_words: tuple[str, ...], data_in_len: int | None,
            data_out_hex: str | None, data_out_file: str | None, timeout: float | None, output_format: str) -> int:
    """Send one CDB as typed; print status, data and decoded sense. Exit status 0 only for GOOD."""
    cdb = parse_hex_cdb(" ".join(cdb_words))
    if data_out_hex is not None and data_out_file is not None:
        raise click.UsageError("give --data-out-hex or --data-out-file, not both")
    data_out = b""
    if data_out_hex is not None:
        try:
            data_out = bytes.fromhex(data_out_hex.replace(" ", "").replace(":", ""))
        except ValueError:
            raise click.BadParameter(f"{data_out_hex!r} is not hex", param_hint="--data-out-hex") from None
    elif data_out_file is not None:
        with open(data_out_file, "rb") as source:
            data_out = source.read()
    if data_in_len is None:
        data_in_len = 0 if data_out else RAW_DEFAULT_DATA_IN
    state.device = path
    with Channel.open(path, state.tracer()) as channel:
        result, sense = channel.execute(cdb, data_out, data_in_len, timeout)
    status_name = STATUS_NAMES.get(result.status, f"{result.status:#04x}")
    data = {"device": path, "command": command_name(cdb), "cdb": cdb.hex(" "), "status": result.status,
            "status-name": status_name, "data-length": len(result.data), "residual": result.residual,
            "duration-us": round(result.duration * 1e6), "data": result.data.hex(),
            "sense": sense.to_dict() if sense is not None else None}

    def render(out: Console) -> None:
        out.print(f"{command_name(cdb)} [{cdb.hex(' ')}]: {status_name}, {len(result.data)} bytes in, "
                  f"residual {result.residual}, {result.duration * 1000:.3f} ms", markup=False)
        if result.data:
            out.print(hex_dump(result.data), markup=False)
        if sense is not None:
            out.print(f"sense: {sense.describe()}", markup=False)
            out.print(f"sense bytes: {sense.raw.hex(' ')}", markup=False)

    emit(output_format, data, render)
    return 0 if result.status == GOOD else 1


def scan_command(group: click.Group, kind: str, plural: str) -> None:
    """Register `scan` on a group: list the devices of one kind ("drive" or "changer")."""

    @group.command("scan", help=f"List {plural}: path (vendor/model/serial).")
    @click.option("--vtape-library", "libraries", multiple=True, metavar="LIBDIR",
                  help=f"Also list this vtape library's {kind}s (repeatable; env VTAPE_LIBRARIES).")
    @output_format_option
    @trace_option
    def scan(libraries, output_format: str):
        devices = discovery.scan(list(libraries), kind=kind)

        def render(out):
            if not devices:
                out.print(f"no {plural} found")
            for d in devices:
                out.print(f"{d.path} ({d.vendor}/{d.model}/{d.serial})", markup=False)
        emit(output_format, [d.to_dict() for d in devices], render)


def raw_command(group: click.Group, select_path: Callable[..., str], device_options: Callable) -> None:
    """Register `raw` on a group; select_path maps the device options to a path."""

    @group.command("raw")
    @click.argument("cdb", nargs=-1, required=True)
    @click.option("--data-in-len", type=click.IntRange(0, 16 * 1024 * 1024), default=None,
                  help=f"Data-in buffer size (default {RAW_DEFAULT_DATA_IN}, 0 with data-out).")
    @click.option("--data-out-hex", default=None, help="Data-out bytes in hex.")
    @click.option("--data-out-file", type=click.Path(exists=True, dir_okay=False), default=None,
                  help="Send this file's bytes as data-out.")
    @click.option("--timeout", type=click.FloatRange(min=0.001), default=None,
                  help="Command timeout in seconds (default: per opcode).")
    @device_options
    @output_format_option
    @trace_option
    @click.pass_context
    def raw(ctx, cdb, data_in_len, data_out_hex, data_out_file, timeout, output_format, **selection):
        """Send a CDB given in hex, e.g. `raw 12 00 00 00 24 00`; print data and decoded sense."""
        state = state_of(ctx)
        path = select_path(**selection)
        ctx.exit(run_raw(state, path, cdb, data_in_len, data_out_hex, data_out_file, timeout, output_format))
