"""Run pmt and pmtx as real subprocesses, in a clean environment."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TAPE", "CHANGER", "PROXMOX_TAPE_DRIVE", "VTAPE_LIBRARIES", "TAPEFS_LOG")}
    env["TAPEFS_CONFIG_DIR"] = str(tmp_path / "config")
    env.update(extra)
    return env


def run(tool: str, *args: str, env: dict[str, str], input: bytes | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run `tool` (pmt or pmtx); with check, fail the test with its stderr on a non-zero exit."""
    proc = subprocess.run([sys.executable, "-m", f"tapefs_tools.{tool}", *args], cwd=REPO, env=env, input=input,
                          capture_output=True, timeout=60)
    if check:
        assert proc.returncode == 0, f"{tool} {' '.join(args)} exited {proc.returncode}:\n{proc.stderr.decode()}"
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


def run_json(tool: str, *args: str, env: dict[str, str]):
    return json.loads(run(tool, *args, "--output-format", "json", env=env).stdout)


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command."""
    assert proc.returncode != 0
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]
