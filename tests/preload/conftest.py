"""Tests under the vtape LD_PRELOAD shim: the shim's path, built once (tests/helpers/preload_tools.py
runs programs under it)."""
from __future__ import annotations

from pathlib import Path

import pytest

from vtape.preload import PreloadError, shim_path


@pytest.fixture(scope="session")
def shim() -> Path:
    try:
        return shim_path()
    except PreloadError as e:
        pytest.fail(str(e))
