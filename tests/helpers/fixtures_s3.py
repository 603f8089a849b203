"""S3 fixtures: one SeaweedFS server for the whole session, a fresh bucket per test."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.helpers.commands import tapefs
from tests.helpers.moto_s3 import MotoServer
from tests.helpers.s3_stores import define_endpoint
from tests.helpers.seaweedfs import SeaweedServer

_bucket_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def seaweed_server():
    """A running SeaweedFS server shared by the session (seconds to start, so started once)."""
    server = SeaweedServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def s3_bucket(seaweed_server) -> str:
    """A new, empty bucket on the session's server."""
    return seaweed_server.create_bucket(f"tapefs-test-{next(_bucket_numbers)}")


@pytest.fixture
def own_seaweed_server():
    """A server of the test's own, for tests that kill it."""
    server = SeaweedServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def s3_store(env, tmp_path, seaweed_server, s3_bucket) -> Path:
    """Datastore `main` in a new bucket on the session's server, cached in tmp_path/cache."""
    define_endpoint(env, seaweed_server)
    cache = tmp_path / "cache"
    tapefs(
        "datastore", "create", "main", cache, "--backend", "s3", "--endpoint", "weed", "--bucket", s3_bucket, env=env
    )
    return cache


@pytest.fixture
def moto_server():
    """moto in server mode (storage-class transitions only; everything else runs on SeaweedFS)."""
    server = MotoServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
