"""pmtx's own test suite (tests/tools/test_pmtx.py, unchanged) run again through the Linux SG_IO transport.

Under the shim a vtape device path is a character device with the sg major, so
tapefs.scsi.device_path.open_transport picks SgIoTransport (fcntl.ioctl(SG_IO)) instead of
speaking the vtape protocol itself. Only the `env` fixture differs: it adds LD_PRELOAD.
Tests that take no `env` do not touch a device path and are not repeated.
"""
from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from tests.tools import test_pmtx as original
from tests.tools.test_pmtx import *  # noqa: F401,F403  (the tests and fixtures, collected here again)
from vtape.preload import preload_env

# A second run of a whole suite: slow, as the original already runs in the quick subset.
pytestmark = [pytest.mark.vtape, pytest.mark.slow]


@pytest.fixture
def env(vtape_library, tmp_path):
    return preload_env(original.clean_env(tmp_path, **original_env_extra(vtape_library)))


def original_env_extra(lib) -> dict[str, str]:
    return {"CHANGER": lib.changer}


for _name, _test in list(globals().items()):
    if _name.startswith("test_") and callable(_test) and not {"env", "loaded"} & set(inspect.signature(_test).parameters):
        del globals()[_name]


def test_pmtx_goes_through_sg_io(env, vtape_library):
    code = ("from tapefs.scsi.device_path import open_transport\n"
            f"print(type(open_transport({vtape_library.changer!r})).__name__)")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "SgIoTransport", proc.stderr
