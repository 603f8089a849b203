"""``tapefs s3 ...``: S3 endpoints (``s3.cfg``) and the bucket access check. Thin wrappers over
tapefs.s3."""

import os
import time

import click

from tapefs.datastore.registry import DatastoreRegistry
from tapefs.datastore.s3_backend import S3Datastore
from tapefs.errors import InvalidInput
from tapefs.jobs.request_rate_alerts import check_request_rate
from tapefs.s3.access_check import check_access, missing_permissions
from tapefs.s3.client import S3Client
from tapefs.s3.endpoint_config import (
    PROVIDER_QUIRKS,
    EndpointRegistry,
    S3Endpoint,
    check_bucket_name,
    normalize_fingerprint,
)
from tapefs.s3.errors import S3AccessDenied, S3ConfigError
from tapefs.s3.telemetry import prometheus_text
from tapefs_tools.cli import emit, emit_json, human_size, key_value_table, output_format_option, print_table

SECRET_ENV = "TAPEFS_S3_SECRET_KEY"


@click.group()
def s3() -> None:
    """S3-compatible object storage: endpoints and access checks."""


@s3.group()
def endpoint() -> None:
    """S3 endpoints (s3.cfg): where a bucket lives and the credentials to reach it."""


def _endpoint_options(fn):
    options = [
        click.option("--endpoint", "host", help="Host or address; may start with '{{bucket}}.' and hold '{{region}}'."),
        click.option("--port", type=int, help="Port (default: 443, or 80 with --plain-http)."),
        click.option("--region", help="Region (default us-west-1; 'auto' for Cloudflare R2)."),
        click.option("--access-key", help="Access key id."),
        click.option(
            "--secret-key",
            help=f"Secret key (or set ${SECRET_ENV}; never shown again, stored in a 0600 s3.cfg).",
        ),
        click.option("--path-style/--no-path-style", default=None, help="Path-style addressing (/bucket/key)."),
        click.option("--fingerprint", help="SHA-256 fingerprint of the endpoint's (self-signed) certificate."),
        click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="CA bundle to verify TLS with."),
        click.option(
            "--plain-http/--no-plain-http", default=None, help="Talk unencrypted HTTP (a trusted local server only)."
        ),
        click.option("--put-rate-limit", type=int, help="At most this many PUT requests per second."),
        click.option(
            "--provider-quirks",
            metavar="QUIRK[,QUIRK]",
            help=f"Provider workarounds: {', '.join(PROVIDER_QUIRKS)}.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _changes(options: dict) -> dict:
    secret = options["secret_key"] or os.environ.get(SECRET_ENV)
    quirks = options["provider_quirks"]
    return {
        "endpoint": options["host"],
        "port": options["port"],
        "region": options["region"],
        "access_key": options["access_key"],
        "secret_key": secret,
        "path_style": options["path_style"],
        "fingerprint": normalize_fingerprint(options["fingerprint"]) if options["fingerprint"] else None,
        "ca_file": os.path.abspath(options["ca_file"]) if options["ca_file"] else None,
        "plain_http": options["plain_http"],
        "put_rate_limit": options["put_rate_limit"],
        "provider_quirks": tuple(q for q in quirks.split(",") if q) if quirks is not None else None,
    }


@endpoint.command("create")
@click.argument("endpoint_id", metavar="ID")
@_endpoint_options
def create_endpoint(endpoint_id: str, **options) -> None:
    """Define S3 endpoint ID."""
    changes = _changes(options)
    for required, option in (
        ("endpoint", "--endpoint"),
        ("access_key", "--access-key"),
        ("secret_key", "--secret-key"),
    ):
        if not changes[required]:
            raise S3ConfigError(f"{option} is required" + (f" (or ${SECRET_ENV})" if required == "secret_key" else ""))
    definition = S3Endpoint(id=endpoint_id, **{k: v for k, v in changes.items() if v is not None})
    EndpointRegistry().create(definition)
    click.echo(f"created S3 endpoint {endpoint_id} ({definition.endpoint_url()})")


@endpoint.command("update")
@click.argument("endpoint_id", metavar="ID")
@_endpoint_options
def update_endpoint(endpoint_id: str, **options) -> None:
    """Change properties of S3 endpoint ID."""
    updated = EndpointRegistry().update(endpoint_id, **_changes(options))
    click.echo(f"updated S3 endpoint {endpoint_id} ({updated.endpoint_url()})")


@endpoint.command("list")
@output_format_option
def list_endpoints(output_format: str) -> None:
    """List the S3 endpoints (never their secret keys)."""
    registry = EndpointRegistry()
    views = [each.public_view() for each in registry.endpoints()]
    if output_format != "text":
        emit_json(views, output_format)
    elif views:
        rows = [[v["id"], v["endpoint"], str(v.get("port", "")), v.get("region", ""), v["access-key"]] for v in views]
        print_table(["id", "endpoint", "port", "region", "access-key"], rows)
    else:
        click.echo(f"no S3 endpoints configured ({registry.config_path})")


@endpoint.command("show")
@click.argument("endpoint_id", metavar="ID")
@output_format_option
def show_endpoint(endpoint_id: str, output_format: str) -> None:
    """Show S3 endpoint ID (without its secret key)."""
    view = EndpointRegistry().get(endpoint_id).public_view()
    emit(output_format, view, lambda console: console.print(key_value_table(list(view.items()))))


@endpoint.command("remove")
@click.argument("endpoint_id", metavar="ID")
def remove_endpoint(endpoint_id: str) -> None:
    """Remove S3 endpoint ID (refused while a datastore uses it)."""
    EndpointRegistry().remove(endpoint_id, DatastoreRegistry().using_endpoint(endpoint_id))
    click.echo(f"removed S3 endpoint {endpoint_id}")


@endpoint.command("list-buckets")
@click.argument("endpoint_id", metavar="ID")
@output_format_option
def list_buckets(endpoint_id: str, output_format: str) -> None:
    """List the buckets the credentials of endpoint ID can see."""
    buckets = S3Client(EndpointRegistry().get(endpoint_id)).list_buckets()
    if output_format != "text":
        emit_json(buckets, output_format)
    else:
        for bucket in buckets:
            click.echo(bucket)


@s3.command("check")
@click.argument("endpoint_id", metavar="ENDPOINT")
@click.argument("bucket")
@click.option("--store-prefix", default="", help="Key prefix to probe below (a datastore's name).")
@output_format_option
def check(endpoint_id: str, bucket: str, store_prefix: str, output_format: str) -> None:
    """Probe BUCKET on ENDPOINT with HEAD, PUT, GET, LIST and DELETE; name what is refused."""
    client = S3Client(EndpointRegistry().get(endpoint_id), check_bucket_name(bucket), store_prefix)
    steps = check_access(client)
    missing = missing_permissions(steps)
    if output_format != "text":
        emit_json(
            {
                "steps": [{"request": s.request, "permission": s.permission, "ok": s.ok} for s in steps],
                "missing-permissions": missing,
            },
            output_format,
        )
    else:
        for step in steps:
            click.echo(f"{step.request:<14} {'ok' if step.ok else 'REFUSED'} ({step.permission})")
    if missing:
        raise S3AccessDenied(f"s3://{bucket}: access denied: the credentials lack {', '.join(missing)}")


def _s3_datastore(name: str) -> S3Datastore:
    store = DatastoreRegistry().lookup(name)
    if not isinstance(store, S3Datastore):
        raise InvalidInput(f"datastore {name} keeps its chunks in its directory, not in S3: it has no S3 telemetry")
    return store


@click.command("telemetry")
@click.argument("name")
@click.option("--prometheus", is_flag=True, help="Print in the Prometheus text format (node_exporter textfile).")
@click.option("--reset", is_flag=True, help="Zero the request counters after showing them.")
@output_format_option
def telemetry(name: str, prometheus: bool, reset: bool, output_format: str) -> None:
    """S3 requests, traffic and stored objects of datastore NAME, kept across runs."""
    store = _s3_datastore(name)
    excursion = check_request_rate(store)
    warning = f"datastore {name}: {excursion.message()}" if excursion is not None else None
    data = store.telemetry.load()
    now_minute = int(time.time() // 60)
    last_minute = data.per_minute.get(now_minute - 1, 0)
    peak = max(data.per_minute.values(), default=0)
    if prometheus:
        click.echo(
            prometheus_text(
                data, {"datastore": name, "bucket": store.backend.bucket, "endpoint": store.backend.client}
            ),
            nl=False,
        )
    else:
        view = {
            "datastore": name,
            "bucket": store.backend.bucket,
            "endpoint": store.backend.client,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(data.since)),
            "requests": data.requests,
            "requests-by-method": data.methods,
            "requests-last-minute": last_minute,
            "requests-peak-minute": peak,
            "uploaded": data.uploaded,
            "downloaded": data.downloaded,
            "errors": data.errors,
            "retries": data.retries,
            "stored-objects": data.stored_objects,
            "stored-bytes": data.stored_bytes,
            "request-rate-warning": warning,
        }

        def render(console) -> None:
            rows = [(key, value) for key, value in view.items() if key != "requests-by-method"]
            rows[5:5] = [(f"  {method}", count) for method, count in data.methods.items()]
            for key in ("uploaded", "downloaded", "stored-bytes"):
                rows = [(k, f"{human_size(v)} ({v} bytes)" if k == key else v) for k, v in rows]
            console.print(key_value_table(rows))

        emit(output_format, view, render)
    if reset:
        store.telemetry.reset()


@click.command("s3-refresh")
@click.argument("name")
def s3_refresh(name: str) -> None:
    """Rebuild the local cache of S3 datastore NAME from its bucket (snapshots, owners, notes)."""
    contents, chunks = _s3_datastore(name).refresh()
    click.echo(f"datastore {name}: {contents} content objects downloaded, {chunks} chunks known in the bucket")
