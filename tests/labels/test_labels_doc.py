"""docs/labels.md stays true: its links resolve and its commands work as written."""

from __future__ import annotations

import re
import subprocess

from tests.helpers.commands import REPO, shell_env, vtape

DOC = REPO / "docs" / "labels.md"


def test_relative_links_resolve():
    for document in (DOC, REPO / "README.md"):
        for target in re.findall(r"\]\(([^)#:]+)\)", document.read_text()):
            assert (document.parent / target).exists(), (document.name, target)
    assert "(docs/labels.md)" in (REPO / "README.md").read_text()


def test_documented_commands_run(tmp_path):
    commands = [line.strip() for line in DOC.read_text().splitlines() if line.startswith("    ")]
    assert any(c.startswith("tapefs labels generate") for c in commands)
    vtape("create", tmp_path / "lib", "--cartridges", "1")
    for command in commands:
        command = command.replace("/srv/vtape", str(tmp_path / "lib"))
        result = subprocess.run(command, shell=True, cwd=tmp_path, env=shell_env(tmp_path), capture_output=True, text=True)
        assert result.returncode == 0, (command, result.stderr)
    assert "TAP002LZ" in vtape("status", tmp_path / "lib").stdout
