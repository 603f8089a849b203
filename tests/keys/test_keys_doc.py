"""Every command in docs/keys.md runs as written (in one bash, in order), against private directories."""
import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers.commands import shell_env

DOC = Path(__file__).resolve().parents[2] / "docs" / "keys.md"


def doc_commands() -> list[str]:
    blocks = re.findall(r"```console\n(.*?)```", DOC.read_text(), flags=re.S)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]


@pytest.mark.slow
def test_keys_doc_commands_run_as_written(tmp_path):
    commands = doc_commands()
    assert any("key restore" in command for command in commands) and any("paperkey" in command for command in commands)
    script = "set -euo pipefail\n" + "\n".join(command.replace("/tmp/", f"{tmp_path}/") for command in commands)
    env = shell_env(tmp_path)
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and (tmp_path / "paperkey.html").read_text().startswith("<!DOCTYPE html>")
    fingerprint = proc.stdout.splitlines()[0]
    assert re.fullmatch(r"([0-9a-f]{2}:){31}[0-9a-f]{2}", fingerprint)
    assert proc.stdout.splitlines()[-1] == fingerprint  # the key is back from the paper key
