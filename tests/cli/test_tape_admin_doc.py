"""Every command in docs/tape-admin.md works as written: replayed in order against a fresh vtape
library, each exits with the status the transcript shows (0 unless "[exit status N]" follows),
and the error lines shown are the ones printed."""
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.helpers.commands import REPO, command_path, shell_env

DOC = REPO / "docs" / "tape-admin.md"
DOC_PREFIX = "/tmp/vtadmin"


def without_uuids(text: str) -> str:
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "UUID", text)


def transcript() -> list[tuple[str, int, list[str]]]:
    """(command, expected exit status, the output lines shown) for every `$ ` line of the console blocks."""
    steps: list[tuple[str, int, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", DOC.read_text(), re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], 0, []))
            elif steps and (m := re.fullmatch(r"\[exit status (\d+)\]", line)):
                steps[-1] = (steps[-1][0], int(m.group(1)), steps[-1][2])
            elif steps:
                steps[-1][2].append(line)
    return steps


def test_walkthrough_covers_the_setup():
    commands = " ".join(command for command, _, _ in transcript())
    for needed in ("tapefs changer create", "tapefs drive create", "tapefs pool create", "tapefs barcode-label",
                   "tapefs inventory", "tapefs media list", "tapefs changer status", "tapefs status",
                   "tapefs label"):
        assert needed in commands


@pytest.mark.slow
@pytest.mark.vtape
def test_every_documented_command_exits_as_shown():
    root = Path(tempfile.mkdtemp(prefix="vd", dir="/tmp"))
    prefix = str(root / "vtadmin")
    env = shell_env(root)
    try:
        for command, expected, shown in transcript():
            command = command.replace(DOC_PREFIX, prefix)
            if command.startswith("export "):
                env.update(assignment.split("=", 1) for assignment in command[7:].split())
                continue
            proc = subprocess.run(command, shell=True, env=env, capture_output=True, text=True, timeout=120,
                                  cwd=root)
            assert proc.returncode == expected, f"{command!r} exited {proc.returncode}:\n{proc.stderr}"
            assert "Traceback" not in proc.stderr
            if expected:
                assert without_uuids(proc.stderr.strip()) == without_uuids(shown[0].replace(DOC_PREFIX, prefix))
    finally:
        subprocess.run([command_path("vtape"), "stop", prefix], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
