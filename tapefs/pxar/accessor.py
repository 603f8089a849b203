"""Random access to a pxar archive through its goodbye tables (docs/pxar.md, "The pxar format").

A lookup reads, per path component, the directory's goodbye table and the FILENAME and ENTRY
items of the matching child; nothing else.  Over a didx-backed source that is one or two chunk
loads per component.  File contents are read straight from the archive (v1) or, through the
PAYLOAD_REF, from the payload stream (v2).
"""

import logging
import os
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from . import format as fmt
from .decoder import (
    ItemReader,
    entry_from_body,
    iter_content,
    read_archive_start,
    read_child,
    read_content,
    read_entry,
    read_filename,
    resolve_hardlink,
    walk_directory,
)
from .entry import Entry, Kind
from .errors import NotADirectory, NotFoundError
from .source import Source

log = logging.getLogger(__name__)

# Read-ahead for metadata items: big enough for a FILENAME, ENTRY and a few attributes in one
# read, small enough that a lookup touches little more than the items it decodes.
METADATA_WINDOW = 512
GOODBYE_CACHE_SIZE = 256


@dataclass(frozen=True)
class GoodbyeTable:
    """A directory's goodbye table as found at the end of its range."""

    goodbye_offset: int
    entry_offset: int
    items: tuple[tuple[int, int, int], ...]  # (hash, offset back from goodbye_offset, size)


def split_path(path: bytes | str) -> list[bytes]:
    raw = os.fsencode(path)
    return [part for part in raw.split(b"/") if part and part != b"."]


class Accessor:
    """Look up, list, stat and read entries of one archive without decoding all of it.

    ``source`` is the archive (v1) or the metadata stream (v2); ``payload_source`` is the v2
    payload stream, needed only to read file contents.
    """

    def __init__(self, source: Source, payload_source: Source | None = None):
        self.reader = ItemReader(source, window=METADATA_WINDOW)
        self.payload = ItemReader(payload_source, window=fmt.HEADER_SIZE) if payload_source is not None else None
        self.version, self.prelude, self._root_offset = read_archive_start(self.reader)
        self._tables: OrderedDict[int, GoodbyeTable] = OrderedDict()

    def root(self) -> Entry:
        body = read_entry(self.reader, self._root_offset, self.reader.size, self.version)
        if body.kind is not Kind.DIRECTORY:
            raise self.reader.error("the archive root is not a directory", self._root_offset)
        root = entry_from_body(b"", body, None, 0)
        root.entry_end = self.reader.size
        return root

    def goodbye_table(self, directory_end: int) -> GoodbyeTable:
        """The goodbye table of the directory whose range ends at ``directory_end``."""
        table = self._tables.get(directory_end)
        if table is not None:
            self._tables.move_to_end(directory_end)
            return table
        reader = self.reader
        tail_offset = directory_end - fmt.GOODBYE_ITEM_SIZE
        if tail_offset < fmt.HEADER_SIZE:
            raise reader.error("directory too short for a goodbye table", max(tail_offset, 0))
        tail_hash, back, table_size = next(fmt.iter_goodbye_items(reader.read(tail_offset, fmt.GOODBYE_ITEM_SIZE)))
        if tail_hash != fmt.GOODBYE_TAIL_MARKER:
            raise reader.error("no goodbye tail marker at the end of the directory", tail_offset)
        goodbye_offset = directory_end - table_size
        if (
            table_size < fmt.HEADER_SIZE + fmt.GOODBYE_ITEM_SIZE
            or goodbye_offset < 0
            or (table_size - fmt.HEADER_SIZE) % fmt.GOODBYE_ITEM_SIZE
            or back > goodbye_offset
        ):
            raise reader.error(f"goodbye tail with impossible size {table_size} or offset {back}", tail_offset)
        # header and items in one read; the tail is known already
        table_bytes = reader.read(goodbye_offset, table_size - fmt.GOODBYE_ITEM_SIZE)
        htype, full_size = fmt.unpack_header(table_bytes)
        if htype != fmt.GOODBYE or full_size != table_size:
            raise reader.error(
                f"goodbye tail points at {fmt.htype_name(htype)} of {full_size} "
                f"bytes, expected GOODBYE of {table_size}",
                goodbye_offset,
            )
        items = tuple(fmt.iter_goodbye_items(table_bytes[fmt.HEADER_SIZE :]))
        for index, (_, child_back, _) in enumerate(items):
            if child_back == 0 or child_back > goodbye_offset:
                raise reader.error(f"goodbye item {index} points outside the archive", goodbye_offset)
        table = GoodbyeTable(goodbye_offset, goodbye_offset - back, items)
        self._tables[directory_end] = table
        if len(self._tables) > GOODBYE_CACHE_SIZE:
            self._tables.popitem(last=False)
        return table

    def _table_of(self, directory: Entry) -> GoodbyeTable:
        table = self.goodbye_table(directory.entry_end)
        if table.entry_offset != directory.entry_offset:
            raise self.reader.error(
                f"goodbye table of {directory.path!r} belongs to the entry at "
                f"{table.entry_offset}, not {directory.entry_offset}",
                table.goodbye_offset,
            )
        return table

    def _child(self, directory: Entry, table: GoodbyeTable, item: tuple[int, int, int]) -> Entry:
        _, back, size = item
        filename_offset = table.goodbye_offset - back
        end = min(filename_offset + size, table.goodbye_offset)
        entry, _ = read_child(self.reader, filename_offset, end, self.version, directory.path)
        # The goodbye size is what locates a subdirectory's table; v2 file sizes in it include
        # the payload (see the goodbye table in docs/pxar.md) and are reported as stored.
        entry.entry_end = filename_offset + size
        return entry

    def child(self, directory: Entry, name: bytes) -> Entry | None:
        """The entry called ``name`` in ``directory``, or None; reads only its hash's items."""
        table = self._table_of(directory)
        items = table.items
        wanted = fmt.name_hash(name)
        pending = [0]
        while pending:
            index = pending.pop()
            while index < len(items):
                hash_ = items[index][0]
                if wanted < hash_:
                    index = 2 * index + 1
                elif wanted > hash_:
                    index = 2 * index + 2
                else:
                    filename_offset = table.goodbye_offset - items[index][1]
                    found, _ = read_filename(self.reader, filename_offset, table.goodbye_offset)
                    if found == name:
                        return self._child(directory, table, items[index])
                    # a hash collision: equal hashes may sit in either subtree
                    pending.append(2 * index + 2)
                    index = 2 * index + 1
        return None

    def lookup(self, path: bytes | str, follow_hardlinks: bool = False) -> Entry:
        """The entry at ``path`` (relative to the root; ``""`` or ``"/"`` is the root)."""
        entry = self.root()
        for name in split_path(path):
            if entry.kind is not Kind.DIRECTORY:
                raise NotADirectory(f"{entry.path!r} is a {entry.kind.value}, not a directory")
            child = self.child(entry, name)
            if child is None:
                raise NotFoundError(f"no entry {os.fsencode(path)!r} in the archive")
            entry = child
        if follow_hardlinks and entry.kind is Kind.HARDLINK:
            return self.resolve_hardlink(entry)
        return entry

    stat = lookup

    def iter_dir(self, directory: Entry | bytes | str) -> Iterator[Entry]:
        """The children of a directory in goodbye-table (hash) order."""
        if not isinstance(directory, Entry):
            directory = self.lookup(directory)
        if directory.kind is not Kind.DIRECTORY:
            raise NotADirectory(f"{directory.path!r} is a {directory.kind.value}, not a directory")
        table = self._table_of(directory)
        for item in table.items:
            yield self._child(directory, table, item)

    def list_dir(self, directory: Entry | bytes | str) -> list[Entry]:
        """The children of a directory sorted by name bytes."""
        return sorted(self.iter_dir(directory), key=lambda entry: entry.name)

    def iter_subtree(self, path: bytes | str) -> Iterator[Entry]:
        """The entry at ``path`` and, for a directory, everything below it in archive order.

        Jumps to the directory through the goodbye tables, then decodes only its range.
        """
        entry = self.lookup(path)
        yield entry
        if entry.kind is not Kind.DIRECTORY:
            return
        reader = ItemReader(
            self.reader.source, name=self.reader.name, read_ahead_limit=min(entry.entry_end, self.reader.size)
        )
        if entry.filename_offset is None:
            body_end = read_entry(reader, self._root_offset, reader.size, self.version)
        else:
            body_end = read_entry(reader, entry.entry_offset, entry.entry_end, self.version)
        end = yield from walk_directory(reader, self.version, entry, body_end.next_offset)
        if end != entry.entry_end:
            raise reader.error(
                f"directory {entry.path!r} ends at {end}, its parent's goodbye table says {entry.entry_end}", end
            )

    def resolve_hardlink(self, link: Entry) -> Entry:
        """The regular file a HARDLINK entry refers to; other entries are returned as they are."""
        if link.kind is not Kind.HARDLINK:
            return link
        return resolve_hardlink(self.reader, self.version, link)

    def _file(self, entry: Entry | bytes | str) -> Entry:
        if not isinstance(entry, Entry):
            entry = self.lookup(entry)
        return self.resolve_hardlink(entry)

    def read(self, entry: Entry | bytes | str, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes ``[offset, offset+length)`` of a regular file (or hardlink), clipped to its size."""
        return read_content(self.reader, self.payload, self._file(entry), offset, length)

    def iter_content(self, entry: Entry | bytes | str, block: int = 1 << 20) -> Iterator[bytes]:
        return iter_content(self.reader, self.payload, self._file(entry), block)
