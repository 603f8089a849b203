"""Fixtures for media-management tests: a private state and config directory per test."""
import pytest

from tapefs.config.paths import tape_status_dir
from tapefs.media.inventory import Inventory


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEFS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TAPEFS_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


@pytest.fixture
def inventory():
    with Inventory.open() as inventory:
        assert inventory.db_path.parent == tape_status_dir()
        yield inventory
