"""A real ``vtape serve`` subprocess over a library in a short temporary directory."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vtape import daemon
from vtape.client import DeviceClient
from vtape.daemon import accepts
from vtape.library import CreateOptions, create_library

START_TIMEOUT = 20.0


class VtapeLibrary:
    """A library directory and the daemon serving it.

    Unix socket paths are limited to 108 bytes, so the library lives in a short
    directory under /tmp rather than in pytest's deep tmp_path.
    """

    def __init__(self, timing_overrides: dict | None = None, **create_options):
        """timing_overrides: seconds to put into the library's simulated timing (e.g.
        ``{"load_seconds": 30}``) before the daemon starts; with ``timing=True``."""
        self.root = Path(tempfile.mkdtemp(prefix="vt", dir="/tmp"))
        self.path = self.root / "lib"
        create_library(self.path, CreateOptions(**create_options))
        if timing_overrides:
            config_path = self.path / "library.json"
            config = json.loads(config_path.read_text())
            config["timing"].update(timing_overrides)
            config_path.write_text(json.dumps(config))
        self.log_path = self.root / "daemon.log"
        self.process: subprocess.Popen | None = None
        self.changer = str(self.path / "changer")
        self.drives = [str(self.path / f"drive{i}") for i in range(create_options.get("drives", 2))]

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vtape.server", str(self.path)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + START_TIMEOUT
        sockets = [self.changer, *self.drives, str(self.path / "control")]
        while not all(accepts(p) for p in sockets):
            if self.process.poll() is not None:
                raise RuntimeError(f"vtape serve exited {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"vtape serve did not start:\n{self.log()}")
            time.sleep(0.02)

    def stop(self) -> int:
        """SIGTERM the daemon and return its exit status."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=20)
        self.process = None
        return code

    def kill(self) -> None:
        """kill -9: the daemon gets no chance to tidy up."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def control(self, op: str, **fields) -> dict:
        return daemon.control(self.path, {"op": op, **fields})

    def client(self, device: str = "drive0") -> DeviceClient:
        return DeviceClient(self.path / device)

    def cleanup(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
