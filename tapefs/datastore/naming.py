"""Backup namespaces, groups and snapshots, and their places on disk (docs/datastore-format.md, "Names").

Namespace ``a/b`` lives in ``<root>/ns/a/ns/b``; a group is ``<type>/<id>`` inside it, a
snapshot ``<type>/<id>/<YYYY-MM-DDTHH:MM:SSZ>``.
"""

import calendar
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from tapefs.datastore.errors import NamingError

log = logging.getLogger(__name__)

BACKUP_TYPES = ("vm", "ct", "host")
SAFE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._\-]*")
BACKUP_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
#: files PBS lists in a snapshot; no "/" and a fixed extension, so a name cannot leave the dir
ARCHIVE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\.(didx|fidx|blob)")
MAX_NAMESPACE_DEPTH = 7
MAX_NAMESPACE_LENGTH = 256


def format_backup_time(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def parse_backup_time(text: str) -> int:
    if not BACKUP_TIME.fullmatch(text):
        raise NamingError(f"invalid backup time {text!r} (expected YYYY-MM-DDTHH:MM:SSZ)")
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        raise NamingError(f"invalid backup time {text!r}") from None


def check_backup_id(backup_id: str) -> str:
    if not SAFE_ID.fullmatch(backup_id):
        raise NamingError(f"invalid backup id {backup_id!r}")
    return backup_id


def check_backup_type(backup_type: str) -> str:
    if backup_type not in BACKUP_TYPES:
        raise NamingError(f"invalid backup type {backup_type!r} (one of {', '.join(BACKUP_TYPES)})")
    return backup_type


def check_archive_name(name: str) -> str:
    """Archive file names inside a snapshot; refuses anything that could leave the directory."""
    if not ARCHIVE_NAME.fullmatch(name):
        raise NamingError(f"invalid archive name {name!r}")
    return name


@dataclass(frozen=True, order=True)
class BackupNamespace:
    components: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> "BackupNamespace":
        if not text or text == "/":
            return cls()
        if len(text) > MAX_NAMESPACE_LENGTH:
            raise NamingError(f"namespace {text!r} longer than {MAX_NAMESPACE_LENGTH} characters")
        components = tuple(text.strip("/").split("/"))
        if len(components) > MAX_NAMESPACE_DEPTH:
            raise NamingError(f"namespace {text!r} deeper than {MAX_NAMESPACE_DEPTH} levels")
        for component in components:
            if not SAFE_ID.fullmatch(component):
                raise NamingError(f"invalid namespace component {component!r} in {text!r}")
        return cls(components)

    def __str__(self) -> str:
        return "/".join(self.components)

    @property
    def is_root(self) -> bool:
        return not self.components

    def relative_path(self) -> Path:
        path = Path()
        for component in self.components:
            path = path / "ns" / component
        return path


@dataclass(frozen=True, order=True)
class BackupGroup:
    namespace: BackupNamespace
    backup_type: str
    backup_id: str

    def __post_init__(self):
        check_backup_type(self.backup_type)
        check_backup_id(self.backup_id)

    @classmethod
    def parse(cls, text: str, namespace: BackupNamespace = BackupNamespace()) -> "BackupGroup":
        parts = text.split("/")
        if len(parts) != 2:
            raise NamingError(f"invalid backup group {text!r} (expected TYPE/ID)")
        return cls(namespace, parts[0], parts[1])

    def __str__(self) -> str:
        return f"{self.backup_type}/{self.backup_id}"

    def relative_path(self) -> Path:
        return self.namespace.relative_path() / self.backup_type / self.backup_id


@dataclass(frozen=True, order=True)
class BackupSnapshot:
    group: BackupGroup
    backup_time: int

    @classmethod
    def parse(cls, text: str, namespace: BackupNamespace = BackupNamespace()) -> "BackupSnapshot":
        parts = text.split("/")
        if len(parts) != 3:
            raise NamingError(f"invalid snapshot {text!r} (expected TYPE/ID/TIME)")
        return cls(BackupGroup(namespace, parts[0], parts[1]), parse_backup_time(parts[2]))

    @property
    def time_text(self) -> str:
        return format_backup_time(self.backup_time)

    def __str__(self) -> str:
        return f"{self.group}/{self.time_text}"

    def relative_path(self) -> Path:
        return self.group.relative_path() / self.time_text
