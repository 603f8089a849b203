"""The life of one mount: open the databases, the chunk cache and the read planner, serve FUSE
until unmounted or told to stop (SIGTERM, SIGINT, `tapefs umount`), then release everything.

Stopping fails the reads still waiting for a tape first (their threads return), then ends the
FUSE loop and unmounts; a crash leaves the mount point disconnected (ENOTCONN), never an empty
directory that looks like a mount with nothing on tape.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pyfuse3
import trio

from tapefs.catalog.file_catalog import FileCatalog
from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.config.paths import tape_status_dir
from tapefs.config.private_files import make_private_dirs, open_private_file
from tapefs.jobs.drive_session import drive_setup
from tapefs.media.inventory import Inventory
from tapefs.media.tape_config import load_tape_config
from tapefs.mount.chunk_cache import ChunkCache
from tapefs.mount.operations import Operations
from tapefs.mount.options import MountError, MountOptions, check_mountpoint
from tapefs.mount.read_planner import ReadPlanner
from tapefs.mount.tree import REFRESH_SECONDS, Tree

log = logging.getLogger(__name__)

CACHE_DIR_NAME = "mount-cache"
#: Under the tape status directory: one control file per mount (its server's pid), found by
#: `tapefs umount` without going through the mount, which may hang.
CONTROL_DIR_NAME = "mounts"
#: Kernel readahead for the mount (its default is 128 KiB): one chunk, so a `cp` asks in 1 MiB
#: requests (the FUSE maximum) instead of 256 KiB ones, a quarter of the round trips.
READ_AHEAD_KB = 4096
#: FUSE read requests the kernel keeps in flight at once for the mount (its default is 12). A
#: read waiting for a tape outside the library holds one; once all are held, every other read of
#: the mount queues behind them in the kernel. Each waiting read holds a thread here meanwhile.
MAX_BACKGROUND = 1024
#: glibc's mallopt parameter and the server's value (see `limit_malloc_arenas`).
M_ARENA_MAX = -8
MALLOC_ARENAS = 2
#: After mounting, how often and how long the limits are checked (and set again if reset).
LIMIT_CHECKS = 100
LIMIT_CHECK_INTERVAL = 0.1
#: The kernel's per-connection FUSE settings (the fusectl file system).
FUSE_CONNECTIONS = Path("/sys/fs/fuse/connections")
#: At a stop, how long the kernel is given to retry a read that failed, and the bound of the wait
#: for reads in flight (those in the middle of a tape operation finish it first).
RETRY_GRACE = 0.1
STOP_GRACE = 5.0
#: How long a killed server is given to go.
KILL_WAIT = 10.0


def fuse_options(options: MountOptions) -> set[str]:
    # Named even where pyfuse3 and libfuse already default to them: default_permissions makes the
    # kernel enforce every node's mode and owner; nosuid and nodev keep the set-user-ID files and
    # device nodes an archive may hold from granting privileges or reaching this host's devices.
    result = set(pyfuse3.default_options)
    result |= {"fsname=tapefs", "subtype=tapefs", "ro", "default_permissions", "nosuid", "nodev"}
    if options.allow_other:
        result.add("allow_other")
    if options.debug_fuse:
        result.add("debug")
    return result


def open_planner(options: MountOptions, cache: ChunkCache, status_dir: Path) -> ReadPlanner | None:
    config = load_tape_config()
    names = list(options.drives) or sorted(config.drives)
    unknown = [name for name in names if name not in config.drives]
    if unknown:
        raise MountError(
            f"drive {unknown[0]} is not in tape.cfg (drives: {', '.join(sorted(config.drives)) or 'none'})"
        )
    if not names:
        log.warning("no drive in tape.cfg: the tree can be browsed, reading a file fails")
        return None
    return ReadPlanner(
        [drive_setup(config, name) for name in names], cache, read_timeout=options.read_timeout, status_dir=status_dir
    )


class MountService:
    """Everything one mount holds; `run` serves until stopped."""

    def __init__(self, options: MountOptions):
        limit_malloc_arenas()  # before the server starts its threads
        self.options = options
        self.started = time.time()
        self._stack = ExitStack()
        status_dir = Path(options.status_dir) if options.status_dir else tape_status_dir()
        self.control_file = control_file(options.mountpoint, status_dir)
        try:
            self.inventory = self._stack.enter_context(Inventory.open(status_dir))
            self.media_catalog = self._stack.enter_context(MediaCatalog.open(status_dir))
            self.file_catalog = self._stack.enter_context(FileCatalog.open(status_dir))
            cache_dir = Path(options.cache_dir) if options.cache_dir else status_dir / CACHE_DIR_NAME
            self.cache = ChunkCache(cache_dir, options.cache_size)
            self.planner = open_planner(options, self.cache, status_dir)
            self.tree = Tree(
                self.inventory,
                self.media_catalog,
                self.file_catalog,
                self.planner,
                status=self.status,
                uid=os.getuid(),
                gid=os.getgid(),
                expose_raw=options.expose_raw,
            )
            # Before the databases close (the stack closes last in, first out).
            self._stack.callback(self.tree.close)
            self.operations = Operations(self.tree, xattrs=options.xattrs)
        except BaseException:
            self._stack.close()
            raise

    def status(self) -> dict:
        """The status file's content."""
        return _hyphenated(
            {
                "pid": os.getpid(),
                "mountpoint": str(self.options.mountpoint),
                "mounted-at": int(self.started),
                "uptime-seconds": round(time.time() - self.started, 1),
                "read-timeout-seconds": self.options.read_timeout,
                "reads": self.operations.statistics.to_dict(),
                "tapes": self._tape_stats(),
                "cache": self.cache.stats(),
                "tree": self.tree.stats(),
                "kernel-max-background": background_limit(self.options.mountpoint),
                "kernel-readahead-kb": readahead_kb(self.options.mountpoint),
            }
        )

    def _tape_stats(self) -> dict:
        if self.planner is None:
            return {"drives": [], "loads": 0}
        stats = self.planner.stats()
        stats.pop("cache", None)  # shown once, at the top level
        return stats

    def run(self, ready: Callable[[], None] | None = None) -> None:
        """Mount, call `ready` once the kernel's limits for the mount are raised, serve until
        unmounted or signalled, unmount."""
        check_mountpoint(self.options.mountpoint)
        try:
            pyfuse3.init(self.operations, str(self.options.mountpoint), fuse_options(self.options))
        except RuntimeError as error:
            self._stack.close()
            raise MountError(f"cannot mount {self.options.mountpoint}: {error} (is /dev/fuse usable?)") from None
        log.info("mounted %s", self.options.mountpoint)
        write_control_file(self.control_file, self.options.mountpoint)
        clean = False
        try:
            trio.run(self._serve, ready or (lambda: None))
            clean = True
        finally:
            self._stack.close()
            pyfuse3.close(unmount=clean)
            self.control_file.unlink(missing_ok=True)
            log.info("unmounted %s", self.options.mountpoint)

    async def _serve(self, ready: Callable[[], None]) -> None:
        async with trio.open_nursery() as nursery:
            if self.planner is not None:
                await nursery.start(self.planner.serve)
            nursery.start_soon(self._stop_on_signal, nursery.cancel_scope)
            nursery.start_soon(self._raise_kernel_limits, ready)
            nursery.start_soon(self._refresh_views)
            await pyfuse3.main()
            nursery.cancel_scope.cancel()
        # Every thread trio started has returned; only idle ones of its cache may remain.
        log.info("threads at exit: %s", ", ".join(sorted(thread.name for thread in threading.enumerate())))

    async def _answer_reads_in_flight(self) -> None:
        """Serve on until the failed reads are answered, and the kernel's retry of each too: a read
        the loop leaves unanswered when it stops gets ECONNABORTED instead of the documented EIO."""
        deadline = trio.current_time() + STOP_GRACE
        await trio.sleep(RETRY_GRACE)
        while self.operations.reads_in_flight and trio.current_time() < deadline:
            await trio.sleep(RETRY_GRACE)

    async def _refresh_views(self) -> None:
        """Every few seconds, the views are rebuilt if a backup, label or catalog command changed
        the databases: in a worker thread, so the loop answers requests from the old views
        meanwhile. A failed refresh leaves the old views and is tried again."""
        while True:
            await trio.sleep(REFRESH_SECONDS)
            try:
                await trio.to_thread.run_sync(self.tree.refresh)
            except Exception as error:  # anything raised here would end the mount
                log.warning("the views were not refreshed, the old ones stay: %s: %s", type(error).__name__, error)

    async def _raise_kernel_limits(self, ready: Callable[[], None]) -> None:
        """Raise the mount's readahead and request limits, then call `ready`: a file opened
        before keeps the kernel's 128 KiB readahead to its close (a `cp` started at once went
        20 % slower). The kernel sets both when it gets the answer to FUSE INIT, which the loop
        sends once it runs, and may reset ours then; they are checked for a while and set again.
        Where they cannot be set (not root), `ready` comes at once."""
        mountpoint = self.options.mountpoint
        told = False
        for _ in range(LIMIT_CHECKS):
            await trio.sleep(LIMIT_CHECK_INTERVAL)
            if kernel_limits_hold(mountpoint):
                if not told:
                    ready()
                    told = True
            elif not all([raise_readahead(mountpoint), raise_background_limit(mountpoint)]):
                break
        if not told:
            ready()

    async def _stop_on_signal(self, cancel_scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("%s: unmounting", signal.Signals(signum).name)
                if self.planner is not None:
                    self.planner.shutdown()  # waiting reads fail with EIO, their threads return
                await self._answer_reads_in_flight()
                pyfuse3.terminate()
                return


def limit_malloc_arenas() -> bool:
    """At most MALLOC_ARENAS of glibc's per-thread heaps; False where that is not glibc. A cold
    read frees 4 MiB chunks on other threads than made them, and each of the default 16 heaps
    kept its own high-water mark: a 1 GiB read left the server at 409 MB, with two heaps at 228 MB
    and the same speed. Only heaps created afterwards are bounded: call it before any thread."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS))
    except (OSError, AttributeError):
        return False


def _mount_device(mountpoint: Path) -> str | None:
    """The mount's device number ("0:46") from /proc/self/mountinfo: a stat of the mount point
    would wait for this very server."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(mountpoint):
            return fields[2]
    return None


def kernel_limits_hold(mountpoint: Path) -> bool:
    """Whether the mount's readahead and request limit are ours."""
    return readahead_kb(mountpoint) == READ_AHEAD_KB and background_limit(mountpoint) == MAX_BACKGROUND


def readahead_kb(mountpoint: Path) -> int | None:
    """The kernel's readahead for the mount in KiB; None where it cannot be read."""
    try:
        device = _mount_device(mountpoint)
        return None if device is None else int(Path(f"/sys/class/bdi/{device}/read_ahead_kb").read_text())
    except (OSError, ValueError):
        return None


def raise_readahead(mountpoint: Path) -> bool:
    """Best effort: only root may write the mount's backing-device setting. True when set."""
    try:
        device = _mount_device(mountpoint)
        if device is not None:
            Path(f"/sys/class/bdi/{device}/read_ahead_kb").write_text(f"{READ_AHEAD_KB}\n")
            return True
    except OSError as error:
        log.debug("readahead of %s left at the kernel's default: %s", mountpoint, error)
    return False


def background_limit(mountpoint: Path) -> int | None:
    """The kernel's current `max_background` for the mount; None where it cannot be read."""
    try:
        device = _mount_device(mountpoint)
        if device is None:
            return None
        return int((FUSE_CONNECTIONS / device.split(":")[1] / "max_background").read_text())
    except (OSError, ValueError):
        return None


def raise_background_limit(mountpoint: Path) -> bool:
    """MAX_BACKGROUND requests in flight instead of 12 (best effort, root only), so reads waiting
    for absent tapes do not hold up the others. The setting lives in the fusectl file system,
    which systemd mounts at boot; where nobody did, it is mounted here."""
    try:
        device = _mount_device(mountpoint)
        if device is None:
            return False
        connection = FUSE_CONNECTIONS / device.split(":")[1]
        if not connection.is_dir() and os.geteuid() == 0 and not os.path.ismount(FUSE_CONNECTIONS):
            subprocess.run(["mount", "-t", "fusectl", "fusectl", str(FUSE_CONNECTIONS)], capture_output=True)
        (connection / "max_background").write_text(f"{MAX_BACKGROUND}\n")
        (connection / "congestion_threshold").write_text(f"{MAX_BACKGROUND * 3 // 4}\n")
        return True
    except OSError as error:
        log.warning(
            "the kernel keeps at most 12 reads of %s in flight (%s): more than that many reads waiting "
            "for tapes outside the library hold up every other read until they end",
            mountpoint,
            error,
        )
        return False


def _hyphenated(value):
    """Keys as in every other tapefs JSON output (`bytes-from-tape`, not `bytes_from_tape`)."""
    if isinstance(value, dict):
        return {key.replace("_", "-"): _hyphenated(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_hyphenated(item) for item in value]
    return value


def control_file(mountpoint: Path, status_dir: Path | None = None) -> Path:
    """Where the server of `mountpoint` records its pid (outside the mount)."""
    directory = (status_dir or tape_status_dir()) / CONTROL_DIR_NAME
    return directory / (urllib.parse.quote(str(Path(mountpoint).absolute()), safe="") + ".json")


def write_control_file(path: Path, mountpoint: Path) -> None:
    make_private_dirs(path.parent)
    with os.fdopen(open_private_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w") as file:
        json.dump({"pid": os.getpid(), "mountpoint": str(mountpoint)}, file)


def mount_pid(mountpoint: Path) -> int | None:
    """The pid serving `mountpoint`, from its control file (None when there is none)."""
    try:
        return int(json.loads(control_file(mountpoint).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_mounted(mountpoint: Path) -> bool:
    """From /proc/self/mountinfo: a stat of the mount point would wait for a hung server."""
    wanted = os.fsencode(Path(mountpoint).absolute())
    for line in Path("/proc/self/mountinfo").read_bytes().splitlines():
        # The kernel writes space, tab, newline and backslash in a path as octal escapes.
        if re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), line.split()[4]) == wanted:
            return True
    return False


def unmount(mountpoint: Path, timeout: float = 60.0) -> None:
    """Stop the mount's server and wait until the mount point is gone. Reads still waiting for a
    tape fail with EIO. A server that does not stop within `timeout` (hung, or stopped) is detached
    lazily and killed; one without a control file is detached lazily."""
    mountpoint = Path(mountpoint).absolute()
    if not is_mounted(mountpoint):
        raise MountError(f"{mountpoint} is not mounted")
    pid = mount_pid(mountpoint)
    if pid is None or not _alive(pid):
        log.warning("no server answers for %s: detaching it", mountpoint)
        _detach(mountpoint)
        return
    os.kill(pid, signal.SIGTERM)
    if _stopped(mountpoint, pid, timeout):
        return
    log.warning(
        "the server of %s (pid %d) did not stop within %.0f s: detaching it and killing it", mountpoint, pid, timeout
    )
    if is_mounted(mountpoint):
        _detach(mountpoint)
    os.kill(pid, signal.SIGKILL)
    if not _stopped(mountpoint, pid, KILL_WAIT):
        raise MountError(f"the server of {mountpoint} (pid {pid}) did not stop, even when killed")
    control_file(mountpoint).unlink(missing_ok=True)


def _stopped(mountpoint: Path, pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_mounted(mountpoint) and not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has stopped serving; its parent just has not reaped it yet.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


def _detach(mountpoint: Path) -> None:
    for command in (["fusermount3", "-u", "-z", str(mountpoint)], ["umount", "-l", str(mountpoint)]):
        try:
            if subprocess.run(command, capture_output=True).returncode == 0:
                return
        except FileNotFoundError:
            continue
    raise MountError(f"cannot unmount {mountpoint}: neither fusermount3 nor umount succeeded")
