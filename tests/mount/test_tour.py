"""The README's main command: scripts/tour.sh runs from start to end and proves its copy equal."""
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.commands import REPO
from tests.helpers.fuse_mounts import require_fuse

pytestmark = [pytest.mark.slow, pytest.mark.fuse, pytest.mark.vtape]


def test_tour_mounts_lists_with_empty_drives_and_copies_a_file_back():
    require_fuse()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEFS_")}
    proc = subprocess.run(["bash", "scripts/tour.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    work = Path(out.splitlines()[0].split(": ", 1)[1])
    try:
        assert "root.pxar" in out and "every drive is still empty" in out
        listing_part = out.split("every drive is still empty")[1].split("$ cp -a")[0]
        assert " drive           0          -  " in listing_part and " drive           1          -  " in listing_part
        assert "identical: the copy loaded VT0001L8" in out
        assert '"loads": 1' in out
        assert not os.path.ismount(work / "mnt")
        replay_mount_doc(work, env)
    finally:
        subprocess.run(["rm", "-rf", str(work)])


def replay_mount_doc(work: Path, env: dict) -> None:
    """docs/mount.md's first example, on the state the tour left behind, as the doc says."""
    block = (REPO / "docs" / "mount.md").read_text().split("```sh\n", 1)[1].split("```", 1)[0]
    env = {**env, "PATH": f"{REPO / '.venv' / 'bin'}:{env['PATH']}", "TAPEFS_CONFIG_DIR": str(work / "config"),
           "TAPEFS_STATE_DIR": str(work / "state")}
    subprocess.run(["vtape", "start", str(work / "lib")], env=env, check=True, capture_output=True)
    try:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert Path("/tmp/tape-backup.md").read_bytes() == (REPO / "docs" / "tape-backup.md").read_bytes()
    finally:
        subprocess.run(["vtape", "stop", str(work / "lib")], env=env, capture_output=True)
