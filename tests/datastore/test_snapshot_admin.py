import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.manifest import Manifest
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.datastore.snapshot_admin import (
    SnapshotProtectedError,
    group_notes,
    group_owner,
    is_protected,
    remove_snapshot,
    set_group_notes,
    set_group_owner,
    set_protected,
    set_snapshot_notes,
    snapshot_notes,
)
from tests.helpers.synthetic_snapshots import make_snapshot

GROUP = BackupGroup(BackupNamespace.parse("a"), "host", "web")
SNAPSHOT = BackupSnapshot(GROUP, 1_700_000_000)


@pytest.fixture
def store(tmp_path):
    datastore = Datastore.create(tmp_path / "store", prefix_dirs=False)
    make_snapshot(datastore, SNAPSHOT)
    return datastore


def test_protected_snapshot_cannot_be_forgotten(store):
    set_protected(store, SNAPSHOT, True)
    assert (store.snapshot_path(SNAPSHOT) / ".protected").exists()
    with pytest.raises(SnapshotProtectedError, match="is protected"):
        remove_snapshot(store, SNAPSHOT)
    assert store.snapshot_path(SNAPSHOT).is_dir()
    set_protected(store, SNAPSHOT, False)
    assert not is_protected(store, SNAPSHOT)
    remove_snapshot(store, SNAPSHOT)
    assert not store.snapshot_path(SNAPSHOT).exists()
    assert sorted(p.name for p in store.group_path(GROUP).iterdir()) == ["owner"]


def test_unknown_snapshot_or_group(store):
    other = BackupSnapshot(GROUP, 1)
    for action in (lambda: remove_snapshot(store, other), lambda: set_protected(store, other, True),
                   lambda: snapshot_notes(store, other)):
        with pytest.raises(DatastoreError, match="not found in datastore"):
            action()
    with pytest.raises(DatastoreError, match="group host/db \\(namespace a\\) not found"):
        group_notes(store, BackupGroup(GROUP.namespace, "host", "db"))


def test_interrupted_forget_leaves_no_visible_snapshot(store):
    later = BackupSnapshot(GROUP, SNAPSHOT.backup_time + 60)
    make_snapshot(store, later)
    # what a crash between rename and rmtree leaves behind
    leftover = store.group_path(GROUP) / f".{SNAPSHOT.time_text}.removing"
    store.snapshot_path(SNAPSHOT).rename(leftover)
    assert [info.snapshot for info in store.list_snapshots(GROUP, include_unfinished=True)] == [later]
    remove_snapshot(store, later)
    assert not leftover.exists()


def test_snapshot_notes_live_in_the_unsigned_part_of_the_manifest(store):
    before = Manifest.load(store.snapshot_path(SNAPSHOT))
    set_snapshot_notes(store, SNAPSHOT, "first line\nsecond")
    after = Manifest.load(store.snapshot_path(SNAPSHOT))
    assert after.unprotected["notes"] == "first line\nsecond"
    assert after._signed_part() == before._signed_part()
    assert snapshot_notes(store, SNAPSHOT) == "first line\nsecond"
    set_snapshot_notes(store, SNAPSHOT, "")
    assert "notes" not in Manifest.load(store.snapshot_path(SNAPSHOT)).unprotected


def test_group_notes_and_owner_files(store):
    set_group_notes(store, GROUP, "web servers\n")
    assert (store.group_path(GROUP) / "notes").read_text() == "web servers\n"
    assert group_notes(store, GROUP) == "web servers\n"
    set_group_notes(store, GROUP, "")
    assert not (store.group_path(GROUP) / "notes").exists()
    assert group_owner(store, GROUP) == "root@pam"
    set_group_owner(store, GROUP, "backup@pbs!nightly")
    assert (store.group_path(GROUP) / "owner").read_text() == "backup@pbs!nightly\n"
    for bad in ("root", "a b@pam", "x@pam!", "x@-pam", "x@pam\n"):
        with pytest.raises(DatastoreError, match="invalid owner"):
            set_group_owner(store, GROUP, bad)
    assert group_owner(store, GROUP) == "backup@pbs!nightly"
