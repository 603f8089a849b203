"""The tape_setup fixture, for every test directory (tests/conftest.py loads this plugin)."""

from __future__ import annotations

import pytest

from tests.helpers.tape_setup import TapeSetup, set_up_tapes


@pytest.fixture
def tape_setup(make_vtape_library, tmp_path, monkeypatch) -> TapeSetup:
    """A library with no cartridges (add_cartridges adds small ones), tape.cfg and pools daily and
    other naming it, datastore `store`: all under a private config and state directory."""
    monkeypatch.setenv("TAPEFS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TAPEFS_STATE_DIR", str(tmp_path / "state"))
    library = make_vtape_library(cartridges=0, cleaning_cartridges=0)
    return set_up_tapes(library, tmp_path)
