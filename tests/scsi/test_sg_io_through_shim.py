"""The SG_IO transport end to end: pmt and pmtx under vtape's LD_PRELOAD shim, which makes the
library's sockets look like /dev/sgN nodes (character device, major 21, SG_IO ioctls). Every
command then goes through `SgIoTransport`: sg_io_hdr packing, data buffers, sense buffer,
residual."""
import json
import os
import subprocess
import sys

import pytest

from tests.helpers.commands import REPO, isolated_env, run
from vtape.preload import PreloadError, preload_env

pytestmark = pytest.mark.vtape


@pytest.fixture
def sg_env(vtape_library, tmp_path):
    try:
        env = preload_env(isolated_env(tmp_path))
    except PreloadError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    env.update(TAPE=vtape_library.drives[0], CHANGER=vtape_library.changer)
    return env


def test_paths_open_as_sg_nodes(sg_env, vtape_library):
    code = ("from tapefs.scsi.device_path import open_transport\n"
            f"print(type(open_transport({vtape_library.drives[0]!r})).__name__)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=sg_env, capture_output=True, timeout=60)
    assert proc.stdout.decode().strip() == "SgIoTransport", proc.stderr.decode()


@pytest.mark.slow
def test_session_over_sg_io(sg_env):
    run("pmtx", "load", "1", env=sg_env)
    status = json.loads(run("pmt", "status", "--output-format", "json", env=sg_env).stdout)
    assert (status["density"], status["medium-present"]) == ("LTO8", True)
    run("pmt", "write", env=sg_env, text=False, input=b"x" * 300_000)  # a 256 KiB block and a short one
    run("pmt", "weof", env=sg_env)
    run("pmt", "rewind", env=sg_env)
    assert run("pmt", "read", env=sg_env, text=False).stdout == b"x" * 300_000
    status = json.loads(run("pmt", "status", "--output-format", "json", env=sg_env).stdout)
    assert (status["file-number"], status["block-number"]) == (1, 3)
    drives = json.loads(run("pmtx", "status", "--output-format", "json", env=sg_env).stdout)["drives"]
    assert drives[0]["loaded-slot"] == 1 and drives[0]["serial"] == status["serial"]
    run("pmtx", "unload", env=sg_env)


def test_sense_arrives_through_the_sense_buffer(sg_env, vtape_library):
    proc = run("pmt", "rewind", env=sg_env, check=False)
    assert proc.stderr.strip() == (f"pmt: error: {vtape_library.drives[0]}: REWIND: medium not present "
                                    "(sense 2/3A/00 NOT READY, medium not present)")
    raw = json.loads(run("pmt", "raw", "03 00 00 00 fc 00", "--output-format", "json", env=sg_env).stdout)
    assert raw["data-length"] == 18 and raw["residual"] == 65536 - 18
