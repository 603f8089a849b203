"""Every command in docs/pmt.md still works as written: replayed against a fresh library, each
exits with the status the transcript shows (0 unless it says "[exit status N]")."""
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.helpers.commands import REPO, command_path, shell_env

DOC = REPO / "docs" / "pmt.md"
DOC_LIBRARY = "/tmp/vtlib"


def transcript_commands() -> list[tuple[str, int]]:
    """(command, expected exit status) for every `$ ` line of the console blocks."""
    commands: list[tuple[str, int]] = []
    for block in re.findall(r"```console\n(.*?)```", DOC.read_text(), re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:], 0))
            elif commands and (m := re.fullmatch(r"\[exit status (\d+)\]", line)):
                commands[-1] = (commands[-1][0], int(m.group(1)))
    return commands


def test_transcript_has_the_promised_commands():
    text = " ".join(command for command, _ in transcript_commands())
    for needed in ("pmt status", "pmtx load", "pmt weof", "pmt fsf", "pmt asf", "pmt read", "pmt eod",
                   "pmt tape-alert-flags", "pmt cartridge-memory", "pmtx unload"):
        assert needed in text


@pytest.mark.slow
@pytest.mark.vtape
def test_every_documented_command_exits_as_shown(tmp_path):
    root = Path(tempfile.mkdtemp(prefix="vd", dir="/tmp"))
    library = str(root / "lib")
    env = shell_env(tmp_path)
    try:
        for command, expected in transcript_commands():
            command = command.replace(DOC_LIBRARY, library)
            if command.startswith("export "):
                env.update(assignment.split("=", 1) for assignment in command[7:].split())
                continue
            proc = subprocess.run(command, shell=True, env=env, capture_output=True, timeout=60, cwd=tmp_path)
            assert proc.returncode == expected, f"{command!r} exited {proc.returncode}:\n{proc.stderr.decode()}"
            assert b"Traceback" not in proc.stderr
    finally:
        subprocess.run([command_path("vtape"), "stop", library], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
