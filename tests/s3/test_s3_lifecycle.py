"""A chunk a lifecycle rule moved to an archive storage class: restore fails with one line naming
the snapshot and the chunk, as damaged data (moto: SeaweedFS has no storage classes)."""

import os

import boto3
import pytest

from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.naming import BackupGroup, BackupNamespace
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.datastore.restore import restore
from tapefs.datastore.s3_backend import BackendConfig
from tapefs.errors import ExitCode
from tapefs.s3.endpoint_config import EndpointRegistry, S3Endpoint
from tapefs.s3.errors import S3ColdObject


@pytest.mark.slow
def test_restore_of_a_chunk_in_glacier_names_snapshot_and_chunk(tmp_path, monkeypatch, moto_server, tree):
    monkeypatch.setenv("TAPEFS_STATE_DIR", str(tmp_path / "state"))
    url = f"http://127.0.0.1:{moto_server.port}"
    raw = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=moto_server.access_key,
                       aws_secret_access_key=moto_server.secret_key)  # fmt: skip
    raw.create_bucket(Bucket="cold-bucket")
    EndpointRegistry(tmp_path / "s3.cfg").create(
        S3Endpoint(id="moto", endpoint="127.0.0.1", port=moto_server.port, path_style=True, plain_http=True,
                   region="us-east-1", access_key=moto_server.access_key, secret_key=moto_server.secret_key)
    )  # fmt: skip
    store = DatastoreRegistry(tmp_path / "datastore.cfg").create_s3(
        "main", tmp_path / "cache", BackendConfig("moto", "cold-bucket")
    )
    snapshot = backup(store, BackupGroup(BackupNamespace(), "host", "web"), parse_sources([str(tree)])).snapshot

    chunk_keys = [item["Key"] for item in raw.list_objects_v2(Bucket="cold-bucket", Prefix="main/.chunks/")["Contents"]]
    for key in chunk_keys:  # what a lifecycle transition does
        raw.copy_object(Bucket="cold-bucket", Key=key, CopySource={"Bucket": "cold-bucket", "Key": key},
                        StorageClass="GLACIER")  # fmt: skip
    for path in store.chunk_store.chunk_dir.glob("*/*"):
        os.truncate(path, 0)  # evicted from the cache

    with pytest.raises(S3ColdObject) as raised:
        restore(store, snapshot, "root.pxar", tmp_path / "restored")
    message = str(raised.value)
    assert message.startswith(f"snapshot {snapshot}, archive root.pxar.didx: s3://cold-bucket: GET chunk ")
    assert "archive storage class; restore it in the bucket first" in message
    assert any(key.rsplit("/", 1)[1] in message for key in chunk_keys)
    assert raised.value.exit_code == ExitCode.DATA
