"""S3 datastores end to end: the tapefs commands against a real SeaweedFS bucket."""

import json
import socket
import subprocess

import pytest

from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.naming import BackupGroup, BackupNamespace
from tapefs.datastore.restore import restore
from tapefs.datastore.s3_backend import IN_USE_MARKER
from tapefs.datastore.verify import verify_datastore
from tapefs.s3.errors import S3InUse
from tapefs.s3.telemetry import new_rate_excursion, prometheus_text
from tests.helpers.commands import tapefs
from tests.helpers.datastore_cli import snapshot_names
from tests.helpers.fixtures_s3 import make_s3_datastore


def _keys(server, bucket: str, prefix: str = "") -> list[str]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.mark.slow
def test_backup_restore_verify_round_trip(s3_store, env, tree, tmp_path, seaweed_server, s3_bucket):
    tapefs("datastore", "backup", "main", "host/web", tree, env=env)
    [snapshot] = snapshot_names(env)
    keys = _keys(seaweed_server, s3_bucket)
    assert "main/.in-use" in keys
    assert f"main/.cnt/{snapshot}/index.json.blob" in keys
    assert f"main/.cnt/{snapshot}/root.pxar.didx" in keys
    assert any(key.startswith("main/.chunks/") for key in keys)

    target = tmp_path / "restored"
    tapefs("datastore", "restore", "main", snapshot, "root.pxar", target, env=env)
    assert subprocess.run(["diff", "-r", "--no-dereference", tree, target]).returncode == 0
    verify = json.loads(tapefs("datastore", "verify", "main", "--output-format", "json", env=env).stdout)
    assert verify["ok"], verify


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEFS_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def _backup(store, tree, **options):
    return backup(store, BackupGroup(BackupNamespace(), "host", "web"), parse_sources([str(tree)]), **options)


def test_incremental_backup_of_unchanged_data_makes_no_get_and_no_chunk_put(
    tmp_path, state_dir, seaweed_server, s3_bucket, tree
):
    _, store = make_s3_datastore(tmp_path / "host1", seaweed_server, s3_bucket)
    first = _backup(store, tree)
    before = store.telemetry.add(store.counters).methods
    second = _backup(store, tree)
    after = store.telemetry.add(store.counters).methods
    assert second.stats.duplicate_count == second.stats.chunk_count == first.stats.chunk_count
    assert after["GET"] - before["GET"] == 0
    # owner, the two indexes and the manifest: no chunk
    assert after["PUT"] - before["PUT"] == 4, (before, after)


def test_verify_reads_the_bucket_and_renames_a_garbage_object(tmp_path, state_dir, seaweed_server, s3_bucket, tree):
    _, store = make_s3_datastore(tmp_path / "host1", seaweed_server, s3_bucket)
    _backup(store, tree)
    chunk_keys = [key for key in _keys(seaweed_server, s3_bucket, "main/.chunks/")]
    victim = chunk_keys[0]
    seaweed_server.client().put_object(Bucket=s3_bucket, Key=victim, Body=b"garbage, not a DataBlob")
    report = verify_datastore(store, mark_bad=True)
    digest = bytes.fromhex(victim.rsplit("/", 1)[1])
    assert list(report.bad_chunks) == [digest]
    keys = _keys(seaweed_server, s3_bucket, "main/.chunks/")
    assert victim not in keys and f"{victim}.0.bad" in keys
    # the cache's good copy is dropped too, so the next backup uploads the chunk again
    assert not store.chunk_store.chunk_path(digest).exists()
    again = _backup(store, tree)
    assert again.stats.duplicate_count == again.stats.chunk_count - 1
    assert victim in _keys(seaweed_server, s3_bucket, "main/.chunks/")


def test_second_host_is_refused_by_in_use_then_takes_over_and_restores(
    tmp_path, state_dir, seaweed_server, s3_bucket, tree
):
    _, store = make_s3_datastore(tmp_path / "host1", seaweed_server, s3_bucket)
    snapshot = _backup(store, tree).snapshot
    store.client.put_object(IN_USE_MARKER, json.dumps({"hostname": "host1.example"}).encode())

    with pytest.raises(S3InUse, match="in use by host host1.example"):
        make_s3_datastore(tmp_path / "host2", seaweed_server, s3_bucket, reuse=True)
    assert not (tmp_path / "host2" / "cache-main").exists()
    with pytest.raises(DatastoreError, match="re-attach it with --reuse-datastore"):
        make_s3_datastore(tmp_path / "host2", seaweed_server, s3_bucket, overwrite_in_use=True)

    registry, taken = make_s3_datastore(
        tmp_path / "host2", seaweed_server, s3_bucket, reuse=True, overwrite_in_use=True
    )
    assert taken.in_use_by() == socket.gethostname()
    [info] = registry.lookup("main").list_snapshots(snapshot.group)
    assert info.snapshot == snapshot
    target = tmp_path / "restored"
    restore(registry.lookup("main"), snapshot, "root.pxar", target)
    assert subprocess.run(["diff", "-r", "--no-dereference", tree, target]).returncode == 0


def test_request_storm_trips_the_threshold_exactly_once(tmp_path, state_dir, seaweed_server, s3_bucket):
    _, store = make_s3_datastore(tmp_path / "host1", seaweed_server, s3_bucket)
    for _ in range(30):
        store.client.head_object("no-such-object")
    store.flush_telemetry()
    alerts = [new_rate_excursion(store.telemetry, 20) for _ in range(3)]
    assert alerts[0] is not None and alerts[0].peak >= 30
    assert alerts[1:] == [None, None]
    telemetry = store.telemetry.load()
    assert telemetry.methods["HEAD"] >= 30
    assert "tapefs_s3_requests_total" in prometheus_text(telemetry, {"datastore": "main"})
