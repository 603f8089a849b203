"""Named sync jobs between local datastores: ``sync.cfg`` in the tapefs configuration directory,
in the section-config form of PBS's ``/etc/proxmox-backup/sync.cfg`` (a local sync: no
``remote``)::

    sync: weekly-s3
        store s3store
        remote-store main
        remote-ns site
        ns archive
        max-depth 2
        group-filter type:vm
        remove-vanished true
        transfer-last 3
        schedule sun 04:30

``store`` is the target and ``remote-store`` the source, as in PBS. ``schedule`` (a calendar
event) is when ``tapefs scheduler`` runs the job; ``tapefs datastore sync-job run ID`` runs it
by hand.
"""

import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from tapefs.config import paths, section_config
from tapefs.config.calendar_event import CalendarEvent
from tapefs.config.section_config import Section
from tapefs.datastore.errors import DatastoreError, DatastoreOptionError, UnknownNameError
from tapefs.datastore.group_filter import GroupFilter
from tapefs.datastore.naming import MAX_NAMESPACE_DEPTH, SAFE_ID, BackupNamespace
from tapefs.datastore.registry import DatastoreRegistry

log = logging.getLogger(__name__)

SYNC_CONFIG_NAME = "sync.cfg"
SECTION_TYPE = "sync"
KEYS = (
    "store",
    "remote-store",
    "remote-ns",
    "ns",
    "max-depth",
    "group-filter",
    "remove-vanished",
    "transfer-last",
    "schedule",
    "comment",
)
REQUIRED_KEYS = ("store", "remote-store")
_ARRAY_KEYS = {SECTION_TYPE: ("group-filter",)}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class SyncJob:
    id: str
    store: str  # the target
    remote_store: str  # the source
    remote_ns: str = ""
    ns: str = ""
    max_depth: int | None = None
    group_filter: tuple[str, ...] = ()
    remove_vanished: bool = False
    transfer_last: int | None = None
    schedule: str | None = None
    comment: str = ""

    def check(self) -> None:
        """Every value's form (not whether the datastores exist)."""
        if not SAFE_ID.fullmatch(self.id):
            raise DatastoreError(f"invalid sync job name {self.id!r}")
        if self.store == self.remote_store:
            raise DatastoreError(f"sync job {self.id!r}: source and target are both {self.store!r}")
        BackupNamespace.parse(self.ns)
        BackupNamespace.parse(self.remote_ns)
        if self.max_depth is not None and not 0 <= self.max_depth <= MAX_NAMESPACE_DEPTH:
            raise DatastoreError(f"max-depth must be between 0 and {MAX_NAMESPACE_DEPTH}, got {self.max_depth}")
        if self.transfer_last is not None and self.transfer_last < 1:
            raise DatastoreError(f"transfer-last must be at least 1, got {self.transfer_last}")
        for text in self.group_filter:
            GroupFilter.parse(text)
        if self.schedule is not None:
            CalendarEvent.parse(self.schedule)

    def to_section(self) -> Section:
        properties: dict[str, str | list[str]] = {"store": self.store, "remote-store": self.remote_store}
        optional = {
            "remote-ns": self.remote_ns or None,
            "ns": self.ns or None,
            "max-depth": None if self.max_depth is None else str(self.max_depth),
            "remove-vanished": "true" if self.remove_vanished else None,
            "transfer-last": None if self.transfer_last is None else str(self.transfer_last),
            "schedule": self.schedule,
            "comment": self.comment or None,
        }
        properties.update({key: value for key, value in optional.items() if value is not None})
        if self.group_filter:
            properties["group-filter"] = list(self.group_filter)
        return Section(SECTION_TYPE, self.id, properties)

    def to_json(self) -> dict:
        return {key.replace("_", "-"): value for key, value in vars(self).items()} | {
            "group-filter": list(self.group_filter)
        }


def _job_from_section(section: Section, where: str) -> SyncJob:
    properties = section.properties
    unknown = sorted(set(properties) - set(KEYS))
    if unknown:
        raise DatastoreError(f"{where}: unknown property {unknown[0]!r}")
    for key in REQUIRED_KEYS:
        if not properties.get(key):
            raise DatastoreError(f"{where}: no {key}")

    def text(key: str) -> str | None:
        value = properties.get(key)
        return None if value is None else str(value)

    try:
        vanished = (text("remove-vanished") or "false").lower()
        if vanished not in _TRUE + _FALSE:
            raise ValueError(f"remove-vanished: expected a boolean, got {vanished!r}")
        filters = properties.get("group-filter", [])
        job = SyncJob(
            section.id,
            str(properties["store"]),
            str(properties["remote-store"]),
            text("remote-ns") or "",
            text("ns") or "",
            int(text("max-depth")) if text("max-depth") is not None else None,
            tuple([filters] if isinstance(filters, str) else filters),
            vanished in _TRUE,
            int(text("transfer-last")) if text("transfer-last") is not None else None,
            text("schedule"),
            text("comment") or "",
        )
        job.check()
        return job
    except (ValueError, DatastoreError) as exc:
        raise DatastoreError(f"{where}: {exc}") from None


class SyncJobConfig:
    def __init__(self, config_path: str | os.PathLike | None = None):
        self.config_path = Path(config_path) if config_path else paths.config_file(SYNC_CONFIG_NAME)

    def _where(self, job_id: str) -> str:
        return f"{self.config_path}: sync job {job_id!r}"

    def _load(self) -> section_config.SectionConfig:
        return section_config.load(self.config_path, _ARRAY_KEYS)

    def jobs(self) -> list[SyncJob]:
        return [_job_from_section(s, self._where(s.id)) for s in self._load().of_type(SECTION_TYPE)]

    def lookup(self, job_id: str) -> SyncJob:
        section = self._load().get(job_id)
        if section is None or section.type != SECTION_TYPE:
            raise UnknownNameError(f"no sync job named {job_id!r} in {self.config_path}")
        return _job_from_section(section, self._where(job_id))

    def add(self, job: SyncJob) -> None:
        """Store a new job; refused (nothing written) for a bad value or a job of that name."""
        job.check()
        registry = DatastoreRegistry()
        registry.lookup(job.remote_store)
        registry.lookup(job.store)
        config = self._load()
        if job.id in config:
            raise DatastoreError(f"{job.id!r} already exists in {self.config_path}")
        config.add(job.to_section())
        section_config.save(self.config_path, config)

    def update(self, job_id: str, changes: Mapping[str, str | list[str]], delete: Collection[str] = ()) -> SyncJob:
        """Set properties of job ID (sync.cfg keys: ``schedule``, ``group-filter``, …) and remove
        those in `delete`; nothing is written unless the result is a valid job whose datastores
        exist."""
        config = self._load()
        section = config.get(job_id)
        if section is None or section.type != SECTION_TYPE:
            raise UnknownNameError(f"no sync job named {job_id!r} in {self.config_path}")
        try:
            job = _job_from_section(section.changed(changes, delete, REQUIRED_KEYS), f"sync job {job_id!r}")
        except DatastoreError as error:  # the file is as it was: the values given are wrong
            raise DatastoreOptionError(str(error)) from None
        registry = DatastoreRegistry()
        registry.lookup(job.remote_store)
        registry.lookup(job.store)
        config.set(job.to_section())
        section_config.save(self.config_path, config)
        return job

    def remove(self, job_id: str) -> None:
        self.lookup(job_id)
        config = self._load()
        config.remove(job_id)
        section_config.save(self.config_path, config)
