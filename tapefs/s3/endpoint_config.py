"""S3 endpoints: ``s3.cfg`` in the tapefs configuration directory, a section config like PBS's
``/etc/proxmox-backup/s3.cfg`` (section type ``s3-endpoint``, the same property names)::

    s3-endpoint: local-weed
        access-key tapefsadmin
        endpoint 127.0.0.1
        port 8333
        path-style true
        secret-key ...

The secret key lives in this file, as in PBS; the file is written 0600 and the secret never
appears in a listing, a log line or an error message. tapefs adds two properties PBS lacks:
``ca-file`` (a CA bundle to verify the endpoint's certificate with) and ``plain-http`` (talk
HTTP instead of HTTPS: only for a server on a trusted network, and only when asked for).
"""

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from tapefs.config import paths, section_config
from tapefs.config.section_config import Section
from tapefs.s3.errors import S3ConfigError, S3UnknownEndpoint

S3_CONFIG_NAME = "s3.cfg"
SECTION_TYPE = "s3-endpoint"
SECRET_FILE_MODE = 0o600
ENDPOINT_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{2,31}")
#: a host name or address, optionally starting with the ``{{bucket}}.`` template and holding ``{{region}}``
ENDPOINT_HOST = re.compile(r"(\{\{bucket\}\}\.)?([A-Za-z0-9-]|\{\{region\}\}|\.|:|\[|\])+")
REGION = re.compile(r"[_a-z\d][-_a-z\d]{1,31}")
FINGERPRINT = re.compile(r"([0-9a-f]{2}:){31}[0-9a-f]{2}")
BUCKET_NAME = re.compile(r"[a-z0-9]([a-z0-9\-]*[a-z0-9])?")
DEFAULT_REGION = "us-west-1"
PROVIDER_QUIRKS = ("skip-if-none-match-header", "delete-objects-via-delete-object")


def check_bucket_name(bucket: str) -> str:
    """PBS's bucket name rules (which are AWS's)."""
    if (
        not 3 <= len(bucket) <= 63
        or not BUCKET_NAME.fullmatch(bucket)
        or bucket.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
        or bucket.endswith(("--ol-s3", ".mrap", "--x-s3"))
    ):
        raise S3ConfigError(f"invalid bucket name {bucket!r} (3-63 characters: a-z, 0-9 and '-', not at either end)")
    return bucket


def normalize_fingerprint(text: str) -> str:
    """``AA:BB:..`` or bare hex -> lower-case hex with colons, as PBS writes it."""
    digits = text.strip().lower().replace(":", "")
    if not re.fullmatch(r"[0-9a-f]{64}", digits):
        raise S3ConfigError("invalid fingerprint (a SHA-256 certificate fingerprint: 64 hex digits, ':' optional)")
    return ":".join(digits[i : i + 2] for i in range(0, 64, 2))


@dataclass(frozen=True)
class S3Endpoint:
    id: str
    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    port: int | None = None
    region: str | None = None
    path_style: bool = False
    fingerprint: str | None = None
    ca_file: str | None = None
    plain_http: bool = False
    #: PUT requests per second at most (PBS applies it to PUT only)
    put_rate_limit: int | None = None
    provider_quirks: tuple[str, ...] = ()

    def __post_init__(self):
        if not ENDPOINT_ID.fullmatch(self.id):
            raise S3ConfigError(f"invalid endpoint id {self.id!r} (3-32 characters: letters, digits, '_', '.', '-')")
        if not ENDPOINT_HOST.fullmatch(self.endpoint):
            raise S3ConfigError(
                f"invalid endpoint {self.endpoint!r} (a host name or address, without scheme or path; "
                "it may start with '{{bucket}}.' and contain '{{region}}')"
            )
        if not self.access_key:
            raise S3ConfigError("the access key must not be empty")
        if not self.secret_key:
            raise S3ConfigError("the secret key must not be empty")
        if self.port is not None and not 0 < self.port < 65536:
            raise S3ConfigError(f"invalid port {self.port}")
        if self.region is not None and not REGION.fullmatch(self.region):
            raise S3ConfigError(f"invalid region {self.region!r}")
        if self.fingerprint is not None and not FINGERPRINT.fullmatch(self.fingerprint):
            raise S3ConfigError("invalid fingerprint (lower-case hex with colons, see normalize_fingerprint)")
        if self.ca_file is not None and not Path(self.ca_file).is_file():
            raise S3ConfigError(f"CA file {self.ca_file}: no such file")
        if self.plain_http and (self.fingerprint or self.ca_file):
            raise S3ConfigError("plain-http has no certificate: drop the fingerprint and CA file, or plain-http")
        if self.put_rate_limit is not None and self.put_rate_limit <= 0:
            raise S3ConfigError("put-rate-limit must be a positive number of requests per second")
        for quirk in self.provider_quirks:
            if quirk not in PROVIDER_QUIRKS:
                raise S3ConfigError(f"unknown provider quirk {quirk!r} (known: {', '.join(PROVIDER_QUIRKS)})")

    @property
    def effective_region(self) -> str:
        return self.region or DEFAULT_REGION

    @property
    def virtual_host_style(self) -> bool:
        return not self.path_style

    def endpoint_url(self) -> str:
        """The URL boto3 is given: the ``{{bucket}}.`` prefix is boto3's virtual-host addressing."""
        host = self.endpoint.replace("{{region}}", self.effective_region).removeprefix("{{bucket}}.")
        if self.port is not None:
            host = f"{host}:{self.port}"
        return f"{'http' if self.plain_http else 'https'}://{host}"

    def public_view(self) -> dict:
        """Everything but the secret, for listings."""
        view = {
            "id": self.id,
            "endpoint": self.endpoint,
            "port": self.port,
            "region": self.region,
            "access-key": self.access_key,
            "path-style": self.path_style,
            "fingerprint": self.fingerprint,
            "ca-file": self.ca_file,
            "plain-http": self.plain_http,
            "put-rate-limit": self.put_rate_limit,
            "provider-quirks": list(self.provider_quirks),
        }
        return {key: value for key, value in view.items() if value not in (None, False, [])}

    def to_section(self) -> Section:
        properties: dict[str, str | list[str]] = {
            "endpoint": self.endpoint,
            "access-key": self.access_key,
            "secret-key": self.secret_key,
        }
        if self.port is not None:
            properties["port"] = str(self.port)
        if self.region is not None:
            properties["region"] = self.region
        if self.path_style:
            properties["path-style"] = "true"
        if self.fingerprint:
            properties["fingerprint"] = self.fingerprint
        if self.ca_file:
            properties["ca-file"] = self.ca_file
        if self.plain_http:
            properties["plain-http"] = "true"
        if self.put_rate_limit is not None:
            properties["put-rate-limit"] = str(self.put_rate_limit)
        if self.provider_quirks:
            properties["provider-quirks"] = ",".join(self.provider_quirks)
        return Section(SECTION_TYPE, self.id, properties)

    @classmethod
    def from_section(cls, section: Section) -> "S3Endpoint":
        props = section.properties

        def text(key: str) -> str | None:
            value = props.get(key)
            return value if isinstance(value, str) and value != "" else None

        def flag(key: str) -> bool:
            return (text(key) or "false").lower() in ("true", "1", "yes", "on")

        def number(key: str) -> int | None:
            value = text(key)
            if value is None:
                return None
            try:
                return int(value)
            except ValueError:
                raise S3ConfigError(f"endpoint {section.id}: {key} {value!r} is not a number") from None

        quirks = text("provider-quirks")
        return cls(
            id=section.id,
            endpoint=text("endpoint") or "",
            access_key=text("access-key") or "",
            secret_key=text("secret-key") or "",
            port=number("port"),
            region=text("region"),
            path_style=flag("path-style"),
            fingerprint=text("fingerprint"),
            ca_file=text("ca-file"),
            plain_http=flag("plain-http"),
            put_rate_limit=number("put-rate-limit"),
            provider_quirks=tuple(q for q in (quirks or "").replace(" ", ",").split(",") if q),
        )


#: the option names ``update`` accepts, as the dataclass spells them
UPDATABLE = tuple(f.name for f in fields(S3Endpoint) if f.name != "id")


class EndpointRegistry:
    def __init__(self, config_path: str | os.PathLike | None = None):
        self.config_path = Path(config_path) if config_path else paths.config_file(S3_CONFIG_NAME)

    def _load(self) -> section_config.SectionConfig:
        return section_config.load(self.config_path)

    def _save(self, config: section_config.SectionConfig) -> None:
        section_config.save(self.config_path, config, mode=SECRET_FILE_MODE)

    def endpoints(self) -> list[S3Endpoint]:
        return [S3Endpoint.from_section(section) for section in self._load().of_type(SECTION_TYPE)]

    def get(self, endpoint_id: str) -> S3Endpoint:
        section = self._load().get(endpoint_id)
        if section is None or section.type != SECTION_TYPE:
            raise S3UnknownEndpoint(f"no S3 endpoint named {endpoint_id!r} in {self.config_path}")
        return S3Endpoint.from_section(section)

    def create(self, endpoint: S3Endpoint) -> None:
        config = self._load()
        if endpoint.id in config:
            raise S3ConfigError(f"S3 endpoint {endpoint.id!r} already exists in {self.config_path}")
        config.add(endpoint.to_section())
        self._save(config)

    def update(self, endpoint_id: str, **changes) -> S3Endpoint:
        """Change the given properties (None leaves one as it is)."""
        unknown = set(changes) - set(UPDATABLE)
        if unknown:
            raise S3ConfigError(f"unknown endpoint properties: {', '.join(sorted(unknown))}")
        updated = replace(self.get(endpoint_id), **{k: v for k, v in changes.items() if v is not None})
        config = self._load()
        config.set(updated.to_section())
        self._save(config)
        return updated

    def remove(self, endpoint_id: str, in_use_by: list[str] | None = None) -> None:
        """Refused while a datastore (``in_use_by``) still uses the endpoint, as in PBS."""
        self.get(endpoint_id)
        if in_use_by:
            raise S3ConfigError(f"S3 endpoint {endpoint_id!r} is used by datastore {', '.join(in_use_by)}")
        config = self._load()
        config.remove(endpoint_id)
        self._save(config)
