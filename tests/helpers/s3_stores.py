"""S3 endpoints and datastores on a SeaweedFS server, made for a test (see fixtures_s3 for the server)."""

from __future__ import annotations

from pathlib import Path

from tapefs.datastore.registry import DatastoreRegistry
from tapefs.datastore.s3_backend import BackendConfig
from tapefs.s3.endpoint_config import EndpointRegistry, S3Endpoint
from tests.helpers.commands import tapefs
from tests.helpers.seaweedfs import ADMIN


def define_endpoint(env: dict[str, str], server, endpoint_id: str = "weed", identity=None) -> str:
    """``tapefs s3 endpoint create`` for ``server``'s plain-HTTP port with ``identity``'s keys."""
    identity = identity or ADMIN
    tapefs(
        "s3", "endpoint", "create", endpoint_id, "--endpoint", "127.0.0.1", "--port", server.port,
        "--path-style", "--plain-http", "--access-key", identity.access_key,
        env={**env, "TAPEFS_S3_SECRET_KEY": identity.secret_key},
    )  # fmt: skip
    return endpoint_id


def make_s3_datastore(config_dir: Path, server, bucket: str, name: str = "main", **create_options):
    """An S3 datastore made through the library: endpoint ``weed`` and datastore ``name`` in
    ``config_dir``, cache in ``config_dir``/cache-``name``; (registry, datastore)."""
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
