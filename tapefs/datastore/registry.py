"""The list of known datastores: ``datastore.cfg`` in the tapefs configuration directory, in
the same section-config form as PBS's ``/etc/proxmox-backup/datastore.cfg``. Besides ``path`` and
``comment`` a datastore may have ``gc-schedule`` and ``verify-schedule`` (calendar events): when
``tapefs scheduler`` runs its garbage collection and its verification; an S3 datastore also
``request-rate-threshold`` and ``counter-reset-schedule`` (when its request counters are zeroed)."""

import logging
import os
import shutil
from pathlib import Path

from tapefs.config import paths, section_config
from tapefs.config.calendar_event import CalendarEvent
from tapefs.config.section_config import Section
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.errors import DatastoreError, DatastoreOptionError, NamingError, UnknownNameError
from tapefs.datastore.naming import SAFE_ID
from tapefs.datastore.s3_backend import BackendConfig, S3Datastore, telemetry_path
from tapefs.s3.endpoint_config import EndpointRegistry
from tapefs.s3.telemetry import TelemetryFile

log = logging.getLogger(__name__)

DATASTORE_CONFIG_NAME = "datastore.cfg"
SECTION_TYPE = "datastore"
SCHEDULE_KEYS = ("gc-schedule", "verify-schedule", "counter-reset-schedule")
#: what only a datastore with an S3 backend may have
S3_ONLY_KEYS = ("request-rate-threshold", "counter-reset-schedule")
#: what ``update`` may set or delete
UPDATABLE_KEYS = ("comment", *SCHEDULE_KEYS, "request-rate-threshold")


class DatastoreRegistry:
    def __init__(self, config_path: str | os.PathLike | None = None):
        self.config_path = Path(config_path) if config_path else paths.config_file(DATASTORE_CONFIG_NAME)

    def _load(self) -> section_config.SectionConfig:
        return section_config.load(self.config_path)

    def entries(self) -> list[Section]:
        return self._load().of_type(SECTION_TYPE)

    def lookup(self, name: str) -> Datastore:
        section = self._load().get(name)
        if section is None or section.type != SECTION_TYPE:
            raise UnknownNameError(f"no datastore named {name!r} in {self.config_path}")
        path = section.properties.get("path")
        if not path:
            raise DatastoreError(f"datastore {name!r} in {self.config_path} has no path")
        backend = BackendConfig.parse(str(section.properties.get("backend", "")))
        if backend is not None:
            datastore = S3Datastore(path, name, backend, self._endpoints())
            if not datastore.chunk_store.exists():
                raise DatastoreError(f"{path}: not a datastore cache (no .chunks directory)")
            return datastore
        return Datastore.open(path, name)

    def _endpoints(self) -> EndpointRegistry:
        """The S3 endpoints beside this datastore.cfg."""
        return EndpointRegistry(self.config_path.parent / "s3.cfg")

    def backend_of(self, name: str) -> BackendConfig | None:
        section = self._load().get(name)
        if section is None or section.type != SECTION_TYPE:
            raise UnknownNameError(f"no datastore named {name!r} in {self.config_path}")
        return BackendConfig.parse(str(section.properties.get("backend", "")))

    def using_endpoint(self, endpoint_id: str) -> list[str]:
        """Names of the datastores whose backend is S3 endpoint ``endpoint_id``."""
        names = []
        for section in self.entries():
            backend = BackendConfig.parse(str(section.properties.get("backend", "")))
            if backend is not None and backend.client == endpoint_id:
                names.append(section.id)
        return names

    def update(self, name: str, changes: dict[str, str], delete: tuple[str, ...] = ()) -> None:
        """Set and remove the properties of datastore ``name`` (comment and schedules); a bad
        calendar event is refused before anything is written."""
        for key in (*changes, *delete):
            if key not in UPDATABLE_KEYS:
                raise DatastoreError(f"cannot change {key!r} of a datastore (only {', '.join(UPDATABLE_KEYS)})")
        check_options(changes)
        config = self._load()
        section = config.get(name)
        if section is None or section.type != SECTION_TYPE:
            raise UnknownNameError(f"no datastore named {name!r} in {self.config_path}")
        s3_only = [key for key in changes if key in S3_ONLY_KEYS]
        if s3_only and not section.properties.get("backend"):
            raise DatastoreOptionError(
                f"datastore {name!r} has no S3 backend: {', '.join(s3_only)} applies to S3 datastores"
            )
        for key in delete:
            section.properties.pop(key, None)
        section.properties.update(changes)
        section_config.save(self.config_path, config)

    def _check_new_name(self, name: str) -> None:
        """Checked before anything is made on disk, so a bad or swapped argument leaves nothing behind."""
        if not SAFE_ID.fullmatch(name):
            raise NamingError(
                f"invalid datastore name {name!r} (a name is letters, digits, '_', '.' and '-', "
                "not starting with '.' or '-'; usage: tapefs datastore create NAME PATH)"
            )
        if name in self._load():
            raise DatastoreError(f"datastore {name!r} already exists in {self.config_path}")

    def _register(self, name: str, path: Path, comment: str | None, backend: BackendConfig | None = None) -> None:
        self._check_new_name(name)
        config = self._load()
        properties = {"path": str(path)}
        if comment:
            properties["comment"] = comment
        if backend is not None:
            properties["backend"] = backend.format()
        config.add(Section(SECTION_TYPE, name, properties))
        section_config.save(self.config_path, config)

    def create(
        self, name: str, path: str | os.PathLike, comment: str | None = None, group: str | None = None
    ) -> Datastore:
        """Create a new datastore directory (readable by ``group``, if given) and register it."""
        path = Path(path).absolute()
        self._check_new_name(name)
        datastore = Datastore.create(path, name, group=group)
        self._register(name, path, comment)
        return datastore

    def add(self, name: str, path: str | os.PathLike, comment: str | None = None) -> Datastore:
        """Register an existing datastore, for example one a PBS server created."""
        path = Path(path).absolute()
        self._check_new_name(name)
        datastore = Datastore.open(path, name)
        self._register(name, path, comment)
        return datastore

    def set_options(self, name: str, options: dict) -> None:
        """Store the given ``DATASTORE_OPTIONS`` (keys with '_' or '-'); None values are skipped."""
        config = self._load()
        section = config.get(name)
        if section is None or section.type != SECTION_TYPE:
            raise UnknownNameError(f"no datastore named {name!r} in {self.config_path}")
        options = {key.replace("_", "-"): str(value) for key, value in options.items() if value is not None}
        for key in options:
            if key not in DATASTORE_OPTIONS:
                raise DatastoreError(f"unknown datastore option {key!r}")
        check_options(options)
        section.properties.update(options)
        config.set(section)
        section_config.save(self.config_path, config)

    def s3_telemetry(self, name: str) -> TelemetryFile:
        """The request counters of S3 datastore ``name``, without making an S3 client."""
        backend = self.backend_of(name)
        if backend is None:
            raise DatastoreOptionError(
                f"datastore {name!r} keeps its chunks in its directory: it has no S3 request counters"
            )
        return TelemetryFile(telemetry_path(backend.client, backend.bucket, name))

    def option(self, name: str, key: str) -> str | None:
        section = self._load().get(name)
        value = section.properties.get(key) if section is not None else None
        return value if isinstance(value, str) else None

    def create_s3(
        self,
        name: str,
        cache_path: str | os.PathLike,
        backend: BackendConfig,
        comment: str | None = None,
        reuse: bool = False,
        overwrite_in_use: bool = False,
    ) -> S3Datastore:
        """Create an S3 datastore whose cache is ``cache_path``, claiming its prefix in the
        bucket with the ``.in-use`` marker; with ``reuse``, re-attach a datastore that is
        already in the bucket and rebuild the cache from it."""
        path = Path(cache_path).absolute()
        self._check_new_name(name)
        endpoints = self._endpoints()
        endpoints.get(backend.client)  # an unknown endpoint fails before anything is made
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise DatastoreError(f"{path}: exists and is not an empty directory")
        made = not path.exists()
        Datastore.create(path, name, prefix_dirs=False)
        try:
            datastore = S3Datastore(path, name, backend, endpoints)
            datastore.client.head_bucket()
            existing = datastore.in_use_by() is not None or next(iter(datastore.client.list_objects("")), None)
            if existing and not reuse:
                raise DatastoreError(
                    f"bucket {backend.bucket} already holds datastore {name}: re-attach it with --reuse-datastore"
                )
            datastore.claim(overwrite_in_use)
            if reuse:
                datastore.refresh()
        except BaseException:
            shutil.rmtree(path, ignore_errors=True) if made else _empty_directory(path)
            raise
        self._register(name, path, comment, backend)
        return datastore


def _empty_directory(path: Path) -> None:
    for child in path.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


#: datastore.cfg properties the S3 options set (``--request-rate-threshold`` -> request-rate-threshold)
DATASTORE_OPTIONS = ("gc-schedule", "verify-schedule", "request-rate-threshold", "counter-reset-schedule")


def check_options(options: dict[str, str]) -> None:
    """Refuse a bad calendar event or threshold among datastore properties (keys with '-')."""
    for key in SCHEDULE_KEYS:
        if key in options:
            CalendarEvent.parse(options[key])
    threshold = options.get("request-rate-threshold")
    if threshold is not None and not (threshold.isdigit() and int(threshold) > 0):
        raise DatastoreOptionError(
            f"request-rate-threshold {threshold!r}: not a positive number of requests per minute"
        )
