"""An S3 datastore among the others: synced from and to local datastores, written to tape and
restored from it, always through the code paths local datastores use."""

import os

import pytest

from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupGroup, BackupNamespace
from tapefs.datastore.sync import sync_datastores
from tests.helpers.s3_stores import make_s3_datastore
from tests.helpers.tape_jobs import run_backup, run_restore, snapshot_tree
from tests.helpers.tape_setup import add_cartridges


def _bucket_keys(server, bucket: str, prefix: str) -> list[str]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def _evict_cache(store) -> None:
    for path in store.chunk_store.chunk_dir.glob("*/*"):
        os.truncate(path, 0)


def test_sync_local_to_s3_and_back(tmp_path, monkeypatch, seaweed_server, s3_bucket, tree):
    monkeypatch.setenv("TAPEFS_STATE_DIR", str(tmp_path / "state"))
    local = Datastore.create(tmp_path / "local", "local", prefix_dirs=False)
    snapshot = backup(local, BackupGroup(BackupNamespace(), "host", "web"), parse_sources([str(tree)])).snapshot
    _, s3 = make_s3_datastore(tmp_path / "host1", seaweed_server, s3_bucket)

    pushed = sync_datastores(local, s3)
    assert pushed.snapshots_copied == 1 and not pushed.errors
    assert f"main/.cnt/{snapshot}/index.json.blob" in _bucket_keys(seaweed_server, s3_bucket, "main/.cnt/")
    assert len(_bucket_keys(seaweed_server, s3_bucket, "main/.chunks/")) == pushed.chunks_copied > 0
    assert sync_datastores(local, s3).snapshots_copied == 0  # nothing new: no upload

    _evict_cache(s3)
    back = Datastore.create(tmp_path / "back", "back", prefix_dirs=False)
    pulled = sync_datastores(s3, back)
    assert pulled.snapshots_copied == 1 and not pulled.errors
    assert snapshot_tree(back) == snapshot_tree(local)


@pytest.mark.slow
def test_tape_of_an_s3_datastore_restores_byte_identical_into_a_local_one(
    tape_setup, tmp_path, seaweed_server, s3_bucket
):
    _, s3 = make_s3_datastore(tmp_path / "s3host", seaweed_server, s3_bucket, name="store")
    tape_setup.datastore = s3
    tape_setup.add_snapshot("vm/100", 2)
    tape_setup.add_snapshot("ct/200", 1, ns="site")
    add_cartridges(tape_setup.library, 2, "64MiB", "16MiB")
    tape_setup.label("SM0001L8", "SM0002L8")
    _evict_cache(s3)  # the tape job reads the chunks from the bucket
    result = run_backup(tape_setup)
    assert len(result.snapshots_written) == 2
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    restored = run_restore(tape_setup, result.media_set, {"store": target})
    assert len(restored.snapshots_restored) == 2
    assert snapshot_tree(target) == snapshot_tree(s3)
