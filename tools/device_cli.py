"""What pmt and pmtx share: device options, output formats, tracing, one-line errors, raw CDBs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from tapefs.device import discovery
from tapefs.scsi.cdb import command_name, parse_hex_cdb
from tapefs.scsi.channel import Channel
from tapefs.scsi.errors import STATUS_NAMES
from tapefs.scsi.trace import Tracer, stream_tracer
from tapefs.scsi.transport import GOOD
from tapefs_tools.cli import CommandGroup, emit, output_format_option

RAW_DEFAULT_DATA_IN = 64 * 1024


@dataclasses.dataclass
class CliState:
    trace: bool = False
    device: str | None = None
    #: pmt: how long opening the drive waits while it is becoming ready
    ready_timeout: float | None = None

    def tracer(self) -> Tracer | None:
        return stream_tracer() if self.trace else None


class DeviceGroup(CommandGroup):
    """pmt's and pmtx's group: a failure names the device, ``pmt: error: <device>: <reason>``."""

    def failure_message(self, ctx: click.Context, error: BaseException) -> str:
        message = super().failure_message(ctx, error)
        state = ctx.find_object(CliState)
        if state is not None and state.device and state.device not in message:
            message = f"{state.device}: {message}"
        return message


def state_of(ctx: click.Context) -> CliState:
    return ctx.ensure_object(CliState)


def trace_option(fn: Callable) -> Callable:
    def enable(ctx: click.Context, _param, value: bool) -> None:
        if value:
            state_of(ctx).trace = True

    return click.option(
        "--trace",
        is_flag=True,
        expose_value=False,
        callback=enable,
        help="Print every CDB, its status, decoded sense and duration to stderr.",
    )(fn)


def hex_dump(data: bytes) -> str:
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hex_part = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset:08x}  {hex_part:<47}  {text}")
    return "\n".join(lines)


def run_raw(
    state: CliState,
    path: str,
    cdb_words: tuple[str, ...],
    data_in_len: int | None,
    data_out_hex: str | None,
    data_out_file: str | None,
    timeout: float | None,
    output_format: str,
) -> int:
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
    data = {
        "device": path,
        "command": command_name(cdb),
        "cdb": cdb.hex(" "),
        "status": result.status,
        "status-name": status_name,
        "data-length": len(result.data),
        "residual": result.residual,
        "duration-us": round(result.duration * 1e6),
        "data": result.data.hex(),
        "sense": sense.to_dict() if sense is not None else None,
    }

    def render(out: Console) -> None:
        out.print(
            f"{command_name(cdb)} [{cdb.hex(' ')}]: {status_name}, {len(result.data)} bytes in, "
            f"residual {result.residual}, {result.duration * 1000:.3f} ms",
            markup=False,
        )
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
    @click.option(
        "--vtape-library",
        "libraries",
        multiple=True,
        metavar="LIBDIR",
        help=f"Also list this vtape library's {kind}s (repeatable; env VTAPE_LIBRARIES).",
    )
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


@dataclasses.dataclass(frozen=True)
class DeviceKind:
    """How pmt (a drive) or pmtx (a changer) names and opens its device."""

    #: the option naming a tape.cfg entry: "drive" or "changer"
    name_option: str
    name_help: str
    device_help: str
    #: (name, device path) -> the path to open
    select_path: Callable[[str | None, str | None], str]
    #: (path, the command line's state) -> the opened Drive or Changer
    open: Callable[[str, CliState], Any]

    def options(self, fn: Callable) -> Callable:
        fn = click.option("--device", default=None, help=self.device_help)(fn)
        return click.option(f"--{self.name_option}", default=None, help=self.name_help)(fn)

    def path_of(self, selection: dict) -> str:
        """The device path the options in ``selection`` (removed from it) choose."""
        return self.select_path(selection.pop(self.name_option), selection.pop("device"))

    def command(self, group: click.Group, name: str, **kwargs) -> Callable:
        """A subcommand that takes the device options and gets the open device as its first argument."""

        def wrap(fn):
            @group.command(name, **kwargs)
            @self.options
            @trace_option
            @click.pass_context
            def command(ctx, **arguments):
                state = state_of(ctx)
                state.device = self.path_of(arguments)
                return fn(ctx.with_resource(self.open(state.device, state)), **arguments)

            command.help = fn.__doc__
            for param in reversed(getattr(fn, "__click_params__", [])):
                command.params.append(param)
            return command

        return wrap


def raw_command(group: click.Group, kind: DeviceKind) -> None:
    """Register `raw` on a group."""

    @group.command("raw")
    @click.argument("cdb", nargs=-1, required=True)
    @click.option(
        "--data-in-len",
        type=click.IntRange(0, 16 * 1024 * 1024),
        default=None,
        help=f"Data-in buffer size (default {RAW_DEFAULT_DATA_IN}, 0 with data-out).",
    )
    @click.option("--data-out-hex", default=None, help="Data-out bytes in hex.")
    @click.option(
        "--data-out-file",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="Send this file's bytes as data-out.",
    )
    @click.option(
        "--timeout",
        type=click.FloatRange(min=0.001),
        default=None,
        help="Command timeout in seconds (default: per opcode).",
    )
    @kind.options
    @output_format_option
    @trace_option
    @click.pass_context
    def raw(ctx, cdb, data_in_len, data_out_hex, data_out_file, timeout, output_format, **selection):
        """Send a CDB given in hex, e.g. `raw 12 00 00 00 24 00`; print data and decoded sense."""
        state = state_of(ctx)
        path = kind.path_of(selection)
        ctx.exit(run_raw(state, path, cdb, data_in_len, data_out_hex, data_out_file, timeout, output_format))
