"""pmtx under vtape's LD_PRELOAD shim goes through the Linux SG_IO transport.

Under the shim a vtape device path is a character device with the sg major, so
tapefs.scsi.device_path.open_transport picks SgIoTransport (fcntl.ioctl(SG_IO)) instead of
speaking the vtape protocol itself. pmtx's own tests (tests/tools/test_pmtx.py) run through it
as their `sg_io` variant.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.commands import isolated_env
from vtape.preload import preload_env

pytestmark = [pytest.mark.vtape, pytest.mark.slow]


@pytest.fixture
def env(vtape_library, tmp_path):
    return preload_env(isolated_env(tmp_path, CHANGER=vtape_library.changer))


def test_pmtx_goes_through_sg_io(env, vtape_library):
    code = ("from tapefs.scsi.device_path import open_transport\n"
            f"print(type(open_transport({vtape_library.changer!r})).__name__)")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "SgIoTransport", proc.stderr
