"""Starting and stopping the daemon in the background, and talking to its control socket."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from .library import load_config
from .server import DaemonError, running_pid

START_TIMEOUT = 30.0


class NotRunning(DaemonError):
    pass


def control(libdir: Path, request: dict, timeout: float = 30.0) -> dict:
    """Send one control request to the running daemon and return its answer."""
    path = Path(libdir) / "control"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, NotADirectoryError, ConnectionRefusedError):
        sock.close()
        raise NotRunning(f"{libdir}: no vtape daemon is running (start one with: vtape start {libdir})") from None
    with sock:
        sock.sendall(json.dumps(request).encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise DaemonError(f"{libdir}: the daemon closed the control connection")
            answer += chunk
    return json.loads(answer)


def start(libdir: Path) -> int:
    """Start ``vtape serve`` in the background; return its pid once every socket accepts."""
    libdir = Path(libdir).resolve()
    config = load_config(libdir)
    pid = running_pid(libdir)
    if pid:
        raise DaemonError(f"{libdir}: a vtape daemon is already serving this library (pid {pid})")
    log_path = libdir / "daemon.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "vtape.server", str(libdir)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
            cwd="/",
        )
    sockets = [libdir / "changer", libdir / "control"] + [libdir / f"drive{i}" for i in range(len(config["drives"]))]
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise DaemonError(f"the daemon exited with status {process.returncode}: {tail[0]}")
        if all(accepts(p) for p in sockets):
            return process.pid
        time.sleep(0.05)
    process.terminate()
    raise DaemonError(f"{libdir}: the daemon did not open its sockets within {START_TIMEOUT:.0f} s (see {log_path})")


def accepts(path: Path) -> bool:
    """Whether a daemon accepts connections on this socket path."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def stop(libdir: Path, timeout: float = 30.0) -> int:
    """Ask the daemon to stop and wait until it has released the library."""
    libdir = Path(libdir).resolve()
    load_config(libdir)
    pid = running_pid(libdir)
    if not pid:
        raise NotRunning(f"{libdir}: no vtape daemon is running")
    try:
        control(libdir, {"op": "stop"})
    except NotRunning:
        os.kill(pid, 15)
    deadline = time.monotonic() + timeout
    while running_pid(libdir):
        if time.monotonic() > deadline:
            raise DaemonError(f"{libdir}: daemon pid {pid} did not stop within {timeout:.0f} s")
        time.sleep(0.05)
    return pid


def perform(libdir: Path, request: dict) -> dict:
    """Run an operator request through the daemon, or on the directory when none runs."""
    from . import operator
    from .library import Library, LibraryError
    from .server import PidLock

    try:
        return control(libdir, request)
    except NotRunning:
        pass
    load_config(libdir)  # no library here: say so before the pid lock creates a file
    lock = PidLock(Path(libdir).resolve())
    lock.acquire()
    try:
        library = Library(libdir)
        try:
            return {"ok": True, **operator.run(library, request)}
        except (LibraryError, ValueError) as e:
            return {"ok": False, "error": str(e)}
        finally:
            library.close()
    finally:
        lock.release()
