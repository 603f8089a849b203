"""Which snapshots a tape backup takes: namespaces, depth, group filters, latest only, order."""
import pytest

from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.group_filter import GroupFilter
from tapefs.datastore.naming import BackupGroup, BackupNamespace
from tapefs.jobs.snapshot_files import parse_tape_snapshot_path, tape_snapshot_path
from tapefs.jobs.snapshot_selection import select_snapshots


@pytest.fixture
def datastore(tmp_path):
    store = Datastore.create(tmp_path / "store", "store", prefix_dirs=False)
    image = tmp_path / "small.raw"
    image.write_bytes(b"x" * 4096)
    for ns, group, times in (("", "vm/100", (1, 2)), ("", "vm/20", (1,)), ("", "ct/abc", (1,)),
                             ("", "host/9", (1,)), ("a", "vm/100", (3,)), ("a/b", "ct/1", (4,))):
        for backup_time in times:
            backup(store, BackupGroup.parse(group, BackupNamespace.parse(ns)), parse_sources([f"disk.img:{image}"]),
                   backup_time=1_700_000_000 + backup_time, sync=False)
    return store


def names(snapshots):
    return [tape_snapshot_path(s).rsplit("/", 1)[0] + "@" + str(s.backup_time - 1_700_000_000) for s in snapshots]


def test_all_namespaces_in_pbs_group_order_oldest_first(datastore):
    assert names(select_snapshots(datastore)) == [
        "ns/a/ns/b/ct/1@4", "ct/abc@1", "host/9@1", "vm/20@1", "vm/100@1", "vm/100@2", "ns/a/vm/100@3"]


def test_namespace_depth_latest_only_and_filters(datastore):
    assert names(select_snapshots(datastore, BackupNamespace.parse("a"), max_depth=0)) == ["ns/a/vm/100@3"]
    assert names(select_snapshots(datastore, max_depth=0, latest_only=True)) == [
        "ct/abc@1", "host/9@1", "vm/20@1", "vm/100@2"]
    filters = [GroupFilter.parse("type:vm"), GroupFilter.parse("exclude:group:vm/20"),
               GroupFilter.parse("include:regex:^host/")]
    assert names(select_snapshots(datastore, filters=filters, max_depth=0)) == ["host/9@1", "vm/100@1", "vm/100@2"]


def test_bad_group_filter_is_refused():
    for text in ("vm/100", "type:", "regex:(", "include:colour:red"):
        with pytest.raises(DatastoreError, match="group filter"):
            GroupFilter.parse(text)


def test_tape_snapshot_paths_round_trip():
    path = "ns/a/ns/b/vm/100/2024-06-05T10:00:00Z"
    assert tape_snapshot_path(parse_tape_snapshot_path(path)) == path
