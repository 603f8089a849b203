"""The SG_IO transport end to end: pmt and pmtx under vtape's LD_PRELOAD shim, which makes the
library's sockets look like /dev/sgN nodes (character device, major 21, SG_IO ioctls). Every
command then goes through `SgIoTransport`: sg_io_hdr packing, data buffers, sense buffer,
residual."""
import json
import os
import subprocess
import sys

import pytest

from tests.tools.cli import REPO, clean_env
from vtape.preload import PreloadError, preload_env

pytestmark = pytest.mark.vtape


@pytest.fixture
def sg_env(vtape_library, tmp_path):
    try:
        env = preload_env(clean_env(tmp_path))
    except PreloadError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    env.update(TAPE=vtape_library.drives[0], CHANGER=vtape_library.changer)
    return env


def run(env, tool: str, *args: str, input: bytes | None = None, check: bool = True):
    proc = subprocess.run([sys.executable, "-m", f"tapefs_tools.{tool}", *args], cwd=REPO, env=env, input=input,
                          capture_output=True, timeout=60)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def test_paths_open_as_sg_nodes(sg_env, vtape_library):
    code = ("from tapefs.scsi.device_path import open_transport\n"
            f"print(type(open_transport({vtape_library.drives[0]!r})).__name__)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=sg_env, capture_output=True, timeout=60)
    assert proc.stdout.decode().strip() == "SgIoTransport", proc.stderr.decode()


@pytest.mark.slow
def test_session_over_sg_io(sg_env):
    run(sg_env, "pmtx", "load", "1")
    status = json.loads(run(sg_env, "pmt", "status", "--output-format", "json").stdout)
    assert (status["density"], status["medium-present"]) == ("LTO8", True)
    run(sg_env, "pmt", "write", input=b"x" * 300_000)        # a 256 KiB block and a short one
    run(sg_env, "pmt", "weof")
    run(sg_env, "pmt", "rewind")
    assert run(sg_env, "pmt", "read").stdout == b"x" * 300_000
    status = json.loads(run(sg_env, "pmt", "status", "--output-format", "json").stdout)
    assert (status["file-number"], status["block-number"]) == (1, 3)
    drives = json.loads(run(sg_env, "pmtx", "status", "--output-format", "json").stdout)["drives"]
    assert drives[0]["loaded-slot"] == 1 and drives[0]["serial"] == status["serial"]
    run(sg_env, "pmtx", "unload")


def test_sense_arrives_through_the_sense_buffer(sg_env, vtape_library):
    proc = run(sg_env, "pmt", "rewind", check=False)
    assert proc.stderr.decode().strip() == (f"pmt: error: {vtape_library.drives[0]}: REWIND: medium not present "
                                            "(sense 2/3A/00 NOT READY, medium not present)")
    raw = json.loads(run(sg_env, "pmt", "raw", "03 00 00 00 fc 00", "--output-format", "json").stdout)
    assert raw["data-length"] == 18 and raw["residual"] == 65536 - 18
