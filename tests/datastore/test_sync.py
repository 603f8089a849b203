"""Sync between two real datastores on disk."""

import os
import random
import shutil

import pytest

from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.group_filter import GroupFilter
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.datastore.restore import restore
from tapefs.datastore.snapshot_admin import remove_snapshot, set_protected
from tapefs.datastore.sync import sync_datastores
from tapefs.datastore.verify import verify_datastore
from tests.helpers.synthetic_snapshots import make_snapshot

ROOT = BackupNamespace()
A = BackupNamespace.parse("a")
AB = BackupNamespace.parse("a/b")


def pieces(tag, count):
    return [f"{tag} {i} ".encode() * 30 for i in range(count)]


def names(store: Datastore, namespace=ROOT) -> list[str]:
    return [f"{ns}:{info.snapshot}" for ns in store.list_namespaces(namespace) for g in store.list_groups(ns)
            for info in store.list_snapshots(g, include_unfinished=True)]


def tree_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def source(tmp_path):
    store = Datastore.create(tmp_path / "source", "source", prefix_dirs=False)
    for ns in (ROOT, A, AB):
        for backup_type, backup_id in (("host", "x"), ("vm", "1")):
            group = BackupGroup(ns, backup_type, backup_id)
            for t in (100, 200, 300):
                make_snapshot(store, BackupSnapshot(group, t), pieces=pieces(f"{ns}{group}{t}", 2) + pieces("shared", 3))
    return store


@pytest.fixture
def target(tmp_path):
    return Datastore.create(tmp_path / "target", "target", prefix_dirs=False)


def test_everything_is_copied_byte_for_byte(source, target):
    stats = sync_datastores(source, target)
    assert stats.snapshots_copied == 18 and not stats.errors
    assert stats.chunks_copied == 18 * 2 + 3
    assert names(target) == names(source)
    assert {k: v for k, v in tree_bytes(target.root).items() if not k.startswith(".lock")} == \
        {k: v for k, v in tree_bytes(source.root).items() if not k.startswith(".lock")}
    again = sync_datastores(source, target)
    assert (again.snapshots_copied, again.snapshots_skipped, again.chunks_copied) == (0, 18, 0)
    assert verify_datastore(target).ok


def test_only_missing_chunks_are_read(source, target):
    sync_datastores(source, target)
    group = BackupGroup(ROOT, "host", "x")
    make_snapshot(source, BackupSnapshot(group, 400), pieces=pieces("new", 2) + pieces("shared", 3))
    inodes = {p: p.stat().st_ino for p in target.chunk_store.chunk_dir.rglob("*") if p.is_file()}
    stats = sync_datastores(source, target)
    assert (stats.snapshots_copied, stats.chunks_copied, stats.chunks_present) == (1, 2, 3)
    assert all(p.stat().st_ino == inode for p, inode in inodes.items())


def test_namespaces_map_with_depth_and_filters(source, target):
    stats = sync_datastores(source, target, A, BackupNamespace.parse("copy/of-a"), max_depth=0,
                            filters=[GroupFilter.parse("type:vm")])
    assert stats.snapshots_copied == 3
    assert names(target) == [f"copy/of-a:vm/1/{t}" for t in ("1970-01-01T00:01:40Z", "1970-01-01T00:03:20Z", "1970-01-01T00:05:00Z")]
    sync_datastores(source, target, A, BackupNamespace.parse("copy/of-a"),
                    filters=[GroupFilter.parse("exclude:group:vm/1")])
    assert [n for n in names(target) if n.startswith("copy/of-a/b:")] == [
        f"copy/of-a/b:host/x/{t}" for t in ("1970-01-01T00:01:40Z", "1970-01-01T00:03:20Z", "1970-01-01T00:05:00Z")]
    with pytest.raises(DatastoreError, match="deeper than 7 levels"):
        sync_datastores(source, target, A, BackupNamespace.parse("1/2/3/4/5/6/7"))


def test_transfer_last_and_older_snapshots(source, target):
    filters = [GroupFilter.parse("group:host/x")]
    stats = sync_datastores(source, target, max_depth=0, filters=filters, transfer_last=1)
    assert names(target) == [":host/x/1970-01-01T00:05:00Z"]
    # older than the target's newest: skipped, as PBS does
    stats = sync_datastores(source, target, max_depth=0, filters=filters)
    assert stats.snapshots_copied == 0 and stats.snapshots_skipped == 3


def test_remove_vanished(source, target):
    sync_datastores(source, target, max_depth=0)
    x = BackupGroup(ROOT, "host", "x")
    remove_snapshot(source, BackupSnapshot(x, 100))
    remove_snapshot(source, BackupSnapshot(x, 200))
    set_protected(target, BackupSnapshot(x, 200), True)
    shutil.rmtree(source.group_path(BackupGroup(ROOT, "vm", "1")))
    stats = sync_datastores(source, target, max_depth=0, remove_vanished=True)
    assert stats.snapshots_removed == 4 and stats.groups_removed == 1  # host/x 100, vm/1 x3
    assert names(target, ROOT)[:2] == [":host/x/1970-01-01T00:03:20Z", ":host/x/1970-01-01T00:05:00Z"]
    assert not target.group_path(BackupGroup(ROOT, "vm", "1")).exists()


def test_encrypted_snapshot_is_copied_without_the_key(tmp_path, target):
    source = Datastore.create(tmp_path / "enc", "enc", prefix_dirs=False)
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret.bin").write_bytes(random.Random(3).randbytes(200_000))
    key = CryptConfig(b"\x07" * 32)
    result = backup(source, BackupGroup(ROOT, "host", "enc"), parse_sources([str(data)]), key, sync=False)
    sync_datastores(source, target)
    restore(target, result.snapshot, "root.pxar", tmp_path / "out", key)
    assert (tmp_path / "out" / "secret.bin").read_bytes() == (data / "secret.bin").read_bytes()
    assert verify_datastore(target, key).ok


def test_bad_source_data_is_reported_and_not_published(source, target):
    group = BackupGroup(ROOT, "host", "x")
    digest = make_snapshot(source, BackupSnapshot(group, 400), pieces=pieces("lost", 1))[0]
    os.unlink(source.chunk_store.chunk_path(digest))
    stats = sync_datastores(source, target, max_depth=0, filters=[GroupFilter.parse("group:host/x")])
    assert stats.snapshots_copied == 3
    [error] = stats.errors
    assert error.startswith("host/x/1970-01-01T00:06:40Z: chunk ") and "missing" in error
    assert not (target.group_path(group) / "1970-01-01T00:06:40Z").exists()
    assert [p.name for p in target.group_path(group).iterdir() if p.name.startswith(".")] == []


def test_interrupted_sync_is_resumed(source, target):
    """A temp directory (what a killed sync leaves) is never listed, and is replaced."""
    group = BackupGroup(ROOT, "host", "x")
    (target.group_path(group) / ".1970-01-01T00:01:40Z.tmp_sync").mkdir(parents=True)
    (target.group_path(group) / ".1970-01-01T00:01:40Z.tmp_sync" / "data.pxar.didx").write_bytes(b"half")
    assert names(target) == []
    stats = sync_datastores(source, target, max_depth=0)
    assert stats.snapshots_copied == 6 and not stats.errors
    assert not list(target.root.rglob("*.tmp_sync"))
    assert verify_datastore(target).ok


def test_refusals(source, target, tmp_path):
    with pytest.raises(DatastoreError, match="same datastore"):
        sync_datastores(source, Datastore.open(source.root))
    with pytest.raises(DatastoreError, match="namespace nope not found in datastore source"):
        sync_datastores(source, target, BackupNamespace.parse("nope"))
    assert names(target) == []
