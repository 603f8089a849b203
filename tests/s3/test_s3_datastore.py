"""S3 datastores end to end: the tapefs commands against a real SeaweedFS bucket."""

import json
import subprocess

import pytest

from tests.helpers.commands import tapefs
from tests.helpers.datastore_cli import snapshot_names


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
