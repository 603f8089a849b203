"""The pcat1 file catalog of a snapshot (``catalog.pcat1``; docs/catalog-formats.md, "pcat1 file catalog").

A catalog is a tree of directory blocks written post-order (a directory's block after those of
its subdirectories), each listing names, kinds and, for regular files, size and mtime.  Its
root holds one directory per pxar archive of the snapshot, e.g. ``root.pxar.didx``.
"""

import fnmatch
import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import FormatError, NotADirectory, NotFoundError
from .source import BytesSource, Source

log = logging.getLogger(__name__)

MAGIC = bytes.fromhex("91fd60f9c46758d5")
MAX_NAME_LENGTH = 4095

DIRECTORY = b"d"
FILE = b"f"
SYMLINK = b"l"
HARDLINK = b"h"
BLOCK_DEVICE = b"b"
CHAR_DEVICE = b"c"
FIFO = b"p"
SOCKET = b"s"
_KINDS = frozenset((DIRECTORY, FILE, SYMLINK, HARDLINK, BLOCK_DEVICE, CHAR_DEVICE, FIFO, SOCKET))


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128."""
    if value < 0:
        raise ValueError("varint must not be negative")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_svarint(value: int) -> bytes:
    """pcat1's signed varint: LEB128 for v >= 0; for v < 0, -v in groups all flagged, then 0."""
    if value >= 0:
        return encode_varint(value)
    magnitude = -value
    out = bytearray()
    while magnitude:
        out.append((magnitude & 0x7F) | 0x80)
        magnitude >>= 7
    out.append(0)
    return bytes(out)


def decode_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the unsigned varint at ``buf[pos]``."""
    value = 0
    for index in range(10):
        if pos + index >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos + index]
        value |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            if value >= 1 << 64:
                raise ValueError("varint exceeds 64 bits")
            return value, pos + index + 1
    raise ValueError("varint longer than 10 bytes")


def decode_svarint(buf: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for index in range(11):
        if pos + index >= len(buf):
            raise ValueError("truncated signed varint")
        byte = buf[pos + index]
        if byte == 0:
            return -value, pos + index + 1
        value |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            return value, pos + index + 1
    raise ValueError("signed varint longer than 11 bytes")


@dataclass(frozen=True)
class CatalogEntry:
    name: bytes
    kind: bytes
    size: int | None = None
    mtime: int | None = None
    block_offset: int | None = None  # directories: where their own block starts


class _OpenDirectory:
    def __init__(self, name: bytes):
        self.name = name
        self.entries: list[tuple] = []


class CatalogWriter:
    """Writes a pcat1 catalog to anything with ``write(bytes)``.

    Call ``start_directory``/``end_directory`` around each directory's children in archive
    order and ``finish`` once at the end.  The catalog root itself is implicit: a backup opens
    one directory per archive (``start_directory(b"root.pxar.didx")``) at the top level.
    """

    def __init__(self, out):
        self._out = out
        self._position = 0
        self._stack = [_OpenDirectory(b"")]
        self._write(MAGIC)

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._position += len(data)

    @staticmethod
    def _name(name: bytes | str) -> bytes:
        name = os.fsencode(name)
        if not name or b"/" in name or b"\0" in name:
            raise ValueError(f"invalid catalog entry name {name!r}")
        return name

    def start_directory(self, name: bytes | str) -> None:
        self._stack.append(_OpenDirectory(self._name(name)))

    def end_directory(self) -> None:
        if len(self._stack) < 2:
            raise ValueError("end_directory without start_directory")
        directory = self._stack.pop()
        start = self._write_block(directory)
        self._stack[-1].entries.append((DIRECTORY, directory.name, start))

    def add_file(self, name: bytes | str, size: int, mtime: int) -> None:
        self._stack[-1].entries.append((FILE, self._name(name), size, mtime))

    def add_symlink(self, name: bytes | str) -> None:
        self._add(SYMLINK, name)

    def add_hardlink(self, name: bytes | str) -> None:
        self._add(HARDLINK, name)

    def add_block_device(self, name: bytes | str) -> None:
        self._add(BLOCK_DEVICE, name)

    def add_char_device(self, name: bytes | str) -> None:
        self._add(CHAR_DEVICE, name)

    def add_fifo(self, name: bytes | str) -> None:
        self._add(FIFO, name)

    def add_socket(self, name: bytes | str) -> None:
        self._add(SOCKET, name)

    def _add(self, kind: bytes, name: bytes | str) -> None:
        self._stack[-1].entries.append((kind, self._name(name)))

    def _write_block(self, directory: _OpenDirectory) -> int:
        start = self._position
        table = bytearray(encode_varint(len(directory.entries)))
        for kind, name, *attrs in directory.entries:
            table += kind + encode_varint(len(name)) + name
            if kind == DIRECTORY:
                table += encode_varint(start - attrs[0])
            elif kind == FILE:
                table += encode_varint(attrs[0]) + encode_svarint(attrs[1])
        self._write(encode_varint(len(table)) + table)
        return start

    def finish(self) -> None:
        if len(self._stack) != 1:
            raise ValueError(f"{len(self._stack) - 1} catalog directories still open")
        root_start = self._write_block(self._stack.pop())
        self._write(struct.pack("<Q", root_start))


class CatalogReader:
    """Reads a pcat1 catalog from bytes or a source with ``size`` and ``read_at``."""

    def __init__(self, source: Source | bytes, name: str | None = None):
        if isinstance(source, (bytes, bytearray, memoryview)):
            source = BytesSource(bytes(source))
        self._source = source
        self.name = name or getattr(source, "name", None)
        if source.size < len(MAGIC) + 8:
            raise FormatError(f"catalog of {source.size} bytes is too short", 0, self.name)
        if source.read_at(0, len(MAGIC)) != MAGIC:
            raise FormatError("not a pcat1 catalog (wrong magic)", 0, self.name)
        (self.root_offset,) = struct.unpack("<Q", source.read_at(source.size - 8, 8))
        if not len(MAGIC) <= self.root_offset < source.size - 8:
            raise FormatError(f"catalog root offset {self.root_offset} out of range", source.size - 8, self.name)

    def read_block(self, offset: int) -> list[CatalogEntry]:
        """The entries of the directory block starting at ``offset``."""
        end_of_blocks = self._source.size - 8
        if not len(MAGIC) <= offset < end_of_blocks:
            raise FormatError("directory block offset out of range", offset, self.name)
        head = self._source.read_at(offset, min(10, end_of_blocks - offset))
        try:
            table_length, table_start = decode_varint(head, 0)
        except ValueError as error:
            raise FormatError(f"bad block length: {error}", offset, self.name) from None
        if offset + table_start + table_length > end_of_blocks:
            raise FormatError(f"directory block of {table_length} bytes runs past the end", offset, self.name)
        table = self._source.read_at(offset + table_start, table_length)
        try:
            return self._parse_table(table, offset)
        except ValueError as error:
            raise FormatError(f"bad directory block: {error}", offset, self.name) from None

    def _parse_table(self, table: bytes, offset: int) -> list[CatalogEntry]:
        count, pos = decode_varint(table, 0)
        entries = []
        for _ in range(count):
            if pos >= len(table):
                raise ValueError("fewer entries than announced")
            kind = table[pos : pos + 1]
            if kind not in _KINDS:
                raise ValueError(f"unknown entry type {kind!r}")
            name_length, pos = decode_varint(table, pos + 1)
            if not 0 < name_length <= MAX_NAME_LENGTH or pos + name_length > len(table):
                raise ValueError(f"bad name length {name_length}")
            name = table[pos : pos + name_length]
            pos += name_length
            if b"/" in name or b"\0" in name or name in (b".", b".."):
                raise ValueError(f"invalid entry name {name!r}")
            if kind == DIRECTORY:
                back, pos = decode_varint(table, pos)
                if back == 0 or back > offset:
                    raise ValueError(f"directory {name!r} has bad back offset {back}")
                entries.append(CatalogEntry(name, kind, block_offset=offset - back))
            elif kind == FILE:
                size, pos = decode_varint(table, pos)
                mtime, pos = decode_svarint(table, pos)
                entries.append(CatalogEntry(name, kind, size=size, mtime=mtime))
            else:
                entries.append(CatalogEntry(name, kind))
        if pos != len(table):
            raise ValueError(f"{len(table) - pos} bytes left over after the last entry")
        return entries

    def root(self) -> list[CatalogEntry]:
        return self.read_block(self.root_offset)

    def lookup(self, path: bytes | str) -> CatalogEntry | None:
        """The entry at ``path`` (components separated by ``/``); None for the catalog root."""
        entries = self.root()
        found = None
        for name in [part for part in os.fsencode(path).split(b"/") if part and part != b"."]:
            if found is not None:
                if found.kind != DIRECTORY:
                    raise NotADirectory(f"{found.name!r} is not a directory")
                entries = self.read_block(found.block_offset)
            found = next((entry for entry in entries if entry.name == name), None)
            if found is None:
                raise NotFoundError(f"no entry {os.fsencode(path)!r} in the catalog")
        return found

    def list_dir(self, path: bytes | str = b"") -> list[CatalogEntry]:
        directory = self.lookup(path)
        if directory is None:
            return self.root()
        if directory.kind != DIRECTORY:
            raise NotADirectory(f"{os.fsencode(path)!r} is not a directory")
        return self.read_block(directory.block_offset)

    def walk(self, path: bytes | str = b"") -> Iterator[tuple[bytes, CatalogEntry]]:
        """(path, entry) for everything below ``path``, depth first in catalog order."""
        prefix = b"/".join(part for part in os.fsencode(path).split(b"/") if part)
        yield from self._walk(prefix, self.list_dir(path))

    def _walk(self, parent: bytes, entries: list[CatalogEntry]):
        for entry in entries:
            entry_path = parent + b"/" + entry.name if parent else entry.name
            yield entry_path, entry
            if entry.kind == DIRECTORY:
                yield from self._walk(entry_path, self.read_block(entry.block_offset))

    def find(self, pattern: bytes | str) -> Iterator[tuple[bytes, CatalogEntry]]:
        """Entries whose path matches a shell glob (``*`` also crosses ``/``)."""
        pattern = os.fsencode(pattern).lstrip(b"/")
        for entry_path, entry in self.walk():
            if fnmatch.fnmatchcase(entry_path, pattern):
                yield entry_path, entry
