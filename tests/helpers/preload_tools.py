"""Real programs (mtx, sg3-utils, stenc, Python children) run under the vtape LD_PRELOAD shim
against a real daemon, and a tape loaded for them over the plain protocol."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vtape.preload import preload_env

# Child code imports sgio_helper from here.
HERE = Path(__file__).resolve().parent
# mtx, tapeinfo and loaderinfo live in /usr/sbin, which a user's PATH may lack.
TOOL_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
TOOL_TIMEOUT = 60


def tool(name: str) -> str:
    """Absolute path of an installed tool, or skip (scripts/install.sh installs them)."""
    found = shutil.which(name, path=TOOL_PATH)
    if not found:
        pytest.skip(f"{name} is not installed (Debian packages mtx, sg3-utils, stenc; see scripts/install.sh)")
    return found


def run_tool(
    lib, name: str, *args, check: bool = True, timeout: float = TOOL_TIMEOUT, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run an installed tool with the shim preloaded; with check, fail showing its output."""
    argv = [tool(name), *map(str, args)]
    env = preload_env(None, lib.path)
    env["PATH"] = TOOL_PATH
    proc = subprocess.run(
        argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def run_python(code: str, lib=None, timeout: float = TOOL_TIMEOUT, preload: bool = True, **kwargs):
    """Run Python code in a child with the shim preloaded; the child prints one JSON object."""
    prologue = f"import sys, json\nsys.path.insert(0, {str(HERE)!r})\n"
    env = preload_env(None, lib.path if lib is not None else None) if preload else dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-c", prologue + textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    if proc.returncode != 0:
        pytest.fail(f"child exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def element_address(lib, slot: int | None = None, drive: int | None = None) -> int:
    state = lib.control("status")
    if drive is not None:
        return state["drives"][drive]["address"]
    for element in state["storage"] + state["import_export"]:
        if element["slot"] == slot:
            return element["address"]
    raise AssertionError(f"no slot {slot}")


def load_tape(lib, slot: int, drive: int = 0) -> None:
    """Move a cartridge into a drive over the plain protocol (no tool involved) and eat the
    unit attention the load raises, so the tool under test sees a ready drive."""
    source, dest = element_address(lib, slot=slot), element_address(lib, drive=drive)
    with lib.client("changer") as changer:
        cdb = bytes([0xA5, 0, 0, 0, source >> 8, source & 0xFF, dest >> 8, dest & 0xFF, 0, 0, 0, 0])
        reply = changer.execute(cdb)
        assert reply.status == 0, f"MOVE MEDIUM failed: sense {reply.sense.hex()}"
    with lib.client(f"drive{drive}") as dev:
        for _ in range(3):
            reply = dev.execute(bytes([0x03, 0, 0, 0, 252, 0]), data_in_len=252)  # REQUEST SENSE clears UAs
            if not (len(reply.data) > 2 and reply.data[2] & 0x0F == 6):
                break
        reply = dev.execute(bytes(6))  # TEST UNIT READY
        assert reply.status == 0, f"drive{drive} not ready after load: sense {reply.sense.hex()}"


def drive_state(lib, drive: int = 0) -> dict:
    return lib.control("status")["drives"][drive]
