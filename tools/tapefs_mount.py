"""``tapefs mount`` and ``tapefs umount``: the tape archive as a read-only file tree."""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
from pathlib import Path

import click

from tapefs.config.paths import tape_status_dir
from tapefs.config.private_files import make_private_dirs, open_private_file
from tapefs.config.sizes import parse_size
from tapefs.mount.options import DEFAULT_READ_TIMEOUT, MountError, MountOptions, check_mountpoint

LOG_NAME = "mount.log"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: How long `tapefs mount` waits for its server to report the mount ready.
READY_TIMEOUT = 60.0
#: The largest chunk PBS writes: a smaller cache could not hold what one read needs.
MIN_CACHE_SIZE = 16 * 1024 * 1024


def _size(ctx, param, value: str) -> int:
    try:
        size = parse_size(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if size < MIN_CACHE_SIZE:
        raise click.BadParameter(f"{value} is less than one chunk can be (16MiB)")
    return size


@click.command("mount")
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=Path))
@click.option("--foreground", is_flag=True, help="Stay attached and log to stderr.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where read chunks are kept [default: STATE_DIR/tape/mount-cache].",
)
@click.option("--cache-size", default="4GiB", show_default=True, callback=_size, help="Bound of the chunk cache.")
@click.option(
    "--allow-other",
    is_flag=True,
    help="Let other users in (FUSE allow_other); archived files keep their owners and modes.",
)
@click.option(
    "--expose-raw",
    is_flag=True,
    help="Let every user read raw tape files, images, streams and snapshot blobs (default: the mount's owner only).",
)
@click.option(
    "--read-timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_READ_TIMEOUT,
    show_default=True,
    help="Seconds a read waits for a tape that is not in the library before it fails (ENOMEDIUM).",
)
@click.option(
    "--no-xattrs",
    is_flag=True,
    help="No extended attributes: faster `ls -l` over huge trees (it asks for two per file).",
)
@click.option("--drive", "drives", multiple=True, help="Drive of tape.cfg to use (repeat; default: all).")
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Log of the background server [default: STATE_DIR/tape/mount.log].",
)
@click.option("--ready-fd", type=int, hidden=True)
def mount(
    mountpoint: Path,
    foreground: bool,
    cache_dir,
    cache_size: int,
    allow_other: bool,
    expose_raw: bool,
    read_timeout: float,
    no_xattrs: bool,
    drives: tuple[str, ...],
    log_file,
    ready_fd,
) -> None:
    """Show everything on tape under MOUNTPOINT; reading a file loads the tapes it needs."""
    try:
        check_mountpoint(mountpoint)
    except MountError as error:
        raise click.ClickException(str(error)) from None
    options = MountOptions(
        mountpoint.absolute(),
        cache_dir,
        cache_size,
        allow_other,
        read_timeout,
        drives,
        xattrs=not no_xattrs,
        expose_raw=expose_raw,
    )
    if not foreground:
        _start_in_background(log_file or tape_status_dir() / LOG_NAME)
        click.echo(f"mounted {mountpoint}")
        return
    if ready_fd is None:
        # Attached to a terminal: INFO lines tell the operator which tape to insert.
        logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    # The server runs for days: each line says when it happened.
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    # pyfuse3 and the planner load only for the server, not for every tapefs command.
    from tapefs.mount.service import MountService

    try:
        service = MountService(options)
        service.run(ready=lambda: _report_ready(ready_fd))
    except MountError as error:
        raise click.ClickException(str(error)) from None


def _report_ready(ready_fd: int | None) -> None:
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)


def _start_in_background(log_file: Path) -> None:
    """Run this command again with --foreground, detached, and return once it has mounted."""
    make_private_dirs(log_file.parent)
    read_end, write_end = os.pipe()
    arguments = [arg for arg in sys.argv[1:]]
    command = [sys.executable, "-m", "tapefs", "--verbose", *arguments, "--foreground", "--ready-fd", str(write_end)]
    with os.fdopen(open_private_file(log_file, os.O_WRONLY | os.O_APPEND), "ab") as log:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(write_end,), start_new_session=True
        )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as ready:
        readable, _, _ = select.select([ready], [], [], READY_TIMEOUT)
        answer = ready.read(1) if readable else None
    if answer is None:
        child.kill()
        child.wait()
        raise click.ClickException(
            f"the mount server did not report ready within {READY_TIMEOUT:.0f} s and was stopped: {_last_error(log_file)}"
        )
    if answer != b"1":
        code = child.wait(timeout=READY_TIMEOUT)
        raise click.ClickException(f"the mount server exited ({code}): {_last_error(log_file)}")


def _last_error(log_file: Path) -> str:
    lines = log_file.read_text(errors="replace").strip().splitlines()
    errors = [line for line in lines if "error" in line.lower()]
    last = (errors or lines or [f"see {log_file}"])[-1]
    return last.removeprefix("tapefs: error: ")


@click.command("umount")
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the server to stop.",
)
def umount(mountpoint: Path, timeout: float) -> None:
    """Unmount a tapefs mount; reads still waiting for a tape fail."""
    from tapefs.mount.service import unmount

    try:
        unmount(mountpoint, timeout)
    except MountError as error:
        raise click.ClickException(str(error)) from None
