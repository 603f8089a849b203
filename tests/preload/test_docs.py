"""Every command in docs/preload.md works as written: the console blocks are replayed, in order and
in one shell (so `eval`/`export` carry over), against a fresh library; each command must exit with
the status the document shows (0 unless it says "[exit status N]")."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "preload.md"
DOC_LIBRARY = "/tmp/vtlib"


def transcript() -> list[tuple[str, int]]:
    commands: list[tuple[str, int]] = []
    for block in re.findall(r"```console\n(.*?)```", DOC.read_text(), re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:], 0))
            elif commands and (m := re.fullmatch(r"\[exit status (\d+)\]", line)):
                commands[-1] = (commands[-1][0], int(m.group(1)))
    return commands


def test_the_document_covers_every_tool():
    text = "\n".join(command for command, _ in transcript())
    for needed in ("mtx -f /tmp/vtlib/changer status", "load 1 0", "unload", "transfer", "inventory", "position",
                   "tapeinfo", "loaderinfo", "sg_inq", "sg_vpd -p di", "sg_logs -a", "sg_logs -A",
                   "sg_logs -p 0x2e", "sg_modes -a", "sg_read_attr", "sg_opcodes", "sg_turs", "sg_requests",
                   "stenc -f /tmp/vtlib/drive0 --detail", "-e on -k", "-e mixed", "-e off", "--print-env"):
        assert needed in text, needed


@pytest.mark.slow
@pytest.mark.vtape
def test_every_documented_command_exits_as_shown(tmp_path):
    root = Path(tempfile.mkdtemp(prefix="vp", dir="/tmp"))   # short: socket paths are limited
    library = str(root / "lib")
    logs = tmp_path / "logs"
    logs.mkdir()
    commands = [(c.replace(DOC_LIBRARY, library), rc) for c, rc in transcript()]
    script = ["cd " + shlex.quote(str(tmp_path))]
    for i, (command, _) in enumerate(commands):
        script.append(f"{{ {command}\n}} >{logs}/{i}.out 2>{logs}/{i}.err </dev/null; echo $? >{logs}/{i}.rc")
    env = {k: v for k, v in os.environ.items() if k not in ("TAPE", "CHANGER", "LD_PRELOAD", "VTAPE_PRELOAD_SO")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", ""), "/usr/sbin", "/sbin"])
    env["TAPEFS_CONFIG_DIR"] = str(tmp_path / "config")
    try:
        subprocess.run(["bash", "-c", "\n".join(script)], env=env, timeout=600, check=False)
        for i, (command, expected) in enumerate(commands):
            rc = int((logs / f"{i}.rc").read_text())
            err = (logs / f"{i}.err").read_text(errors="replace")
            out = (logs / f"{i}.out").read_text(errors="replace")
            assert rc == expected, f"{command!r} exited {rc}, the document says {expected}:\n{out}\n{err}"
            assert "Traceback" not in err, err
    finally:
        subprocess.run([str(Path(sys.executable).parent / "vtape"), "stop", library], capture_output=True,
                       timeout=60, env=env)
        shutil.rmtree(root, ignore_errors=True)
