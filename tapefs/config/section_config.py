"""Proxmox section-config files (datastore.cfg, tape.cfg, media-pool.cfg, ...).

The format, as PBS writes it::

    datastore: store1
        comment Main store
        path /mnt/datastore/store1

    datastore: store2
        path /srv/store2

A section starts with an unindented ``type: id`` line; its properties follow as indented
``key value`` lines (the value is the rest of the line, possibly empty); sections are separated
by blank lines; lines starting with ``#`` are comments. Section ids are unique within a file,
whatever their type, as in PBS.

A property is given once, except array properties: PBS writes one line per item (``group-filter``
in tape-job.cfg), so the caller declares which keys of which section type are arrays; their value
is a list of strings, in file order. Any other repeated key is an error naming file and line.
"""

import logging
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tapefs.config.atomic_file import atomic_write
from tapefs.config.private_files import PRIVATE_FILE_MODE, make_private_dirs
from tapefs.errors import InvalidInput

log = logging.getLogger(__name__)

_HEADER = re.compile(r"^(?P<type>[A-Za-z][A-Za-z0-9_-]*):\s+(?P<id>\S+)\s*$")
_PROPERTY = re.compile(r"^[ \t]+(?P<key>[A-Za-z][A-Za-z0-9_-]*)(?:[ \t]+(?P<value>.*?))?[ \t]*$")


class SectionConfigError(InvalidInput, ValueError):
    """A section-config file that cannot be parsed; names the file and line."""

    def __init__(self, filename: str, line_number: int, message: str):
        self.filename = filename
        self.line_number = line_number
        super().__init__(f"{filename}:{line_number}: {message}")


@dataclass
class Section:
    type: str
    id: str
    #: A string per property; a list of strings for an array property.
    properties: dict[str, str | list[str]] = field(default_factory=dict)

    def changed(
        self, changes: Mapping[str, str | list[str]], delete: Collection[str], required: Collection[str] = ()
    ) -> "Section":
        """A copy with `changes` set and the keys in `delete` removed (an ``update`` command);
        a key both set and deleted, or a `required` key deleted, is refused."""
        both = sorted(set(changes) & set(delete))
        if both:
            raise InvalidInput(f"{self.id}: {both[0]!r} is both set and deleted")
        kept = sorted(set(delete) & set(required))
        if kept:
            raise InvalidInput(f"{self.id}: {kept[0]!r} cannot be deleted, only changed")
        properties = {key: value for key, value in self.properties.items() if key not in delete}
        properties.update(changes)
        return Section(self.type, self.id, properties)


#: Section type -> keys that may repeat (array properties).
ArrayKeys = Mapping[str, Collection[str]]


class SectionConfig:
    """Sections of one file, in file order, addressable by id."""

    def __init__(self, sections: list[Section] | None = None):
        self._sections: dict[str, Section] = {}
        for section in sections or []:
            self.add(section)

    def __iter__(self):
        return iter(list(self._sections.values()))

    def __len__(self) -> int:
        return len(self._sections)

    def __contains__(self, section_id: str) -> bool:
        return section_id in self._sections

    def get(self, section_id: str) -> Section | None:
        return self._sections.get(section_id)

    def of_type(self, section_type: str) -> list[Section]:
        return [s for s in self._sections.values() if s.type == section_type]

    def add(self, section: Section) -> None:
        if section.id in self._sections:
            raise ValueError(f"duplicate section id {section.id!r}")
        self._sections[section.id] = section

    def set(self, section: Section) -> None:
        """Add or replace the section with this id, keeping its place if it exists."""
        self._sections[section.id] = section

    def remove(self, section_id: str) -> Section:
        return self._sections.pop(section_id)

    def format(self) -> str:
        blocks = []
        for section in self._sections.values():
            lines = [f"{section.type}: {section.id}"]
            for key, value in section.properties.items():
                for item in value if isinstance(value, (list, tuple)) else [value]:
                    _check_value(key, item)
                    lines.append(f"\t{key} {item}" if item != "" else f"\t{key}")
            blocks.append("\n".join(lines) + "\n")
        return "\n".join(blocks)


def _check_value(key: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        raise ValueError(f"property {key!r}: value must not contain a line break")


def parse(text: str, filename: str = "<string>", array_keys: ArrayKeys | None = None) -> SectionConfig:
    """``array_keys``: the keys that may repeat, per section type (see the module docstring)."""
    config = SectionConfig()
    current: Section | None = None
    first_line: dict[str, int] = {}
    property_line: dict[str, int] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            current = None
            continue
        if line.lstrip().startswith("#"):
            continue
        if line[0] in " \t":
            if current is None:
                raise SectionConfigError(filename, line_number, "property outside of a section")
            match = _PROPERTY.match(line)
            if not match:
                raise SectionConfigError(filename, line_number, f"malformed property line {line.strip()!r}")
            key, value = match["key"], match["value"] or ""
            if key in (array_keys or {}).get(current.type, ()):
                current.properties.setdefault(key, []).append(value)
            elif key in current.properties:
                raise SectionConfigError(
                    filename,
                    line_number,
                    f"duplicate property {key!r} in section {current.id!r} "
                    f"(first at line {property_line[key]}; only list properties may repeat)",
                )
            else:
                current.properties[key] = value
                property_line[key] = line_number
            continue
        match = _HEADER.match(line)
        if not match:
            raise SectionConfigError(filename, line_number, f"expected 'type: id' section header, got {line!r}")
        if match["id"] in first_line:
            raise SectionConfigError(
                filename, line_number, f"duplicate section id {match['id']!r} (first at line {first_line[match['id']]})"
            )
        first_line[match["id"]] = line_number
        current = Section(match["type"], match["id"])
        property_line = {}
        config.add(current)
    return config


def load(path: str | os.PathLike, array_keys: ArrayKeys | None = None) -> SectionConfig:
    """Read a section-config file; a missing file is an empty configuration."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return SectionConfig()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_number = raw.count(b"\n", 0, exc.start) + 1
        raise SectionConfigError(str(path), line_number, "not valid UTF-8") from None
    return parse(text, str(path), array_keys)


def save(path: str | os.PathLike, config: SectionConfig, mode: int = PRIVATE_FILE_MODE) -> None:
    """Write atomically, creating the configuration directory (0750) if needed."""
    path = Path(path)
    make_private_dirs(path.parent)
    atomic_write(path, config.format().encode("utf-8"), mode=mode)
