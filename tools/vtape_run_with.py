"""``vtape run-with LIBDIR -- COMMAND...``: run a program with the vtape SG_IO shim preloaded."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from vtape.daemon import accepts
from vtape.preload import PreloadError, check_library, exec_with, preload_env


@click.command("run-with", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("libdir", type=click.Path(path_type=Path))
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--no-daemon-check",
    is_flag=True,
    help="run even if no daemon serves LIBDIR yet (device opens then fail with ECONNREFUSED)",
)
@click.option(
    "--print-env",
    is_flag=True,
    help="print shell export lines (LD_PRELOAD, CHANGER, TAPE) instead of running a command; "
    'use as: eval "$(vtape run-with --print-env LIBDIR)"',
)
def run_with(libdir: Path, command: tuple[str, ...], no_daemon_check: bool, print_env: bool) -> None:
    """Run COMMAND with the vtape LD_PRELOAD shim, so LIBDIR/changer and LIBDIR/driveN act as /dev/sgN.

    Example: vtape run-with LIBDIR -- mtx -f LIBDIR/changer status

    CHANGER and TAPE default to LIBDIR/changer and LIBDIR/drive0. The shim only affects
    dynamically linked programs; see docs/preload.md.
    """
    if command and command[0] == "--":  # click keeps "--" once positional parsing has started
        command = command[1:]
    if not command and not print_env:
        raise click.UsageError("no COMMAND given (vtape run-with LIBDIR -- COMMAND...)")
    try:
        lib = check_library(libdir)
        env = preload_env({}, lib)
    except PreloadError as e:
        raise click.ClickException(str(e)) from None
    if print_env:
        for name in ("LD_PRELOAD", "CHANGER", "TAPE"):
            click.echo(f"export {name}={shlex.quote(env[name])}")
        return
    if not no_daemon_check and not accepts(lib / "changer"):
        raise click.ClickException(f"no vtape daemon is serving {libdir} (start it with: vtape start {libdir})")
    try:
        exec_with(list(command), lib)
    except FileNotFoundError:
        click.echo(f"vtape run-with: {command[0]}: command not found", err=True)
        sys.exit(127)
    except PermissionError:
        click.echo(f"vtape run-with: {command[0]}: permission denied", err=True)
        sys.exit(126)
    except PreloadError as e:
        raise click.ClickException(str(e)) from None


if __name__ == "__main__":
    run_with()
