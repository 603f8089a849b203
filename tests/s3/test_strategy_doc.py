"""docs/strategy.md works as written: its shell blocks, replayed in order as one script against a
fresh vtape library and the session's SeaweedFS (whose port, bucket and keys replace the ones the
page starts its own server with), all succeed, and the restores from S3 and from tape say
"identical"."""

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.helpers.commands import REPO, command_path, shell_env, tapefs
from tests.helpers.seaweedfs import ADMIN

DOC = REPO / "docs" / "strategy.md"
DOC_PREFIX = "/tmp/ibs"


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)


def replayed_blocks() -> list[str]:
    """The blocks a test runs: all but the one starting SeaweedFS and the clean-up."""
    return [block for block in shell_blocks() if "weed server" not in block and "rm -rf" not in block]


def test_the_walkthrough_covers_the_strategy():
    text = "\n".join(shell_blocks())
    for needed in ("tapefs datastore sync-job create weekly", "--backend s3", "--include 'keep-yearly=*'",
                   "--eject-media true", "tapefs export-media", "tapefs media vault record",
                   "tapefs scheduler --background", "--tick 1", "tapefs datastore restore offsite",
                   "tapefs restore \"$MEDIA_SET\" offsite=fromtape --drive"):
        assert needed in text, needed
    assert len(replayed_blocks()) == len(shell_blocks()) - 2


@pytest.mark.slow
@pytest.mark.vtape
@pytest.mark.timeout(600)  # about 45 commands and a scheduler run, on a shared 2-core machine
def test_every_command_of_the_walkthrough_works(seaweed_server, s3_bucket):
    # on tmpfs: the page's two local datastores are 65536 directories each, which a loaded disk
    # takes minutes to delete
    root = Path(tempfile.mkdtemp(prefix="ibs", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    prefix = str(root / "ibs")
    script = "\n".join(replayed_blocks())
    for doc_text, ours in (
        (DOC_PREFIX, prefix),
        ("--port 18334", f"--port {seaweed_server.port}"),
        ("ibs-archive", s3_bucket),
        ("--access-key ibs --secret-key ibs-secret",
         f"--access-key {ADMIN.access_key} --secret-key {ADMIN.secret_key}"),
    ):  # fmt: skip
        assert doc_text in script
        script = script.replace(doc_text, ours)
    env = shell_env(root, TAPEFS_CONFIG_DIR=f"{prefix}-config", TAPEFS_STATE_DIR=f"{prefix}-state")
    try:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-x", "-c", script], env=env,
                              capture_output=True, text=True, timeout=500, cwd=root)  # fmt: skip
        assert proc.returncode == 0, f"exited {proc.returncode}:\n{proc.stderr[-4000:]}"
        assert "Traceback" not in proc.stderr
        assert proc.stdout.count("identical\n") == 2, proc.stdout
        jobs = json.loads(tapefs("job", "list", "--output-format", "json", env=env).stdout)
        [soon] = [job for job in jobs if (job["kind"], job["id"]) == ("syncjob", "soon")]
        assert soon["result"] == "OK", jobs
    finally:
        subprocess.run([command_path("vtape"), "stop", prefix + "-lib"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
