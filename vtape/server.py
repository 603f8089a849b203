"""The vtape daemon: one Unix socket per device, plus a control socket.

Runs on one trio loop. Each device has a lock so its commands run one at a
time while other devices go on; a command's handler is synchronous (cartridge
I/O goes to the page cache and is short), only simulated delays await.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from pathlib import Path

import trio

from . import frame, operator
from .cartridge import FileRegion
from .client import send_parts, tune_buffers
from .errors import VtapeError
from .eventlog import EventLog
from .library import Library, LibraryError, load_config
from .sense import CHECK_CONDITION, HARDWARE_ERROR, CheckCondition
from .spc import Outcome

log = logging.getLogger(__name__)

CONTROL_LINE_LIMIT = 64 * 1024
MAX_CONNECTIONS = 256


def send_file_region(conn: socket.socket, region: FileRegion) -> None:
    offset, end = region.offset, region.offset + region.length
    while offset < end:
        sent = os.sendfile(conn.fileno(), region.fd, offset, end - offset)
        if sent == 0:
            raise frame.FrameError("cartridge data file ended early")
        offset += sent


class AllLocks:
    """Hold every device lock, always taken in the same order."""

    def __init__(self, locks: dict[str, threading.Lock]):
        self.locks = [locks[name] for name in sorted(locks)]

    def __enter__(self):
        for lock in self.locks:
            lock.acquire()

    def __exit__(self, *exc):
        for lock in reversed(self.locks):
            lock.release()


class DaemonError(VtapeError):
    """The daemon cannot start (library missing, another daemon running, ...)."""


class PidLock:
    """An flock on LIBDIR/daemon.pid: held while a daemon serves the library."""

    def __init__(self, libdir: Path):
        self.path = libdir / "daemon.pid"
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DaemonError(
                f"{self.path.parent}: a vtape daemon is already serving this library (pid {pid})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None


def running_pid(libdir: Path) -> int | None:
    """The pid of the daemon serving libdir, or None."""
    path = Path(libdir) / "daemon.pid"
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)


def _peer_uid(sock: trio.socket.SocketType) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


class Daemon:
    def __init__(self, libdir: Path):
        self.libdir = Path(libdir).resolve()
        self.library: Library | None = None
        self.events: EventLog | None = None
        self.allowed_uids = {os.getuid(), 0}
        self.stop_requested = trio.Event()
        self._connections: set[socket.socket] = set()
        self._threads = trio.CapacityLimiter(MAX_CONNECTIONS)
        self._locks: dict[str, threading.Lock] = {}

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        config = load_config(self.libdir)
        lock = PidLock(self.libdir)
        lock.acquire()
        socket_paths: list[Path] = []
        try:
            self.library = Library(self.libdir)
            self.events = EventLog(self.libdir / "events.jsonl")
            allow_all = config.get("allow_other_users", False)
            devices = {"changer": self.library.changer}
            devices.update({f"drive{d.index}": d for d in self.library.drives})
            self._locks = {name: threading.Lock() for name in devices}
            async with trio.open_nursery() as nursery:
                for name, device in devices.items():
                    listener, path = await self._listen(name, allow_all)
                    socket_paths.append(path)
                    await nursery.start(trio.serve_listeners, self._device_handler(name, device), [listener])
                listener, path = await self._listen("control", allow_all)
                socket_paths.append(path)
                await nursery.start(trio.serve_listeners, self._control_handler, [listener])
                nursery.start_soon(self._flush_events)
                nursery.start_soon(self._watch_signals, nursery.cancel_scope)
                log.info("serving %s: %s", self.libdir, ", ".join(p.name for p in socket_paths))
                task_status.started()
                await self.stop_requested.wait()
                await self._close_connections()
                nursery.cancel_scope.cancel()
        finally:
            for path in socket_paths:
                path.unlink(missing_ok=True)
            if self.library:
                self.library.close()
            if self.events:
                self.events.close()
            lock.release()
            log.info("stopped serving %s", self.libdir)

    async def _listen(self, name: str, allow_all: bool) -> tuple[trio.SocketListener, Path]:
        path = self.libdir / name
        # We hold the pid lock, so a socket file left here belongs to a dead daemon.
        path.unlink(missing_ok=True)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177 if not allow_all else 0o111)
        try:
            await sock.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o666 if allow_all else 0o600)
        sock.listen(64)
        return trio.SocketListener(sock), path

    def _peer_allowed(self, stream: trio.SocketStream) -> bool:
        if self.library.config.get("allow_other_users", False):
            return True
        uid = _peer_uid(stream.socket)
        if uid not in self.allowed_uids:
            log.warning("refused a connection from uid %d", uid)
            return False
        return True

    def _device_handler(self, name: str, device):
        async def handle(stream: trio.SocketStream) -> None:
            async with stream:
                if not self._peer_allowed(stream):
                    return
                # Commands run on a blocking socket in a worker thread: one thread per
                # connection moves 256 KiB records without a trio round trip per chunk,
                # and the system calls release the GIL so two drives stream at once.
                conn = socket.socket(fileno=os.dup(stream.socket.fileno()))
                conn.setblocking(True)
                tune_buffers(conn)
                self._connections.add(conn)
                try:
                    await trio.to_thread.run_sync(self._serve_connection, name, device, conn, limiter=self._threads)
                finally:
                    self._connections.discard(conn)
                    conn.close()

        return handle

    def _serve_connection(self, name: str, device, conn: socket.socket) -> None:
        try:
            while self._serve_one(name, device, conn):
                pass
        except frame.FrameError as e:
            log.warning("%s: dropped a connection: %s", name, e)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("%s: client went away", name)
        except Exception:
            # One bad connection must never take the library down.
            log.error("%s: connection failed\n%s", name, traceback.format_exc())

    def _serve_one(self, name: str, device, conn: socket.socket) -> bool:
        """Answer one request; False once the client has hung up."""
        raw = frame.recv_exactly(conn, frame.REQUEST_HEADER_SIZE, eof_ok=True)
        if raw is None:
            return False
        try:
            request = frame.decode_request_header(bytes(raw))
        except frame.FrameError:
            conn.sendall(frame.encode_reply_header(frame.Reply(0, host_status=frame.HOST_ERROR)))
            raise
        data_out = frame.recv_exactly(conn, request.data_out_len) if request.data_out_len else b""
        with self._locks_for(name):
            started = time.perf_counter()
            outcome = self._execute(name, device, request, data_out)
            delay = device.take_delay() if hasattr(device, "take_delay") else 0.0
            if delay:
                time.sleep(delay)
            elapsed_us = int((time.perf_counter() - started) * 1e6)
        if isinstance(outcome.data, FileRegion):
            region = outcome.data
            data = FileRegion(region.fd, region.offset, min(region.length, request.data_in_len))
        else:
            data = memoryview(outcome.data)[: request.data_in_len]
        residual = request.data_in_len - len(data) if not request.data_out_len else 0
        reply = frame.Reply(outcome.status, sense=outcome.sense, data=data, residual=residual, duration_us=elapsed_us)
        self.events.command(
            name,
            device.command_name(request.cdb[0]),
            request.cdb,
            outcome.status,
            outcome.sense,
            request.data_out_len,
            len(data),
            elapsed_us,
        )
        if isinstance(data, FileRegion):
            send_parts(conn, [frame.encode_reply_header(reply), outcome.sense])
            send_file_region(conn, data)
        else:
            send_parts(conn, [frame.encode_reply_header(reply), outcome.sense, data])
        return True

    def _locks_for(self, name: str):
        """A drive command locks its drive; changer commands and control requests lock everything."""
        if name.startswith("drive"):
            return self._locks[name]
        return AllLocks(self._locks)

    def _execute(self, name, device, request, data_out):
        try:
            return device.execute(request.cdb, memoryview(data_out), request.data_in_len)
        except Exception:
            # A bug in a handler must not take the library down: report it as the
            # drive would report an internal failure, and log it loudly.
            log.error("%s: internal error on CDB %s\n%s", name, request.cdb.hex(), traceback.format_exc())
            return Outcome(CHECK_CONDITION, sense=CheckCondition(HARDWARE_ERROR, 0x44, 0x00).sense())

    async def _close_connections(self) -> None:
        """Wake every worker thread blocked on a client and wait until they have returned."""
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with trio.move_on_after(30):
            while self._connections:
                await trio.sleep(0.01)

    async def _control_handler(self, stream: trio.SocketStream) -> None:
        async with stream:
            if not self._peer_allowed(stream):
                return
            buffer = b""
            while True:
                try:
                    chunk = await stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                if not chunk:
                    return
                buffer += chunk
                if len(buffer) > CONTROL_LINE_LIMIT:
                    await self._send_json(stream, {"ok": False, "error": "control request too long"})
                    return
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    await self._send_json(stream, await self._control(line))

    async def _control(self, line: bytes) -> dict:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            return {"ok": False, "error": f"bad control request: {e}"}
        if request.get("op") == "stop":
            self.stop_requested.set()
            return {"ok": True, "stopping": True}
        try:
            result = await trio.to_thread.run_sync(self._operate, request)
        except (LibraryError, ValueError) as e:
            return {"ok": False, "error": str(e)}
        except KeyError as e:
            return {"ok": False, "error": f"missing field {e} in control request"}
        except TypeError as e:
            return {"ok": False, "error": f"bad control request: {e}"}
        self.events.note(control=request.get("op"), request=request)
        return {"ok": True, **result}

    def _operate(self, request: dict) -> dict:
        with AllLocks(self._locks):
            return operator.run(self.library, request)

    @staticmethod
    async def _send_json(stream, obj) -> None:
        try:
            await stream.send_all(json.dumps(obj).encode() + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _flush_events(self) -> None:
        while True:
            await trio.sleep(0.2)
            self.events.flush()

    async def _watch_signals(self, cancel_scope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("signal %d: stopping", signum)
                self.stop_requested.set()
                return


def serve(libdir: Path) -> None:
    """Run the daemon in the foreground until SIGTERM/SIGINT or a stop request."""
    trio.run(Daemon(libdir).run)


def main(argv: list[str]) -> int:
    """``python -m vtape.server LIBDIR``: what ``vtape start`` runs in the background."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(Path(argv[0]))
    except (DaemonError, LibraryError) as e:
        print(f"vtape: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
