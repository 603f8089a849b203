"""Fixtures for media-management tests: a private state and config directory per test."""
import pytest

from tapefs.media.inventory import Inventory, tape_status_dir
from tapefs.media.media_id import MediaId, MediaLabel, MediaSetLabel, new_uuid


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


def make_media_id(label_text: str, ctime: int, pool: str | None = None, set_label: MediaSetLabel | None = None,
                  uuid: str | None = None) -> MediaId:
    return MediaId(MediaLabel(uuid or new_uuid(), label_text, ctime, pool), set_label)
