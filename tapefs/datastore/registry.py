"""The list of known datastores: ``datastore.cfg`` in the tapefs configuration directory, in
the same section-config form as PBS's ``/etc/proxmox-backup/datastore.cfg``. Besides ``path`` and
``comment`` a datastore may have ``gc-schedule`` and ``verify-schedule`` (calendar events): when
``tapefs scheduler`` runs its garbage collection and its verification."""

import logging
import os
from pathlib import Path

from tapefs.config import paths, section_config
from tapefs.config.calendar_event import CalendarEvent
from tapefs.config.section_config import Section
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.errors import DatastoreError, NamingError, UnknownNameError
from tapefs.datastore.naming import SAFE_ID

log = logging.getLogger(__name__)

DATASTORE_CONFIG_NAME = "datastore.cfg"
SECTION_TYPE = "datastore"
SCHEDULE_KEYS = ("gc-schedule", "verify-schedule")
#: what ``update`` may set or delete
UPDATABLE_KEYS = ("comment", *SCHEDULE_KEYS)


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
        return Datastore.open(path, name)

    def update(self, name: str, changes: dict[str, str], delete: tuple[str, ...] = ()) -> None:
        """Set and remove the properties of datastore ``name`` (comment and schedules); a bad
        calendar event is refused before anything is written."""
        for key in (*changes, *delete):
            if key not in UPDATABLE_KEYS:
                raise DatastoreError(f"cannot change {key!r} of a datastore (only {', '.join(UPDATABLE_KEYS)})")
        for key in SCHEDULE_KEYS:
            if key in changes:
                CalendarEvent.parse(changes[key])
        config = self._load()
        section = config.get(name)
        if section is None or section.type != SECTION_TYPE:
            raise UnknownNameError(f"no datastore named {name!r} in {self.config_path}")
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

    def _register(self, name: str, path: Path, comment: str | None) -> None:
        self._check_new_name(name)
        config = self._load()
        properties = {"path": str(path)}
        if comment:
            properties["comment"] = comment
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
