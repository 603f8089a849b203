"""S3 fixtures: one SeaweedFS server for the whole session, a fresh bucket per test."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.helpers.commands import tapefs
from tests.helpers.seaweedfs import ADMIN, SeaweedServer

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


def define_endpoint(env: dict[str, str], server, endpoint_id: str = "weed", identity=None) -> str:
    """``tapefs s3 endpoint create`` for ``server``'s plain-HTTP port with ``identity``'s keys."""
    identity = identity or ADMIN
    tapefs(
        "s3", "endpoint", "create", endpoint_id, "--endpoint", "127.0.0.1", "--port", server.port,
        "--path-style", "--plain-http", "--access-key", identity.access_key,
        env={**env, "TAPEFS_S3_SECRET_KEY": identity.secret_key},
    )  # fmt: skip
    return endpoint_id


@pytest.fixture
def s3_store(env, tmp_path, seaweed_server, s3_bucket) -> Path:
    """Datastore `main` in a new bucket on the session's server, cached in tmp_path/cache."""
    define_endpoint(env, seaweed_server)
    cache = tmp_path / "cache"
    tapefs(
        "datastore", "create", "main", cache, "--backend", "s3", "--endpoint", "weed", "--bucket", s3_bucket, env=env
    )
    return cache


def make_s3_datastore(config_dir: Path, server, bucket: str, name: str = "main", **create_options):
    """An S3 datastore made through the library: endpoint ``weed`` and datastore ``name`` in
    ``config_dir``, cache in ``config_dir``/cache-``name``; (registry, datastore)."""
    from tapefs.datastore.registry import DatastoreRegistry
    from tapefs.datastore.s3_backend import BackendConfig
    from tapefs.s3.endpoint_config import EndpointRegistry, S3Endpoint

    endpoints = EndpointRegistry(config_dir / "s3.cfg")
    if not endpoints.config_path.exists():
        endpoints.create(
            S3Endpoint(id="weed", endpoint="127.0.0.1", port=server.port, path_style=True, plain_http=True,
                       access_key=ADMIN.access_key, secret_key=ADMIN.secret_key)
        )  # fmt: skip
    registry = DatastoreRegistry(config_dir / "datastore.cfg")
    cache = config_dir / f"cache-{name}"
    store = registry.create_s3(name, cache, BackendConfig("weed", bucket), **create_options)
    return registry, store
