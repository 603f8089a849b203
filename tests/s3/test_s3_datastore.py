"""S3 datastores end to end: the tapefs commands against a real SeaweedFS bucket."""

import json
import os
import socket
import subprocess
import threading
import time

import pytest

from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.chunker import IMAGE_CHUNK_SIZE
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.gc import garbage_collect
from tapefs.datastore.naming import BackupGroup, BackupNamespace
from tapefs.datastore.restore import restore
from tapefs.datastore.s3_backend import IN_USE_MARKER, BackendConfig
from tapefs.datastore.snapshot_admin import remove_snapshot, set_group_notes, set_protected
from tapefs.datastore.verify import verify_datastore
from tapefs.s3.client import _PutRateLimiter
from tapefs.s3.errors import S3ConfigError, S3InUse, S3NotFound, S3UnknownEndpoint, S3Unreachable
from tapefs.s3.telemetry import new_rate_excursion, prometheus_text
from tests.helpers.commands import tapefs
from tests.helpers.datastore_cli import snapshot_names
from tests.helpers.s3_stores import make_s3_datastore


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
    telemetry = json.loads(tapefs("datastore", "telemetry", "main", "--output-format", "json", env=env).stdout)
    assert telemetry["requests-by-method"]["PUT"] >= len(keys) and telemetry["downloaded"] > 0
    assert telemetry["uploaded"] > 0 and telemetry["errors"] == 0
    prometheus = tapefs("datastore", "telemetry", "main", "--prometheus", env=env).stdout
    assert (
        f'tapefs_s3_requests_total{{bucket="{s3_bucket}",datastore="main",endpoint="weed",method="PUT"}}' in prometheus
    )


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
    telemetry = store.telemetry.add(store.counters)
    assert telemetry.uploaded >= first.stats.stored_size > 0
    before = telemetry.methods
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


@pytest.mark.slow
def test_server_killed_mid_backup_leaves_no_snapshot_and_the_next_backup_reuses_uploads(
    tmp_path, state_dir, own_seaweed_server
):
    server = own_seaweed_server
    bucket = server.create_bucket("killed-mid-backup")
    _, store = make_s3_datastore(tmp_path / "host1", server, bucket)
    image = tmp_path / "disk.img"
    image.write_bytes(os.urandom(12 * IMAGE_CHUNK_SIZE))
    # one upload at a time, two per second: the kill lands between chunks
    store.client._limiter = _PutRateLimiter(2)
    outcome: dict = {}
    worker = threading.Thread(
        target=lambda: outcome.update(error=_catch(lambda: _backup(store, image, upload_concurrency=1)))
    )
    worker.start()
    deadline = time.monotonic() + 60
    while not _keys(server, bucket, "main/.chunks/") and time.monotonic() < deadline:
        time.sleep(0.1)
    server.kill()
    worker.join(120)
    assert isinstance(outcome["error"], S3Unreachable), outcome
    group = BackupGroup(BackupNamespace(), "host", "web")
    assert store.list_snapshots(group, include_unfinished=True) == []

    server.start()
    assert not [key for key in _keys(server, bucket, "main/.cnt/") if key.endswith("index.json.blob")]
    uploaded = len(_keys(server, bucket, "main/.chunks/"))
    assert 0 < uploaded < 12
    store.client._limiter = None
    result = _backup(store, image)
    assert result.stats.duplicate_count >= uploaded
    [info] = store.list_snapshots(group)
    target = tmp_path / "restored.img"
    restore(store, info.snapshot, "disk.img", target)
    assert target.read_bytes() == image.read_bytes()


def _catch(action):
    try:
        action()
    except Exception as error:  # the test inspects what the backup raised
        return error
    return None


def test_forget_protect_notes_and_gc_reach_the_bucket(tmp_path, state_dir, seaweed_server, s3_bucket, tree):
    _, store = make_s3_datastore(tmp_path / "host1", seaweed_server, s3_bucket)
    first = _backup(store, tree).snapshot
    (tree / "new.bin").write_bytes(os.urandom(200000))
    second = _backup(store, tree).snapshot
    prefix = f"main/.cnt/{second}"
    set_protected(store, second, True)
    set_group_notes(store, second.group, "web server")
    assert f"{prefix}/.protected" in _keys(seaweed_server, s3_bucket)
    assert f"main/.cnt/{second.group}/notes" in _keys(seaweed_server, s3_bucket)
    set_protected(store, second, False)
    assert f"{prefix}/.protected" not in _keys(seaweed_server, s3_bucket)

    chunks_before = set(_keys(seaweed_server, s3_bucket, "main/.chunks/"))
    remove_snapshot(store, second)
    assert not _keys(seaweed_server, s3_bucket, prefix)
    time.sleep(2)  # objects stored in the last second count as a running backup's (S3 times are whole seconds)
    result = garbage_collect(store, atime_cutoff_minutes=0)
    chunks_after = set(_keys(seaweed_server, s3_bucket, "main/.chunks/"))
    assert result.backend_removed_chunks == len(chunks_before - chunks_after) > 0
    assert result.backend_locked == []
    # what is left still restores
    assert verify_datastore(store).ok
    target = tmp_path / "restored"
    restore(store, first, "root.pxar", target)
    assert not (target / "new.bin").exists() and (target / "notes.txt").read_text() == "tapefs\n"


def test_bounded_cache_keeps_markers_and_restores_from_the_bucket(tmp_path, state_dir, seaweed_server, s3_bucket):
    _, store = make_s3_datastore(tmp_path / "host1", seaweed_server, s3_bucket)
    store.chunk_store.capacity = 3  # chunks; --max-cache-size counts 16 MiB per chunk, as PBS
    image = tmp_path / "disk.img"
    image.write_bytes(os.urandom(8 * IMAGE_CHUNK_SIZE))
    snapshot = _backup(store, image).snapshot
    files = [path for path in store.chunk_store.chunk_dir.glob("*/*")]
    assert len(files) == 8
    assert sum(1 for path in files if path.stat().st_size) <= 3
    again = _backup(store, image)  # evicted chunks are known by their markers: nothing uploaded
    assert again.stats.duplicate_count == 8
    target = tmp_path / "restored.img"
    restore(store, snapshot, "disk.img", target)
    assert target.read_bytes() == image.read_bytes()
    assert sum(1 for path in files if path.stat().st_size) <= 3


def test_bad_create_arguments_leave_nothing_behind(tmp_path, state_dir, seaweed_server, s3_bucket):
    registry, _ = make_s3_datastore(tmp_path / "host1", seaweed_server, s3_bucket)
    with pytest.raises(S3UnknownEndpoint, match="no S3 endpoint named 'nowhere'"):
        registry.create_s3("other", tmp_path / "cache-other", BackendConfig("nowhere", s3_bucket))
    with pytest.raises(S3NotFound, match="^s3://missing-bucket: no such bucket on endpoint weed$"):
        registry.create_s3("other", tmp_path / "cache-other", BackendConfig("weed", "missing-bucket"))
    with pytest.raises(S3ConfigError, match="invalid bucket name 'Bad_Bucket'"):
        BackendConfig("weed", "Bad_Bucket")
    assert not (tmp_path / "cache-other").exists()
    assert [section.id for section in registry.entries()] == ["main"]
