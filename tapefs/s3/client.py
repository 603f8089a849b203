"""An S3 client for one endpoint and bucket, over boto3 (SigV4, retries, addressing), with PBS's
rules on top: keys below a per-datastore prefix, chunk uploads that never replace
(``If-None-Match: *``, an answer 412 meaning "already there"), ``Content-MD5`` on every body,
at most three attempts with backoff on connection errors and HTTP 500/503/504, a PUT rate
limit, and the endpoint's TLS certificate pinned by fingerprint when one is configured."""

import base64
import hashlib
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, SSLError

from tapefs.s3.endpoint_config import S3Endpoint
from tapefs.s3.errors import (
    S3AccessDenied,
    S3BadCredentials,
    S3ColdObject,
    S3ConfigError,
    S3Error,
    S3NotFound,
    S3Unreachable,
)
from tapefs.s3.telemetry import RequestCounters, install_hooks

log = logging.getLogger(__name__)

#: PBS's transport retries: three tries in all
MAX_ATTEMPTS = 3
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
#: answers 409 to a conditional PUT are retried this often before giving up
MAX_CONFLICT_RETRIES = 3
DELETE_BATCH = 1000
BAD_CREDENTIAL_CODES = ("SignatureDoesNotMatch", "InvalidAccessKeyId")
ACCESS_DENIED_CODES = ("AccessDenied", "403", "SignatureDoesNotMatch", "InvalidAccessKeyId", "Forbidden")


@dataclass(frozen=True)
class ListedObject:
    key: str  # relative to the prefix
    size: int
    last_modified: float
    storage_class: str | None


def _status(error: ClientError) -> int:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class _PutRateLimiter:
    """A token bucket of ``rate`` PUT requests per second, burst ``rate`` (as PBS)."""

    def __init__(self, rate: int):
        self.rate = rate
        self.tokens = float(rate)
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            self.tokens -= 1
            delay = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if delay:
            time.sleep(delay)


class S3Client:
    def __init__(
        self,
        endpoint: S3Endpoint,
        bucket: str | None = None,
        prefix: str = "",
        counters: RequestCounters | None = None,
        max_connections: int = 16,
    ):
        self.endpoint = endpoint
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.counters = counters
        self._limiter = _PutRateLimiter(endpoint.put_rate_limit) if endpoint.put_rate_limit else None
        if endpoint.plain_http:
            verify: bool | str = False
        elif endpoint.fingerprint:
            verify = False  # the fingerprint below replaces chain validation
        else:
            verify = endpoint.ca_file or True
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint.endpoint_url(),
            region_name=endpoint.effective_region,
            aws_access_key_id=endpoint.access_key,
            aws_secret_access_key=endpoint.secret_key,
            verify=verify,
            config=Config(
                s3={"addressing_style": "virtual" if endpoint.virtual_host_style else "path"},
                retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=READ_TIMEOUT,
                max_pool_connections=max_connections,
                # PBS sends Content-MD5 and no other checksum: not every provider knows the others
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        if endpoint.fingerprint:
            self._pin_fingerprint(endpoint.fingerprint)
        if counters is not None:
            install_hooks(self._client, counters)

    def _pin_fingerprint(self, fingerprint: str) -> None:
        # urllib3 checks the leaf certificate's digest on every new connection of the pool
        manager = getattr(self._client._endpoint.http_session, "_manager", None)
        if manager is None:
            raise S3ConfigError("this botocore version offers no way to pin a certificate fingerprint: use --ca-file")
        manager.connection_pool_kw["assert_fingerprint"] = fingerprint
        warnings.filterwarnings("ignore", message="Unverified HTTPS request")

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _describe(self, what: str) -> str:
        where = f"s3://{self.bucket}" if self.bucket else f"endpoint {self.endpoint.id}"
        return f"{where}: {what}"

    def _translate(self, error: Exception, what: str) -> S3Error:
        """One clear line for the user; the secret is never part of it."""
        if isinstance(error, ClientError):
            status, code = _status(error), _code(error)
            # an answer 403, but no matter of permissions
            if code == "InvalidObjectState":
                return S3ColdObject(
                    self._describe(f"{what}: the object is in an archive storage class; restore it in the bucket first")
                )
            if code in BAD_CREDENTIAL_CODES:
                return S3BadCredentials(
                    self._describe(
                        f"{what}: the endpoint refuses the credentials ({code}): check endpoint "
                        f"{self.endpoint.id}'s access key and secret key"
                    )
                )
            if code in ACCESS_DENIED_CODES or status == 403:
                return S3AccessDenied(
                    self._describe(
                        f"{what}: access denied (HTTP 403 {code}): check endpoint {self.endpoint.id}'s "
                        "access key and secret key, and the bucket policy"
                    )
                )
            if code == "NoSuchBucket" or (status == 404 and what.startswith("HEAD bucket")):
                return S3NotFound(f"s3://{self.bucket}: no such bucket on endpoint {self.endpoint.id}")
            if code in ("NoSuchKey", "404") or status == 404:
                return S3NotFound(self._describe(f"{what}: no such object"))
            if status >= 500:
                return S3Unreachable(
                    self._describe(f"{what}: server error HTTP {status} {code} after {MAX_ATTEMPTS} tries")
                )
            return S3Error(
                self._describe(f"{what}: HTTP {status} {code}: {error.response.get('Error', {}).get('Message', '')}")
            )
        if isinstance(error, SSLError):
            return S3Unreachable(
                self._describe(
                    f"{what}: TLS failure talking to {self.endpoint.endpoint_url()} "
                    f"(certificate not trusted or fingerprint mismatch): {error}"
                )
            )
        if isinstance(error, ConnectionError | BotoCoreError):
            return S3Unreachable(self._describe(f"{what}: cannot reach {self.endpoint.endpoint_url()}: {error}"))
        return S3Error(self._describe(f"{what}: {error}"))

    def _call(self, what: str, operation, **params):
        try:
            return operation(**params)
        except (ClientError, BotoCoreError) as error:
            raise self._translate(error, what) from None

    # --- bucket operations -------------------------------------------------------------------

    def list_buckets(self) -> list[str]:
        answer = self._call("list buckets", self._client.list_buckets)
        return [bucket["Name"] for bucket in answer.get("Buckets", [])]

    def head_bucket(self) -> None:
        self._call("HEAD bucket", self._client.head_bucket, Bucket=self.bucket)

    # --- objects -----------------------------------------------------------------------------

    def put_object(self, relative: str, body: bytes, replace: bool = True) -> bool:
        """Upload; True if stored, False if ``replace`` is off and the object was already there."""
        params = {
            "Bucket": self.bucket,
            "Key": self.key(relative),
            "Body": body,
            "ContentType": "application/octet-stream",
        }
        if body:
            params["ContentMD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
        if not replace and "skip-if-none-match-header" not in self.endpoint.provider_quirks:
            params["IfNoneMatch"] = "*"
        for attempt in range(MAX_CONFLICT_RETRIES):
            if self._limiter is not None:
                self._limiter.wait()
            try:
                self._client.put_object(**params)
                if self.counters is not None:
                    self.counters.object_added(len(body))
                return True
            except ClientError as error:
                status = _status(error)
                if status == 412 and not replace:
                    return False
                if status == 409 and attempt + 1 < MAX_CONFLICT_RETRIES:
                    continue
                raise self._translate(error, f"PUT {relative}") from None
            except BotoCoreError as error:
                raise self._translate(error, f"PUT {relative}") from None
        raise S3Error(
            self._describe(f"PUT {relative}: concurrent operation, gave up after {MAX_CONFLICT_RETRIES} tries")
        )

    def get_object(self, relative: str, what: str | None = None) -> bytes | None:
        """The object's bytes, None if there is no such object; ``what`` names it in errors."""
        what = f"GET {what or relative}"
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self.key(relative))
            return answer["Body"].read()
        except ClientError as error:
            if _status(error) == 404:
                return None
            raise self._translate(error, what) from None
        except BotoCoreError as error:
            raise self._translate(error, what) from None

    def head_object(self, relative: str) -> dict | None:
        try:
            return self._client.head_object(Bucket=self.bucket, Key=self.key(relative))
        except ClientError as error:
            if _status(error) == 404:
                return None
            raise self._translate(error, f"HEAD {relative}") from None
        except BotoCoreError as error:
            raise self._translate(error, f"HEAD {relative}") from None

    def delete_object(self, relative: str) -> None:
        self._call(f"DELETE {relative}", self._client.delete_object, Bucket=self.bucket, Key=self.key(relative))

    def delete_objects(self, relatives: list[str]) -> list[tuple[str, str]]:
        """Delete in batches of 1000; the (key, error code) of each object not deleted (e.g.
        kept by object lock), so callers can report instead of failing."""
        failed: list[tuple[str, str]] = []
        if "delete-objects-via-delete-object" in self.endpoint.provider_quirks:
            for relative in relatives:
                try:
                    self.delete_object(relative)
                except S3AccessDenied as error:
                    failed.append((relative, str(error)))
            return failed
        for start in range(0, len(relatives), DELETE_BATCH):
            batch = relatives[start : start + DELETE_BATCH]
            answer = self._call(
                "delete objects",
                self._client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self.key(r)} for r in batch], "Quiet": True},
            )
            for refused in answer.get("Errors", []):
                failed.append((refused["Key"].removeprefix(f"{self.prefix}/"), refused.get("Code", "")))
        return failed

    def copy_object(self, source: str, target: str) -> None:
        self._call(
            f"copy {source}",
            self._client.copy_object,
            Bucket=self.bucket,
            Key=self.key(target),
            CopySource={"Bucket": self.bucket, "Key": self.key(source)},
            MetadataDirective="REPLACE",
            ContentType="application/octet-stream",
        )

    def list_objects(self, relative_prefix: str = "") -> Iterator[ListedObject]:
        paginator = self._client.get_paginator("list_objects_v2")
        strip = f"{self.prefix}/" if self.prefix else ""
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key(relative_prefix)):
                for item in page.get("Contents", []):
                    yield ListedObject(
                        item["Key"][len(strip) :],
                        item["Size"],
                        item["LastModified"].timestamp(),
                        item.get("StorageClass"),
                    )
        except (ClientError, BotoCoreError) as error:
            raise self._translate(error, f"list {relative_prefix or '/'}") from None
