"""Our commands — tapefs, vtape, pmt, pmtx — run the way a user runs them: the installed entry
points as real subprocesses, in an environment of the test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMMANDS = ("tapefs", "vtape", "pmt", "pmtx")
# Variables through which the caller's environment would name its own devices, libraries or log
# level; a test names what it uses.
OUTSIDE_VARIABLES = ("TAPE", "CHANGER", "PROXMOX_TAPE_DRIVE", "VTAPE_LIBRARIES")


def isolated_env(root: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any TAPEFS_* or device variable, with configuration
    and state under `root` (root/config, root/state), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEFS_") and k not in OUTSIDE_VARIABLES}
    env["TAPEFS_CONFIG_DIR"] = str(root / "config")
    env["TAPEFS_STATE_DIR"] = str(root / "state")
    env.update(extra)
    return env


def shell_env(root: Path, **extra: str) -> dict[str, str]:
    """isolated_env for a shell that runs our commands by name, as a document's transcript does."""
    env = isolated_env(root, **extra)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def command_path(program: str) -> str:
    assert program in COMMANDS, program
    return str(BIN / program)


def run(
    program: str,
    *args: Any,
    env: dict[str, str] | None = None,
    check: bool = True,
    input: str | bytes | None = None,
    text: bool = True,
    timeout: float = 300,
    debug: bool = False,
    **options: Any,
) -> subprocess.CompletedProcess:
    """Run `program` with `args` (any str()-able values); `env` None means this process's
    environment as the test left it (e.g. a monkeypatched TAPEFS_CONFIG_DIR). No run may show a
    traceback unless `debug` (a --debug run shows one on purpose); with `check`, a non-zero exit fails the test with the command's stderr.
    `text=False` keeps stdin and stdout as bytes (pmt read and write)."""
    argv = [command_path(program), *map(str, args)]
    if input is None:
        options.setdefault("stdin", subprocess.DEVNULL)  # never the test runner's own stdin
    proc = subprocess.run(
        argv,
        env=os.environ.copy() if env is None else env,
        input=input,
        text=text,
        capture_output=True,
        timeout=timeout,
        **options,
    )
    stderr = proc.stderr if text else proc.stderr.decode(errors="replace")
    assert debug or "Traceback" not in stderr, stderr
    if check:
        assert proc.returncode == 0, f"{program} {' '.join(argv[1:])} exited {proc.returncode}:\n{stderr}"
    return proc


def run_json(program: str, *args: Any, **options: Any) -> Any:
    """The parsed `--output-format json` output of a successful run."""
    return json.loads(run(program, *args, "--output-format", "json", **options).stdout)


def tapefs(*args: Any, **options: Any) -> subprocess.CompletedProcess:
    return run("tapefs", *args, **options)


def tapefs_json(*args: Any, **options: Any) -> Any:
    return run_json("tapefs", *args, **options)


def vtape(*args: Any, **options: Any) -> subprocess.CompletedProcess:
    return run("vtape", *args, **options)


def pmt(*args: Any, **options: Any) -> subprocess.CompletedProcess:
    return run("pmt", *args, **options)


def pmtx(*args: Any, **options: Any) -> subprocess.CompletedProcess:
    return run("pmtx", *args, **options)


def one_error_line(proc: subprocess.CompletedProcess, status: int | None = None, program: str | None = None) -> str:
    """The stderr of a failed run, exactly one line: the exit status is `status` (any failure
    when None), and with `program` the line starts with "<program>: error: "."""
    stderr = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
    if status is None:
        assert proc.returncode != 0, f"exited 0:\n{stderr}"
    else:
        assert proc.returncode == status, f"exited {proc.returncode}, not {status}:\n{stderr}"
    assert "Traceback" not in stderr, stderr
    assert stderr.count("\n") == 1 and stderr.endswith("\n") and stderr.strip(), stderr
    line = stderr.rstrip("\n")
    if program is not None:
        assert line.startswith(f"{program}: error: "), line
    return line
