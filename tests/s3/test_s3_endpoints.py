"""S3 endpoints and the access check against a real SeaweedFS server: credentials, buckets,
reachability and TLS pinning each fail with one clear line."""

import json
import os
import stat

import pytest

from tapefs.s3.access_check import check_access, missing_permissions
from tapefs.s3.client import S3Client
from tapefs.s3.endpoint_config import EndpointRegistry, S3Endpoint
from tapefs.s3.errors import S3AccessDenied, S3ConfigError, S3NotFound, S3Unreachable
from tests.helpers.commands import one_error_line, tapefs
from tests.helpers.s3_stores import define_endpoint
from tests.helpers.seaweedfs import ADMIN, READ_ONLY, free_ports


def _endpoint(server, identity=ADMIN, **changes) -> S3Endpoint:
    settings = dict(
        id="weed",
        endpoint="127.0.0.1",
        port=server.port,
        path_style=True,
        plain_http=True,
        access_key=identity.access_key,
        secret_key=identity.secret_key,
    )
    settings.update(changes)
    return S3Endpoint(**settings)


@pytest.mark.slow
def test_endpoint_commands_never_show_the_secret(env, tmp_path, seaweed_server, s3_bucket):
    define_endpoint(env, seaweed_server)
    config = tmp_path / "config" / "s3.cfg"
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
    assert ADMIN.secret_key in config.read_text()
    outputs = [
        tapefs("s3", "endpoint", "list", env=env).stdout,
        tapefs("s3", "endpoint", "show", "weed", "--output-format", "json", env=env).stdout,
        tapefs("s3", "endpoint", "list-buckets", "weed", env=env).stdout,
        tapefs("s3", "check", "weed", s3_bucket, env=env).stdout,
    ]
    assert not any(ADMIN.secret_key in output for output in outputs)
    shown = json.loads(outputs[1])
    assert shown["access-key"] == ADMIN.access_key and "secret-key" not in shown
    assert s3_bucket in outputs[2].split()
    tapefs("s3", "endpoint", "update", "weed", "--region", "eu-central-1", env=env)
    assert "eu-central-1" in tapefs("s3", "endpoint", "show", "weed", env=env).stdout
    tapefs("s3", "endpoint", "remove", "weed", env=env)
    assert "no S3 endpoints" in tapefs("s3", "endpoint", "list", env=env).stdout


def test_check_names_the_missing_permissions(env, seaweed_server, s3_bucket):
    define_endpoint(env, seaweed_server, "reader", READ_ONLY)
    proc = tapefs("s3", "check", "reader", s3_bucket, env=env, check=False)
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        f"tapefs: error: s3://{s3_bucket}: access denied: the credentials lack s3:DeleteObject, s3:PutObject"
    )


def test_wrong_secret_is_access_denied(seaweed_server, s3_bucket):
    client = S3Client(_endpoint(seaweed_server, secret_key="not-the-secret"), s3_bucket)
    with pytest.raises(
        S3AccessDenied, match="refuses the credentials .*check endpoint weed's access key and secret key"
    ):
        check_access(client)


def test_missing_bucket(seaweed_server):
    with pytest.raises(S3NotFound, match="^s3://no-such-bucket: no such bucket on endpoint weed$"):
        S3Client(_endpoint(seaweed_server), "no-such-bucket").head_bucket()


def test_unreachable_endpoint(seaweed_server):
    [port] = free_ports(1)
    with pytest.raises(S3Unreachable, match=f"cannot reach http://127.0.0.1:{port}"):
        S3Client(_endpoint(seaweed_server, port=port), "any-bucket").head_bucket()


def test_tls_pins_the_certificate_fingerprint(seaweed_server, s3_bucket):
    pinned = _endpoint(seaweed_server, port=seaweed_server.https_port, plain_http=False)
    good = S3Client(pinned.__class__(**{**pinned.__dict__, "fingerprint": seaweed_server.fingerprint}), s3_bucket)
    assert missing_permissions(check_access(good)) == []
    wrong = "00:" * 31 + "00"
    with pytest.raises(S3Unreachable, match="TLS failure"):
        S3Client(pinned.__class__(**{**pinned.__dict__, "fingerprint": wrong}), s3_bucket).head_bucket()
    with pytest.raises(S3Unreachable, match="TLS failure"):
        S3Client(pinned, s3_bucket).head_bucket()  # self-signed, neither pinned nor trusted
    trusted = pinned.__class__(**{**pinned.__dict__, "ca_file": str(seaweed_server.cert_path)})
    S3Client(trusted, s3_bucket).head_bucket()


def test_bad_endpoint_definitions_are_refused(tmp_path):
    with pytest.raises(S3ConfigError, match="invalid endpoint 'https://x'"):
        S3Endpoint(id="ep1", endpoint="https://x", access_key="a", secret_key="s")
    with pytest.raises(S3ConfigError, match="plain-http has no certificate"):
        S3Endpoint(
            id="ep1", endpoint="h", access_key="a", secret_key="s", plain_http=True, fingerprint="00:" * 31 + "00"
        )
    endpoint = S3Endpoint(id="aws", endpoint="{{bucket}}.s3.{{region}}.amazonaws.com", region="eu-central-1",
                          access_key="a", secret_key="s")  # fmt: skip
    assert endpoint.endpoint_url() == "https://s3.eu-central-1.amazonaws.com"
    registry = EndpointRegistry(tmp_path / "s3.cfg")
    registry.create(endpoint)
    with pytest.raises(S3ConfigError, match="used by datastore main"):
        registry.remove("aws", in_use_by=["main"])
    assert registry.get("aws") == endpoint
