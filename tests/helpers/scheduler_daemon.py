"""Helpers for scheduler tests: the real `tapefs scheduler` as a subprocess, job state files read
as the daemon writes them, and a snapshot whose index is a FIFO (reading it blocks until the test
writes to it), so a verify task runs exactly as long as a test wants."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tests.helpers.commands import command_path
from tests.helpers.synthetic_snapshots import ARCHIVE_NAME, make_snapshot


def start_scheduler(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([command_path("tapefs"), "scheduler", "--tick", "1", *args], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def job_state(env: dict[str, str], kind: str, job_id: str) -> dict | None:
    path = Path(env["TAPEFS_STATE_DIR"]) / "jobstates" / f"{kind}-{job_id}.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def wait_for_state(env: dict[str, str], kind: str, job_id: str, wanted: str, timeout: float = 60) -> dict:
    """The job's state once it is `wanted` (started or finished), else the test fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = job_state(env, kind, job_id)
        if state is not None and wanted in state:
            return state
        time.sleep(0.1)
    raise AssertionError(f"{kind} {job_id} not {wanted} within {timeout} s: {job_state(env, kind, job_id)}")


def a_few_seconds_ahead(seconds: int = 3) -> str:
    """A one-shot calendar event (UTC) `seconds` from now."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() + seconds))


def blocking_snapshot(store: Path, backup_id: str = "a") -> Path:
    """A finished snapshot host/ID whose one index is a FIFO; returns the FIFO's path."""
    datastore = Datastore.open(store)
    snapshot = BackupSnapshot(BackupGroup(BackupNamespace(), "host", backup_id), 1_700_000_000)
    make_snapshot(datastore, snapshot, pieces=[b"blocking" * 64])
    fifo = next((store / "host" / backup_id).iterdir()) / ARCHIVE_NAME
    fifo.unlink()
    os.mkfifo(fifo)
    return fifo


def release(fifo: Path) -> None:
    """Let the reader of a blocking snapshot go on (it reads a damaged index)."""
    fd = os.open(fifo, os.O_WRONLY)
    os.write(fd, b"not an index")
    os.close(fd)
