import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.registry import DatastoreRegistry


def test_add_lookup_and_config_format(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEFS_CONFIG_DIR", str(tmp_path / "etc"))
    Datastore.create(tmp_path / "s1", prefix_dirs=False)
    registry = DatastoreRegistry()
    registry.add("store1", tmp_path / "s1", comment="first")
    assert (tmp_path / "etc" / "datastore.cfg").read_text() == (
        f"datastore: store1\n\tpath {tmp_path / 's1'}\n\tcomment first\n"
    )
    assert registry.lookup("store1").root == tmp_path / "s1"
    assert [s.id for s in registry.entries()] == ["store1"]


def test_errors(tmp_path):
    registry = DatastoreRegistry(tmp_path / "datastore.cfg")
    with pytest.raises(DatastoreError, match="no datastore named"):
        registry.lookup("nope")
    with pytest.raises(DatastoreError, match="not a datastore"):
        registry.add("x", tmp_path)
    Datastore.create(tmp_path / "s", prefix_dirs=False)
    registry.add("s", tmp_path / "s")
    with pytest.raises(DatastoreError, match="already exists"):
        registry.add("s", tmp_path / "s")
    with pytest.raises(DatastoreError, match="invalid datastore name"):
        registry.add("../evil", tmp_path / "s")
    with pytest.raises(DatastoreError, match="already exists"):
        registry.create("s", tmp_path / "other")
    assert not (tmp_path / "other").exists()
