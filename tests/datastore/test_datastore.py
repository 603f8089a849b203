import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.errors import DatastoreError, NamingError
from tapefs.datastore.manifest import Manifest
from tapefs.datastore.naming import (
    BackupGroup,
    BackupNamespace,
    BackupSnapshot,
    check_archive_name,
    format_backup_time,
    parse_backup_time,
)


def test_time_format():
    assert format_backup_time(1575365701) == "2019-12-03T09:35:01Z"
    assert parse_backup_time("2019-12-03T09:35:01Z") == 1575365701
    for bad in ("2019-12-03 09:35:01", "2019-12-03T09:35:01+00:00", "2019-13-03T09:35:01Z"):
        with pytest.raises(NamingError):
            parse_backup_time(bad)


def test_namespace_rules():
    assert BackupNamespace.parse("a/b").relative_path().as_posix() == "ns/a/ns/b"
    assert BackupNamespace.parse("").is_root
    for bad in ("a/../b", "-x", "a/b/c/d/e/f/g/h", "x" * 257, "a//b"):
        with pytest.raises(NamingError):
            BackupNamespace.parse(bad)


def test_snapshot_paths():
    snapshot = BackupSnapshot.parse("host/elsa/2019-12-03T09:35:01Z", BackupNamespace.parse("a/b"))
    assert str(snapshot) == "host/elsa/2019-12-03T09:35:01Z"
    assert snapshot.relative_path().as_posix() == "ns/a/ns/b/host/elsa/2019-12-03T09:35:01Z"
    for bad in ("host/elsa", "disk/elsa/2019-12-03T09:35:01Z", "host/.x/2019-12-03T09:35:01Z", "host/a/b/c"):
        with pytest.raises(NamingError):
            BackupSnapshot.parse(bad)


def test_archive_names():
    for good in ("root.pxar.didx", "drive-scsi0.img.fidx", "index.json.blob", "catalog.pcat1.didx"):
        assert check_archive_name(good) == good
    for bad in ("../x.blob", "a/b.didx", "x.txt", ".hidden.blob", ""):
        with pytest.raises(NamingError):
            check_archive_name(bad)


def test_create_refuses_non_empty_dir(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatastoreError):
        Datastore.create(tmp_path)


def test_open_requires_chunks_dir(tmp_path):
    with pytest.raises(DatastoreError, match="not a datastore"):
        Datastore.open(tmp_path)


def make_snapshot(datastore, text, namespace="", finished=True):
    snapshot = BackupSnapshot.parse(text, BackupNamespace.parse(namespace))
    path = datastore.create_snapshot_dir(snapshot)
    if finished:
        Manifest(snapshot.group.backup_type, snapshot.group.backup_id, snapshot.backup_time).save(path)
    return snapshot


def test_listing_groups_snapshots_namespaces(tmp_path):
    datastore = Datastore.create(tmp_path / "store", prefix_dirs=False)
    make_snapshot(datastore, "host/a/2020-01-01T00:00:00Z")
    make_snapshot(datastore, "host/a/2021-01-01T00:00:00Z")
    make_snapshot(datastore, "host/a/2022-01-01T00:00:00Z", finished=False)
    make_snapshot(datastore, "vm/100/2020-01-01T00:00:00Z")
    make_snapshot(datastore, "ct/200/2020-01-01T00:00:00Z", namespace="dept/x")
    (datastore.root / "host" / "a" / "not-a-time").mkdir()
    (datastore.root / "host" / "a" / "2020-01-01T00:00:00Z" / "stray.txt").write_text("ignored")

    assert [str(ns) for ns in datastore.list_namespaces()] == ["", "dept", "dept/x"]
    groups = [str(g) for g in datastore.list_groups()]
    assert sorted(groups) == ["host/a", "vm/100"]
    host_a = BackupGroup(BackupNamespace(), "host", "a")
    assert [str(s.snapshot) for s in datastore.list_snapshots(host_a)] == [
        "host/a/2020-01-01T00:00:00Z",
        "host/a/2021-01-01T00:00:00Z",
    ]
    unfinished = datastore.list_snapshots(host_a, include_unfinished=True)
    assert [s.finished for s in unfinished] == [True, True, False]
    assert unfinished[0].files == ("index.json.blob",)
    assert [str(g) for g in datastore.list_groups(BackupNamespace.parse("dept/x"))] == ["ct/200"]
    assert (datastore.root / "host" / "a" / "owner").read_text() == "root@pam\n"


def test_duplicate_snapshot_refused(tmp_path):
    datastore = Datastore.create(tmp_path / "store", prefix_dirs=False)
    make_snapshot(datastore, "host/a/2020-01-01T00:00:00Z")
    with pytest.raises(DatastoreError, match="already exists"):
        make_snapshot(datastore, "host/a/2020-01-01T00:00:00Z")


def test_load_manifest_of_unfinished_snapshot(tmp_path):
    datastore = Datastore.create(tmp_path / "store", prefix_dirs=False)
    snapshot = make_snapshot(datastore, "host/a/2020-01-01T00:00:00Z", finished=False)
    with pytest.raises(DatastoreError, match="unfinished"):
        datastore.load_manifest(snapshot)
    with pytest.raises(DatastoreError, match="not found"):
        datastore.load_manifest(BackupSnapshot.parse("host/b/2020-01-01T00:00:00Z"))


def test_unfinished_snapshots_tell_a_dead_writer_from_a_running_one(tmp_path):
    datastore = Datastore.create(tmp_path / "store", prefix_dirs=False)
    make_snapshot(datastore, "host/a/2020-01-01T00:00:00Z")
    dead = make_snapshot(datastore, "host/a/2021-01-01T00:00:00Z", finished=False)
    (datastore.snapshot_path(dead) / "disk.img.tmp_fidx").write_bytes(b"\0" * 4096)
    running = BackupSnapshot.parse("host/a/2022-01-01T00:00:00Z")
    elsewhere = make_snapshot(datastore, "vm/100/2021-01-01T00:00:00Z", namespace="lab", finished=False)
    with datastore.writing_snapshot(running):
        found = {str(u.snapshot): (u.state, u.describe()) for u in datastore.unfinished_snapshots()}
        assert found == {
            str(dead): ("abandoned", "left by an interrupted backup; the next backup of host/a removes it"),
            str(running): ("in-progress", "a backup is still writing it"),
            str(elsewhere): ("abandoned", "left by an interrupted backup; the next backup of vm/100 removes it"),
        }
        # a running writer's snapshot and a finished one are never removed
        assert not datastore.remove_abandoned_snapshot(running)
        assert not datastore.remove_abandoned_snapshot(BackupSnapshot.parse("host/a/2020-01-01T00:00:00Z"))
        assert datastore.remove_abandoned_snapshots(BackupGroup.parse("host/a")) == [dead]
        assert datastore.snapshot_path(running).is_dir()
    assert not datastore.snapshot_path(dead).exists()
    assert datastore.snapshot_path(elsewhere).is_dir()
    # once its writer is gone (its lock released) without a manifest, it is a leftover too
    assert [u.state for u in datastore.unfinished_snapshots(BackupGroup.parse("host/a"))] == ["abandoned"]
    assert not datastore.remove_abandoned_snapshot(BackupSnapshot.parse("host/a/2030-01-01T00:00:00Z"))
