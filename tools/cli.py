"""The one command-line layer of vtape, pmt, pmtx and tapefs.

Every front end's top-level group is a :class:`CommandGroup`: ``-h``/``--help``, a ``--debug``
flag, and one way to fail: ``PROG: error: MESSAGE`` on stderr with the exit status of the error's
class (docs/cli.md has the table). Listings use :func:`output_format_option` and :func:`emit`,
tables are printed with markup off (a comment holding ``[old]`` prints as written), and long jobs
report through :func:`progress_reporter`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import json
import logging
import os
import shutil
import sqlite3
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from tapefs.errors import ExitCode, TapefsError
from tapefs.progress import ProgressCallback, ProgressEvent
from vtape.errors import VtapeError

OUTPUT_FORMATS = ("text", "json", "json-pretty")
LOG_LEVEL_ENV = "TAPEFS_LOG"
#: a progress log line (no terminal) at most this often per stage, so a log stays readable
PLAIN_PROGRESS_INTERVAL = 5.0

progress_log = logging.getLogger("tapefs.progress")

#: errors an operator causes or a device reports: one line, no traceback (unless --debug); a
#: catalog database that is locked or damaged is one too
USER_ERRORS = (TapefsError, VtapeError, OSError, ValueError, sqlite3.Error)


def _exit_code(error: BaseException) -> int:
    if isinstance(error, (TapefsError, VtapeError)):
        return int(error.exit_code)
    if isinstance(error, (FileNotFoundError, NotADirectoryError)):
        return ExitCode.NOT_FOUND
    if isinstance(error, ValueError):
        return ExitCode.USAGE
    return ExitCode.FAILED


def error_message(error: BaseException) -> str:
    """The first line of an error's text (an OSError names its file), or its class name."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


def _enable_debug(ctx: click.Context, _param, value: bool) -> None:
    if value:
        ctx.meta["debug"] = True


class LazyGroup(click.Group):
    """A group whose subcommands named in `lazy_commands` (name → ``module:attribute``) are
    imported when one is used: ``tapefs datastore list`` loads the datastore commands alone, not
    boto3, fpdf and the FUSE layer, so each command starts in a fraction of the time."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            module, attribute = self.lazy_commands[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


class CommandGroup(LazyGroup):
    """A top-level command: ``-h``, ``--debug`` and one-line failures for every subcommand.

    Messages start with the group's name (``vtape: error: ...``), whatever the program was
    started as (``python -m vtape``)."""

    def __init__(self, *args, **kwargs):
        settings = kwargs.setdefault("context_settings", {})
        settings.setdefault("help_option_names", ["-h", "--help"])
        super().__init__(*args, **kwargs)
        self.params.append(
            click.Option(
                ["--debug"],
                is_flag=True,
                expose_value=False,
                is_eager=True,
                callback=_enable_debug,
                help="Show the traceback of a failure.",
            )
        )
        self.params.append(
            click.Option(
                ["--version"],
                is_flag=True,
                expose_value=False,
                is_eager=True,
                callback=self._print_version,
                help="Show the version and exit.",
            )
        )

    def _print_version(self, ctx: click.Context, _param, value: bool) -> None:
        if value:
            click.echo(f"{self.name} {importlib.metadata.version('tapefs')}")
            ctx.exit(0)

    def failure_message(self, ctx: click.Context, error: BaseException) -> str:
        """What to print after ``PROG: error: `` (a subclass may add the device)."""
        return error_message(error)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.UsageError):
            raise
        except click.ClickException as error:
            self._fail(ctx, error.format_message(), error.exit_code)
        except BrokenPipeError:
            # whoever read our output went away (`pmt read | head`): nobody is left to tell
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(ExitCode.FAILED)
        except KeyboardInterrupt:
            click.echo(f"{self.name}: interrupted", err=True)
            ctx.exit(ExitCode.INTERRUPTED)
        except USER_ERRORS as error:
            self._fail(ctx, self.failure_message(ctx, error), _exit_code(error))
        except Exception as error:  # a bug: say so, and where to see more
            self._fail(
                ctx,
                f"internal error: {type(error).__name__}: {error_message(error)} (run with --debug for the traceback)",
                ExitCode.INTERNAL,
            )

    def _fail(self, ctx: click.Context, message: str, code: int) -> None:
        if ctx.meta.get("debug"):
            traceback.print_exc(file=sys.stderr)
        click.echo(f"{self.name}: error: {message}", err=True)
        ctx.exit(code)


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr at TAPEFS_LOG's level (warning by default; ``verbose`` means info)."""
    level_name = "info" if verbose else os.environ.get(LOG_LEVEL_ENV, "warning")
    logging.basicConfig(
        level=getattr(logging, level_name.upper(), logging.WARNING),
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )


def output_format_option(fn: Callable) -> Callable:
    return click.option(
        "--output-format",
        type=click.Choice(OUTPUT_FORMATS),
        default="text",
        show_default=True,
        help="Output as text or JSON.",
    )(fn)


def kebab_keys(value: Any) -> Any:
    """JSON keys in kebab-case, as every listing has them (``in_library`` -> ``in-library``)."""
    if isinstance(value, dict):
        return {str(key).replace("_", "-"): kebab_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [kebab_keys(item) for item in value]
    return value


def emit_json(value: Any, output_format: str) -> None:
    indent = 2 if output_format == "json-pretty" else None
    click.echo(json.dumps(value, indent=indent, ensure_ascii=False))


def emit(output_format: str, data: Any, render_text: Callable[[Console], None]) -> None:
    """Print data as JSON, or call render_text with a console."""
    if output_format == "text":
        render_text(console())
    else:
        emit_json(data, output_format)


def console(stderr: bool = False) -> Console:
    """A console for data: no markup, emoji or highlighting, never truncated when piped.

    Values are data, not rich markup: with markup a comment like "[old]" vanishes and "[/foo]"
    fails; with emoji a key fingerprint's ":ab:" prints as an emoji. Pipes get a wide console,
    so tables never wrap in the middle of a barcode or a path.
    """
    stream = sys.stderr if stderr else sys.stdout
    width = shutil.get_terminal_size((200, 24)).columns if stream.isatty() else 1000
    return Console(file=stream, width=width, soft_wrap=not stream.isatty(), highlight=False, emoji=False, markup=False)


def table(*columns: str, right_aligned: tuple[str, ...] = ()) -> Table:
    result = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    for column in columns:
        result.add_column(column, justify="right" if column in right_aligned else "left", no_wrap=True, overflow="fold")
    return result


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


def print_table(columns: list[str], rows: list[list[str]], right_aligned: tuple[str, ...] = ()) -> None:
    result = table(*columns, right_aligned=right_aligned)
    for row in rows:
        result.add_row(*row)
    console().print(result)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


class _AmountColumn(ProgressColumn):
    """Bytes with their rate, or steps as n/m."""

    def __init__(self):
        super().__init__()
        self.downloaded, self.speed = DownloadColumn(), TransferSpeedColumn()

    def render(self, task) -> Text:
        if task.fields.get("unit") == "steps":
            return Text(f"{int(task.completed)}/{int(task.total or 0)}")
        return Text.assemble(self.downloaded.render(task), " ", self.speed.render(task))


@contextlib.contextmanager
def progress_reporter(description: str, enabled: bool = True) -> Iterator[ProgressCallback]:
    """A callback for a long job's progress events: a rich bar on a terminal, otherwise log lines
    at info level (shown with ``-v`` or TAPEFS_LOG=info) when the stage changes and every few
    seconds, so a log stays short. With ``enabled`` false it reports nothing."""
    err = console(stderr=True)
    if not enabled:
        yield lambda event: None
        return
    if err.is_terminal:
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            _AmountColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[detail]}"),
        ]
        with Progress(*columns, console=err, transient=True, refresh_per_second=5) as bar:
            task = bar.add_task(description, total=None, detail="", unit="bytes")

            def draw(event: ProgressEvent) -> None:
                title = event.message if event.unit == "steps" else description
                if event.message == "tape-loaded":
                    title = f"{description} {event.detail}"
                bar.update(
                    task,
                    description=title,
                    completed=event.current,
                    total=event.total,
                    detail=event.detail,
                    unit=event.unit,
                )

            yield draw
        return
    last: dict[str, Any] = {"message": None, "at": 0.0}

    def log_line(event: ProgressEvent) -> None:
        now = time.monotonic()
        if event.message == last["message"] and now - last["at"] < PLAIN_PROGRESS_INTERVAL:
            return
        last.update(message=event.message, at=now)
        if event.unit == "steps":
            done = f"{event.current}/{event.total}"
        else:
            done = human_size(event.current) + (f" of {human_size(event.total)}" if event.total else "")
            done += f", {event.rate / 1e6:.0f} MB/s"
        detail = f" ({event.detail})" if event.detail else ""
        progress_log.info("%s: %s: %s%s", description, event.message, done, detail)

    yield log_line
