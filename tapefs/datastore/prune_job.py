"""Named prune jobs: ``prune.cfg`` in the tapefs configuration directory, in the section-config
form of PBS's ``/etc/proxmox-backup/prune.cfg``::

    prune: nightly-main
        store main
        ns site/a
        max-depth 1
        keep-daily 7
        keep-weekly 4
        schedule daily 03:00

``schedule`` (a calendar event) is when ``tapefs scheduler`` runs the job; without it the job
only runs by hand (``tapefs datastore prune-job run NAME``).
"""

import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from tapefs.config import paths, section_config
from tapefs.config.calendar_event import CalendarEvent
from tapefs.config.section_config import Section
from tapefs.datastore.errors import DatastoreError, DatastoreOptionError
from tapefs.datastore.naming import MAX_NAMESPACE_DEPTH, SAFE_ID, BackupNamespace
from tapefs.datastore.prune import KEEP_RULES, KeepOptions
from tapefs.datastore.registry import DatastoreRegistry

log = logging.getLogger(__name__)

PRUNE_CONFIG_NAME = "prune.cfg"
SECTION_TYPE = "prune"
OTHER_KEYS = ("store", "ns", "max-depth", "comment", "schedule")


@dataclass(frozen=True)
class PruneJob:
    id: str
    store: str
    keep: KeepOptions
    namespace: BackupNamespace = BackupNamespace()
    max_depth: int | None = None
    comment: str = ""
    schedule: str | None = None

    def to_section(self) -> Section:
        properties: dict[str, str | list[str]] = {"store": self.store}
        if not self.namespace.is_root:
            properties["ns"] = str(self.namespace)
        if self.max_depth is not None:
            properties["max-depth"] = str(self.max_depth)
        properties.update({rule: str(count) for rule, count in self.keep.counts})
        if self.comment:
            properties["comment"] = self.comment
        if self.schedule:
            properties["schedule"] = self.schedule
        return Section(SECTION_TYPE, self.id, properties)

    def to_json(self) -> dict:
        value = {"id": self.id, "store": self.store, "ns": str(self.namespace), "max-depth": self.max_depth}
        value.update(self.keep.to_mapping())
        value["comment"] = self.comment
        if self.schedule:
            value["schedule"] = self.schedule
        return value


def check_max_depth(max_depth: int | None) -> int | None:
    if max_depth is not None and not 0 <= max_depth <= MAX_NAMESPACE_DEPTH:
        raise DatastoreError(f"max-depth must be between 0 and {MAX_NAMESPACE_DEPTH}, got {max_depth}")
    return max_depth


def _check_schedule(schedule: str | None) -> str | None:
    if schedule is not None:
        CalendarEvent.parse(schedule)
    return schedule


def _job_from_section(section: Section, where: str) -> PruneJob:
    unknown = sorted(set(section.properties) - set(OTHER_KEYS) - set(KEEP_RULES))
    if unknown:
        raise DatastoreError(f"{where}: unknown property {unknown[0]!r}")
    if not section.properties.get("store"):
        raise DatastoreError(f"{where}: no store")
    # prune.cfg has no array properties: every value is one string
    properties = {key: str(value) for key, value in section.properties.items()}
    try:
        counts = {rule: int(properties[rule]) for rule in KEEP_RULES if rule in properties}
        max_depth = properties.get("max-depth")
        return PruneJob(
            section.id,
            properties["store"],
            KeepOptions.from_mapping(counts),
            BackupNamespace.parse(properties.get("ns", "")),
            check_max_depth(int(max_depth) if max_depth is not None else None),
            properties.get("comment", ""),
            _check_schedule(properties.get("schedule")),
        )
    except (ValueError, DatastoreError) as exc:
        raise DatastoreError(f"{where}: {exc}") from None


class PruneJobConfig:
    def __init__(self, config_path: str | os.PathLike | None = None):
        self.config_path = Path(config_path) if config_path else paths.config_file(PRUNE_CONFIG_NAME)

    def _where(self, job_id: str) -> str:
        return f"{self.config_path}: prune job {job_id!r}"

    def jobs(self) -> list[PruneJob]:
        return [
            _job_from_section(s, self._where(s.id)) for s in section_config.load(self.config_path).of_type(SECTION_TYPE)
        ]

    def lookup(self, job_id: str) -> PruneJob:
        section = section_config.load(self.config_path).get(job_id)
        if section is None or section.type != SECTION_TYPE:
            raise DatastoreError(f"no prune job named {job_id!r} in {self.config_path}")
        return _job_from_section(section, self._where(job_id))

    def add(self, job: PruneJob) -> None:
        if not SAFE_ID.fullmatch(job.id):
            raise DatastoreError(f"invalid prune job name {job.id!r}")
        if not job.keep.keeps_something:
            raise DatastoreError(f"prune job {job.id!r}: give at least one of --{', --'.join(KEEP_RULES)}")
        check_max_depth(job.max_depth)
        _check_schedule(job.schedule)
        config = section_config.load(self.config_path)
        if job.id in config:
            raise DatastoreError(f"{job.id!r} already exists in {self.config_path}")
        config.add(job.to_section())
        section_config.save(self.config_path, config)

    def update(self, job_id: str, changes: Mapping[str, str], delete: Collection[str] = ()) -> PruneJob:
        """Set properties of job ID (prune.cfg keys: ``keep-daily``, ``schedule``, …) and remove
        those in `delete`; nothing is written unless the result is a valid job that keeps
        something, for a datastore that exists."""
        config = section_config.load(self.config_path)
        section = config.get(job_id)
        if section is None or section.type != SECTION_TYPE:
            raise DatastoreError(f"no prune job named {job_id!r} in {self.config_path}")
        try:
            job = _job_from_section(section.changed(changes, delete, ("store",)), f"prune job {job_id!r}")
        except DatastoreError as error:  # the file is as it was: the values given are wrong
            raise DatastoreOptionError(str(error)) from None
        if not job.keep.keeps_something:
            raise DatastoreOptionError(
                f"prune job {job.id!r}: it would keep nothing; keep at least one of {', '.join(KEEP_RULES)}"
            )
        DatastoreRegistry().lookup(job.store)
        config.set(job.to_section())
        section_config.save(self.config_path, config)
        return job

    def remove(self, job_id: str) -> None:
        config = section_config.load(self.config_path)
        section = config.get(job_id)
        if section is None or section.type != SECTION_TYPE:
            raise DatastoreError(f"no prune job named {job_id!r} in {self.config_path}")
        config.remove(job_id)
        section_config.save(self.config_path, config)
