"""Typed tape configuration files, in PBS's section-config format (``tapefs.config.section_config``):

* ``tape.cfg``: ``lto: NAME`` drives (``path``, ``changer``, ``changer-drivenum``) and
  ``changer: NAME`` changers (``path``, ``export-slots``, ``eject-before-unload``). A path is a
  device node (``/dev/tape/by-id/...``, ``/dev/sg3``) or a vtape socket (``LIBDIR/drive0``,
  ``LIBDIR/changer``); it is not opened here.
* ``media-pool.cfg``: ``pool: NAME`` (``allocation``, ``retention``, ``template``, ``encrypt``,
  ``comment``).
* ``tape-job.cfg``: ``backup: ID`` tape backup jobs; ``group-filter`` and ``include`` (tapefs's
  addition: group filters and retention selectors) are array properties, one line per item as
  PBS writes them.

Loading checks every section and property and reports the first problem as
``FILE:LINE: <what> 'NAME': property 'KEY': <why>``, so a typo names its place. Saving checks
the same rules; ``create_section``, ``update_section`` and ``remove_section`` are the
command lines' create, update (with ``--delete`` and ``--digest``) and remove.
"""

import difflib
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path

from tapefs.config import paths, section_config
from tapefs.config.calendar_event import CalendarEvent
from tapefs.config.section_config import Section, SectionConfig, SectionConfigError
from tapefs.datastore.registry import DATASTORE_CONFIG_NAME, DatastoreRegistry
from tapefs.datastore.snapshot_include import check_include
from tapefs.errors import InvalidInput, NotFound
from tapefs.media.errors import UnknownConfigEntry
from tapefs.media.locks import FileLock
from tapefs.media.media_id import SAFE_ID, check_fingerprint
from tapefs.media.policy import AllocationPolicy, RetentionPolicy, parse_allocation_policy, parse_retention_policy

log = logging.getLogger(__name__)

TAPE_CONFIG_NAME = "tape.cfg"
MEDIA_POOL_CONFIG_NAME = "media-pool.cfg"
TAPE_JOB_CONFIG_NAME = "tape-job.cfg"

DRIVE_SECTION = "lto"
CHANGER_SECTION = "changer"
POOL_SECTION = "pool"
TAPE_JOB_SECTION = "backup"

CONFIG_LOCK_TIMEOUT = 10.0

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_MAX_NAMESPACE_DEPTH = 7
_GROUP_FILTER = re.compile(
    r"(include:|exclude:)?(type:(vm|ct|host)|group:(vm|ct|host)/[A-Za-z0-9_][A-Za-z0-9._\-]*|regex:.+)"
)
NOTIFICATION_MODES = ("legacy-sendmail", "notification-system")
#: How a tape backup orders each index's chunks (PBS's `chunk-order`, default "inode"): by the
#: inode of their chunk file, so a disk reads them mostly in place order, or "none", index order.
CHUNK_ORDERS = ("inode", "none")


class TapeConfigError(SectionConfigError):
    """A tape configuration file with a bad section or property; names the file and the line."""


class _PropertyError(ValueError):
    """A bad value, before we know which file and line it came from (``index``: which item of an
    array property)."""

    def __init__(self, key: str | None, message: str, index: int = 0):
        self.key = key
        self.index = index
        super().__init__(message)


# -- value parsers: text -> value, raising ValueError with a reason ----------------------------


def _name_parser(kind: str, low: int, high: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not SAFE_ID.fullmatch(text) or not low <= len(text) <= high:
            raise ValueError(
                f"invalid {kind} name {text!r} (letters, digits, '_', '.', '-'; {low} to {high} characters)"
            )
        return text

    return parse


_drive_name = _name_parser("drive", 3, 32)
_changer_name = _name_parser("changer", 3, 32)
_pool_name = _name_parser("pool", 2, 32)
_job_id = _name_parser("job", 3, 32)
_store_name = _name_parser("datastore", 3, 32)


def _device_path(text: str) -> str:
    if not text.strip():
        raise ValueError("empty path")
    return text


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"[0-9]+", text):
            raise ValueError(f"expected an integer {low}..{high}, got {text!r}")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range {low}..{high}")
        return value

    return parse


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected a boolean (1/0, true/false, yes/no, on/off), got {text!r}")


def _format_boolean(value: bool) -> str:
    return "true" if value else "false"


def _slot_list(text: str) -> tuple[int, ...]:
    items = [item for item in re.split(r"[,;\s]+", text) if item]
    if not items:
        raise ValueError("empty slot list")
    slot = _int_in(1, 65535)
    return tuple(slot(item) for item in items)


def _format_slot_list(slots: tuple[int, ...]) -> str:
    return ",".join(str(slot) for slot in slots)


def _allocation(text: str) -> str:
    parse_allocation_policy(text)
    return text


def _retention(text: str) -> str:
    parse_retention_policy(text)
    return text


def _template(text: str) -> str:
    if not 2 <= len(text) <= 64:
        raise ValueError(f"template must have 2 to 64 characters, not {len(text)}")
    return text


def _calendar_event(text: str) -> str:
    CalendarEvent.parse(text)
    return text


def _namespace(text: str) -> str:
    components = text.split("/")
    if len(components) > _MAX_NAMESPACE_DEPTH or not all(SAFE_ID.fullmatch(c) for c in components):
        raise ValueError(f"invalid namespace {text!r} (up to {_MAX_NAMESPACE_DEPTH} safe names joined by '/')")
    return text


def _group_filter(text: str) -> str:
    if not _GROUP_FILTER.fullmatch(text):
        raise ValueError(f"invalid group filter {text!r} ([include:|exclude:]type:TYPE, group:TYPE/ID or regex:REGEX)")
    body = re.sub(r"^(include|exclude):", "", text)
    if body.startswith("regex:"):
        try:
            re.compile(body.removeprefix("regex:"))
        except re.error as exc:
            raise ValueError(f"invalid regular expression in group filter {text!r}: {exc}") from None
    return text


def _notification_mode(text: str) -> str:
    if text not in NOTIFICATION_MODES:
        raise ValueError(f"expected one of {', '.join(NOTIFICATION_MODES)}, got {text!r}")
    return text


def _chunk_order(text: str) -> str:
    if text not in CHUNK_ORDERS:
        raise ValueError(f"expected one of {', '.join(CHUNK_ORDERS)}, got {text!r}")
    return text


def _text(text: str) -> str:
    return text


@dataclass(frozen=True)
class _Property:
    key: str  # the name in the file
    attribute: str  # the dataclass field
    parse: Callable[[str], object]
    format: Callable[[object], str] = str
    required: bool = False
    #: Repeated in the file, one line per item; a tuple in the dataclass.
    array: bool = False


# -- the typed sections ------------------------------------------------------------------------


@dataclass(frozen=True)
class DriveConfig:
    name: str
    path: str
    changer: str | None = None
    changer_drivenum: int | None = None


@dataclass(frozen=True)
class ChangerConfig:
    name: str
    path: str
    export_slots: tuple[int, ...] = ()
    eject_before_unload: bool | None = None


@dataclass(frozen=True)
class MediaPoolConfig:
    name: str
    allocation: str | None = None
    retention: str | None = None
    template: str | None = None
    encrypt: str | None = None
    comment: str | None = None

    @property
    def allocation_policy(self) -> AllocationPolicy:
        return parse_allocation_policy(self.allocation)

    @property
    def retention_policy(self) -> RetentionPolicy:
        return parse_retention_policy(self.retention)


@dataclass(frozen=True)
class TapeJobConfig:
    id: str
    store: str
    pool: str
    drive: str
    schedule: str | None = None
    eject_media: bool | None = None
    export_media_set: bool | None = None
    latest_only: bool | None = None
    notify_user: str | None = None
    notification_mode: str | None = None
    group_filter: tuple[str, ...] = ()
    ns: str | None = None
    max_depth: int | None = None
    comment: str | None = None
    #: ``--include`` expressions (tapefs's addition; PBS has no such key)
    include: tuple[str, ...] = ()
    chunk_order: str | None = None

    def next_run(self, now: float) -> int | None:
        """Epoch seconds of the next scheduled run after ``now`` (None without a schedule).

        The first event after ``now`` (``backup-job list``); ``tapefs job list`` counts from the
        job's last run, as the scheduler does.
        """
        if self.schedule is None:
            return None
        return CalendarEvent.parse(self.schedule).next_after(int(now))


@dataclass(frozen=True)
class _SectionSchema:
    section_type: str
    kind: str  # for messages: "drive", "pool", ...
    cls: type
    id_attribute: str
    parse_id: Callable[[str], str]
    properties: tuple[_Property, ...]

    def property(self, key: str) -> _Property | None:
        return next((p for p in self.properties if p.key == key), None)

    def array_keys(self) -> set[str]:
        return {p.key for p in self.properties if p.array}


_DRIVE_SCHEMA = _SectionSchema(
    DRIVE_SECTION,
    "drive",
    DriveConfig,
    "name",
    _drive_name,
    (
        _Property("path", "path", _device_path, required=True),
        _Property("changer", "changer", _changer_name),
        _Property("changer-drivenum", "changer_drivenum", _int_in(0, 255)),
    ),
)
_CHANGER_SCHEMA = _SectionSchema(
    CHANGER_SECTION,
    "changer",
    ChangerConfig,
    "name",
    _changer_name,
    (
        _Property("path", "path", _device_path, required=True),
        _Property("export-slots", "export_slots", _slot_list, _format_slot_list),
        _Property("eject-before-unload", "eject_before_unload", _boolean, _format_boolean),
    ),
)
_POOL_SCHEMA = _SectionSchema(
    POOL_SECTION,
    "pool",
    MediaPoolConfig,
    "name",
    _pool_name,
    (
        _Property("allocation", "allocation", _allocation),
        _Property("retention", "retention", _retention),
        _Property("template", "template", _template),
        _Property("encrypt", "encrypt", check_fingerprint),
        _Property("comment", "comment", _text),
    ),
)
_TAPE_JOB_SCHEMA = _SectionSchema(
    TAPE_JOB_SECTION,
    "tape backup job",
    TapeJobConfig,
    "id",
    _job_id,
    (
        _Property("store", "store", _store_name, required=True),
        _Property("pool", "pool", _pool_name, required=True),
        _Property("drive", "drive", _drive_name, required=True),
        _Property("schedule", "schedule", _calendar_event),
        _Property("eject-media", "eject_media", _boolean, _format_boolean),
        _Property("export-media-set", "export_media_set", _boolean, _format_boolean),
        _Property("latest-only", "latest_only", _boolean, _format_boolean),
        _Property("notify-user", "notify_user", _text),
        _Property("notification-mode", "notification_mode", _notification_mode),
        _Property("group-filter", "group_filter", _group_filter, array=True),
        _Property("ns", "ns", _namespace),
        _Property("max-depth", "max_depth", _int_in(0, _MAX_NAMESPACE_DEPTH)),
        _Property("comment", "comment", _text),
        _Property("include", "include", check_include, array=True),
        _Property("chunk-order", "chunk_order", _chunk_order),
    ),
)


def _object_from_section(section: Section, schema: _SectionSchema):
    try:
        schema.parse_id(section.id)
    except ValueError as exc:
        raise _PropertyError(None, str(exc)) from None
    values: dict[str, object] = {schema.id_attribute: section.id}
    for key, text in section.properties.items():
        prop = schema.property(key)
        if prop is None:
            known = [p.key for p in schema.properties]
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
            raise _PropertyError(key, f"unknown property{hint}")
        items = text if prop.array else [text]
        parsed = []
        for index, item in enumerate(items):
            try:
                parsed.append(prop.parse(item))
            except ValueError as exc:
                raise _PropertyError(key, str(exc), index) from None
        values[prop.attribute] = tuple(parsed) if prop.array else parsed[0]
    for prop in schema.properties:
        if prop.required and prop.attribute not in values:
            raise _PropertyError(None, f"missing required property {prop.key!r}")
    return schema.cls(**values)


def _section_from_object(obj, schema: _SectionSchema) -> Section:
    """Format one typed object, checking it with the same rules as loading."""
    properties: dict[str, str] = {}
    for prop in schema.properties:
        value = getattr(obj, prop.attribute)
        if value is None or value == ():
            continue
        properties[prop.key] = [prop.format(item) for item in value] if prop.array else prop.format(value)
    section = Section(schema.section_type, getattr(obj, schema.id_attribute), properties)
    try:
        _object_from_section(section, schema)
    except _PropertyError as exc:
        where = f"{schema.kind} {section.id!r}" + (f": property {exc.key!r}" if exc.key else "")
        raise ValueError(f"{where}: {exc}") from None
    return section


# -- files -------------------------------------------------------------------------------------


def _line_numbers(text: str) -> dict[tuple[str, str | None], list[int]]:
    """(section id, property key or None for the header) -> line numbers (one per item of an array).

    section_config does not keep line numbers, and our messages need them; this only locates
    lines of a file section_config has already accepted.
    """
    lines: dict[tuple[str, str | None], list[int]] = {}
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            if not line.strip():
                current = None
            continue
        if line[0] in " \t":
            if current is not None:
                lines.setdefault((current, line.split(None, 1)[0]), []).append(number)
        else:
            current = line.split(":", 1)[1].strip() if ":" in line else None
            if current is not None:
                lines[(current, None)] = [number]
    return lines


def _load(path: Path, schemas: tuple[_SectionSchema, ...]) -> tuple[dict[str, dict[str, object]], Callable]:
    """Parse ``path``; returns {section type: {id: object}} and a locator for later errors."""
    config = section_config.load(path, {schema.section_type: schema.array_keys() for schema in schemas})
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    lines = _line_numbers(text)

    def error(section_id: str, key: str | None, message: str, index: int = 0) -> TapeConfigError:
        found = lines.get((section_id, key)) or lines.get((section_id, None)) or [0]
        return TapeConfigError(str(path), found[min(index, len(found) - 1)], message)

    by_type = {schema.section_type: schema for schema in schemas}
    result: dict[str, dict[str, object]] = {schema.section_type: {} for schema in schemas}
    for section in config:
        schema = by_type.get(section.type)
        if schema is None:
            known = ", ".join(f"'{t}'" for t in by_type)
            raise error(section.id, None, f"unknown section type {section.type!r} (expected {known})")
        try:
            result[section.type][section.id] = _object_from_section(section, schema)
        except _PropertyError as exc:
            where = f"{schema.kind} {section.id!r}" + (f": property {exc.key!r}" if exc.key else "")
            raise error(section.id, exc.key, f"{where}: {exc}", exc.index) from None
    return result, error


def _save(path: Path, objects: list[tuple[object, _SectionSchema]]) -> None:
    config = SectionConfig([_section_from_object(obj, schema) for obj, schema in objects])
    section_config.save(path, config)


def _config_path(path: str | os.PathLike | None, name: str) -> Path:
    return Path(path) if path is not None else paths.config_file(name)


@dataclass(frozen=True)
class TapeDeviceConfig:
    """tape.cfg: drives and changers by name, in file order."""

    drives: dict[str, DriveConfig]
    changers: dict[str, ChangerConfig]

    def drive(self, name: str) -> DriveConfig:
        try:
            return self.drives[name]
        except KeyError:
            raise UnknownConfigEntry(f"no drive named {name!r} in {TAPE_CONFIG_NAME}") from None

    def changer(self, name: str) -> ChangerConfig:
        try:
            return self.changers[name]
        except KeyError:
            raise UnknownConfigEntry(f"no changer named {name!r} in {TAPE_CONFIG_NAME}") from None

    def drives_of_changer(self, changer: str) -> list[DriveConfig]:
        """The changer's drives, by drive number (drives without a number last)."""
        drives = [drive for drive in self.drives.values() if drive.changer == changer]
        return sorted(drives, key=lambda d: (d.changer_drivenum is None, d.changer_drivenum or 0))


def load_tape_config(path: str | os.PathLike | None = None) -> TapeDeviceConfig:
    path = _config_path(path, TAPE_CONFIG_NAME)
    sections, error = _load(path, (_DRIVE_SCHEMA, _CHANGER_SCHEMA))
    config = TapeDeviceConfig(sections[DRIVE_SECTION], sections[CHANGER_SECTION])
    for drive in config.drives.values():
        if drive.changer is not None and drive.changer not in config.changers:
            raise error(
                drive.name,
                "changer",
                f"drive {drive.name!r}: property 'changer': no changer named {drive.changer!r} in this file",
            )
    return config


def save_tape_config(config: TapeDeviceConfig, path: str | os.PathLike | None = None) -> None:
    for drive in config.drives.values():
        if drive.changer is not None and drive.changer not in config.changers:
            raise ValueError(f"drive {drive.name!r}: no changer named {drive.changer!r}")
    _save(
        _config_path(path, TAPE_CONFIG_NAME),
        [(changer, _CHANGER_SCHEMA) for changer in config.changers.values()]
        + [(drive, _DRIVE_SCHEMA) for drive in config.drives.values()],
    )


def load_media_pool_config(path: str | os.PathLike | None = None) -> dict[str, MediaPoolConfig]:
    sections, _ = _load(_config_path(path, MEDIA_POOL_CONFIG_NAME), (_POOL_SCHEMA,))
    return sections[POOL_SECTION]


def save_media_pool_config(pools: dict[str, MediaPoolConfig], path: str | os.PathLike | None = None) -> None:
    _save(_config_path(path, MEDIA_POOL_CONFIG_NAME), [(pool, _POOL_SCHEMA) for pool in pools.values()])


def load_tape_job_config(path: str | os.PathLike | None = None) -> dict[str, TapeJobConfig]:
    sections, _ = _load(_config_path(path, TAPE_JOB_CONFIG_NAME), (_TAPE_JOB_SCHEMA,))
    return sections[TAPE_JOB_SECTION]


class UnknownTapeJobError(NotFound, LookupError):
    """A tape backup job id that tape-job.cfg does not have."""


def load_tape_job(job_id: str, path: str | os.PathLike | None = None) -> TapeJobConfig:
    path = _config_path(path, TAPE_JOB_CONFIG_NAME)
    jobs = load_tape_job_config(path)
    if job_id not in jobs:
        raise UnknownTapeJobError(
            f"no tape backup job named {job_id!r} in {path} (jobs: {', '.join(jobs) or 'none configured'})"
        )
    return jobs[job_id]


def save_tape_job_config(jobs: dict[str, TapeJobConfig], path: str | os.PathLike | None = None) -> None:
    _save(_config_path(path, TAPE_JOB_CONFIG_NAME), [(job, _TAPE_JOB_SCHEMA) for job in jobs.values()])


def config_keys(cls: type) -> list[str]:
    """The file keys of a typed section class, for command lines that build --delete choices."""
    return [prop.key for prop in _SCHEMAS[cls].properties]


# -- create, update, remove (the command lines' "create", "update --delete", "remove") ----------


class ConfigChangeError(InvalidInput, ValueError):
    """A create, update or remove that cannot be done: name taken, unknown, still in use, or the
    file changed since it was read (digest mismatch)."""


def config_digest(path: str | os.PathLike) -> str:
    """SHA-256 of the file as it is now (of nothing if missing), for update --digest."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        data = b""
    return hashlib.sha256(data).hexdigest()


_FILES = {
    DRIVE_SECTION: (TAPE_CONFIG_NAME, (_DRIVE_SCHEMA, _CHANGER_SCHEMA)),
    CHANGER_SECTION: (TAPE_CONFIG_NAME, (_DRIVE_SCHEMA, _CHANGER_SCHEMA)),
    POOL_SECTION: (MEDIA_POOL_CONFIG_NAME, (_POOL_SCHEMA,)),
    TAPE_JOB_SECTION: (TAPE_JOB_CONFIG_NAME, (_TAPE_JOB_SCHEMA,)),
}
_SCHEMAS = {schema.cls: schema for schema in (_DRIVE_SCHEMA, _CHANGER_SCHEMA, _POOL_SCHEMA, _TAPE_JOB_SCHEMA)}


def _edit(
    section_type: str,
    path: str | os.PathLike | None,
    digest: str | None,
    change: Callable[[dict[str, dict[str, object]]], None],
) -> None:
    name, schemas = _FILES[section_type]
    path = _config_path(path, name)
    # Two commands editing the same file must not lose each other's change.
    with FileLock(path.parent / f".{path.name}.lck", CONFIG_LOCK_TIMEOUT):
        _edit_locked(section_type, path, schemas, digest, change)


def _edit_locked(
    section_type: str,
    path: Path,
    schemas: tuple[_SectionSchema, ...],
    digest: str | None,
    change: Callable[[dict[str, dict[str, object]]], None],
) -> None:
    if digest is not None and digest != config_digest(path):
        raise ConfigChangeError(f"{path} was changed by someone else since it was read (digest mismatch)")
    sections, _ = _load(path, schemas)
    change(sections)
    if section_type in (DRIVE_SECTION, CHANGER_SECTION):
        save_tape_config(TapeDeviceConfig(sections[DRIVE_SECTION], sections[CHANGER_SECTION]), path)
    else:
        schema = schemas[0]
        _save(path, [(obj, schema) for obj in sections[section_type].values()])


def missing_device_warning(kind: str, device_path: str) -> str | None:
    """A warning for a drive or changer configured with a device path that does not exist now;
    None when it exists. Such a path is still accepted: the device may be switched off, or its
    vtape library not started yet."""
    if os.path.exists(device_path):
        return None
    return (
        f"{device_path} does not exist now; it is saved, and the {kind} works once the device is there "
        f"(`tapefs {kind} scan` lists the {kind}s found)"
    )


def create_section(obj, path: str | os.PathLike | None = None) -> None:
    """Add a drive, changer, pool or tape job; fails if the name is taken in its file."""
    schema = _SCHEMAS[type(obj)]
    name = getattr(obj, schema.id_attribute)

    def change(sections):
        for kind, existing in sections.items():
            if name in existing:
                raise ConfigChangeError(
                    f"{_FILES[schema.section_type][0]} already has an entry named {name!r} ({kind})"
                )
        if isinstance(obj, TapeJobConfig):
            _check_job_references(obj, _config_path(path, TAPE_JOB_CONFIG_NAME).parent)
        sections[schema.section_type][name] = obj

    _edit(schema.section_type, path, None, change)


def _check_job_references(job: TapeJobConfig, config_dir: Path) -> None:
    """A job names a datastore, a pool and a drive that exist now, so a typo fails at create
    time and not at the first scheduled run. A bad property is reported first."""
    _section_from_object(job, _SCHEMAS[TapeJobConfig])
    stores = [entry.id for entry in DatastoreRegistry(config_dir / DATASTORE_CONFIG_NAME).entries()]
    pools = load_media_pool_config(config_dir / MEDIA_POOL_CONFIG_NAME)
    drives = load_tape_config(config_dir / TAPE_CONFIG_NAME).drives
    for kind, name, known, where in (
        ("datastore", job.store, stores, DATASTORE_CONFIG_NAME),
        ("media pool", job.pool, pools, MEDIA_POOL_CONFIG_NAME),
        ("drive", job.drive, drives, TAPE_CONFIG_NAME),
    ):
        if name not in known:
            raise ConfigChangeError(
                f"tape backup job {job.id!r}: no {kind} named {name!r} in {where} (known: {', '.join(known) or 'none'})"
            )


def _defaults(cls: type) -> dict[str, object]:
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def update_section(
    cls: type,
    name: str,
    changes: Mapping[str, object] | None = None,
    delete: Iterable[str] = (),
    path: str | os.PathLike | None = None,
    digest: str | None = None,
) -> None:
    """Set the fields in ``changes`` (dataclass field names) and clear the file keys in ``delete``."""
    schema = _SCHEMAS[cls]

    def change(sections):
        current = sections[schema.section_type].get(name)
        if current is None:
            raise ConfigChangeError(f"no {schema.kind} named {name!r}")
        values = dict(changes or {})
        for key in delete:
            prop = schema.property(key)
            if prop is None:
                raise ConfigChangeError(f"{schema.kind} {name!r}: cannot delete unknown property {key!r}")
            if prop.required:
                raise ConfigChangeError(f"{schema.kind} {name!r}: property {key!r} is required")
            values[prop.attribute] = _defaults(cls)[prop.attribute]
        updated = replace(current, **values)
        if isinstance(updated, TapeJobConfig):
            _check_job_references(updated, _config_path(path, TAPE_JOB_CONFIG_NAME).parent)
        sections[schema.section_type][name] = updated

    _edit(schema.section_type, path, digest, change)


def remove_section(cls: type, name: str, path: str | os.PathLike | None = None, digest: str | None = None) -> None:
    """Remove an entry; a changer that drives still name cannot be removed."""
    schema = _SCHEMAS[cls]

    def change(sections):
        if name not in sections[schema.section_type]:
            raise ConfigChangeError(f"no {schema.kind} named {name!r}")
        if schema.section_type == CHANGER_SECTION:
            users = [d.name for d in sections[DRIVE_SECTION].values() if d.changer == name]
            if users:
                raise ConfigChangeError(f"changer {name!r} is used by drive(s) {', '.join(users)}")
        del sections[schema.section_type][name]

    _edit(schema.section_type, path, digest, change)
