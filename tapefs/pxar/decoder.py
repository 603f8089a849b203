"""Sequential pxar decoding (v1 archives and v2 metadata + payload streams); the format is in docs/pxar.md.

``Decoder`` walks the archive front to back and yields one ``Entry`` per item in archive
order (depth first, directories before their children), checking every goodbye table on the
way.  The item-level helpers (``ItemReader``, ``read_entry``, ``read_child``) are shared with
the random-access ``Accessor``.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from . import format as fmt
from .entry import Acl, AclDefault, AclEntry, Entry, Kind, Metadata, kind_of_mode
from .errors import FormatError, NotFoundError, UnsafePathError
from .source import Source

log = logging.getLogger(__name__)

SEQUENTIAL_WINDOW = 1 << 20
CONTENT_BLOCK = 1 << 20


class ItemReader:
    """Reads items from a source through one small read-ahead window."""

    def __init__(
        self,
        source: Source,
        window: int = SEQUENTIAL_WINDOW,
        name: str | None = None,
        read_ahead_limit: int | None = None,
    ):
        self.source = source
        self.size = source.size
        self.name = name or getattr(source, "name", None)
        self._window = window
        self._read_ahead_limit = source.size if read_ahead_limit is None else read_ahead_limit
        self._buf = b""
        self._buf_start = 0

    def error(self, message: str, offset: int) -> FormatError:
        return FormatError(message, offset, self.name)

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``, or a FormatError naming the offset."""
        buf_offset = offset - self._buf_start
        if 0 <= buf_offset and buf_offset + length <= len(self._buf):
            return self._buf[buf_offset : buf_offset + length]
        if offset + length > self.size:
            raise self.error(f"archive truncated: {length} bytes needed, archive ends at {self.size}", offset)
        if length >= self._window:
            data = self.source.read_at(offset, length)
        else:
            fill = max(length, min(self._window, self._read_ahead_limit - offset))
            self._buf = self.source.read_at(offset, fill)
            self._buf_start = offset
            data = self._buf[:length]
        if len(data) != length:
            raise self.error(f"short read: {len(data)} of {length} bytes", offset)
        return data

    def header(self, offset: int, end: int | None = None) -> tuple[int, int]:
        """(htype, full_size) of the item at ``offset``, checked against ``end`` and the limits."""
        htype, full_size = fmt.unpack_header(self.read(offset, fmt.HEADER_SIZE))
        if htype not in fmt.HTYPE_NAMES:
            raise self.error(f"unknown item type {htype:#018x}", offset)
        if full_size < fmt.HEADER_SIZE:
            raise self.error(f"item {fmt.htype_name(htype)} has size {full_size} < 16", offset)
        limit = fmt.MAX_CONTENT_SIZE.get(htype)
        if limit is not None and full_size - fmt.HEADER_SIZE > limit:
            raise self.error(f"item {fmt.htype_name(htype)} content of {full_size - 16} bytes exceeds {limit}", offset)
        stop = self.size if end is None else end
        if offset + full_size > stop:
            raise self.error(f"item {fmt.htype_name(htype)} of {full_size} bytes runs past the end at {stop}", offset)
        return htype, full_size

    def content(self, offset: int, full_size: int) -> bytes:
        return self.read(offset + fmt.HEADER_SIZE, full_size - fmt.HEADER_SIZE)


def check_name(name: bytes, reader: ItemReader, offset: int) -> None:
    """Refuse names that are not a single path component (the FILENAME rule)."""
    if not name or name in (b".", b"..") or b"/" in name or b"\0" in name:
        raise UnsafePathError(
            f"refusing archive entry name {name!r}: not a single path component "
            f"({reader.name or 'archive'}, byte offset {offset})"
        )


def _c_string(data: bytes, what: str, reader: ItemReader, offset: int) -> bytes:
    if not data or data[-1] != 0:
        raise reader.error(f"{what} is not NUL-terminated", offset)
    return data[:-1]


def read_filename(reader: ItemReader, offset: int, end: int | None = None) -> tuple[bytes, int]:
    """(name, full_size) of the FILENAME item at ``offset``."""
    htype, full_size = reader.header(offset, end)
    if htype != fmt.FILENAME:
        raise reader.error(f"expected FILENAME, found {fmt.htype_name(htype)}", offset)
    name = _c_string(reader.content(offset, full_size), "file name", reader, offset)
    check_name(name, reader, offset)
    return name, full_size


@dataclass
class EntryBody:
    """An ENTRY and its attributes as decoded, plus where decoding stopped."""

    kind: Kind
    metadata: Metadata
    next_offset: int
    size: int = 0
    content_offset: int | None = None
    payload_ref_offset: int | None = None
    symlink_target: bytes | None = None
    device: tuple[int, int] | None = None


def _parse_stat(reader: ItemReader, htype: int, offset: int, full_size: int) -> Metadata:
    content = reader.content(offset, full_size)
    if htype == fmt.ENTRY:
        if len(content) != 40:
            raise reader.error(f"ENTRY content is {len(content)} bytes, expected 40", offset)
        mode, flags, uid, gid, secs, nanos, padding = fmt.unpack_stat(content)
        if padding:
            raise reader.error("ENTRY padding is not zero", offset)
        if nanos >= 1_000_000_000:
            raise reader.error(f"ENTRY mtime nanoseconds {nanos} out of range", offset)
        return Metadata(mode=mode, flags=flags, uid=uid, gid=gid, mtime_secs=secs, mtime_nanos=nanos)
    if len(content) != 32:
        raise reader.error(f"ENTRY_V1 content is {len(content)} bytes, expected 32", offset)
    stat = fmt.StatV1.parse(content)
    secs, nanos = divmod(stat.mtime_ns, 1_000_000_000)
    return Metadata(mode=stat.mode, flags=stat.flags, uid=stat.uid, gid=stat.gid, mtime_secs=secs, mtime_nanos=nanos)


_SINGLETON_ATTRIBUTES = (fmt.ACL_GROUP_OBJ, fmt.ACL_DEFAULT, fmt.FCAPS, fmt.QUOTA_PROJID)
_ACL_LISTS = {
    fmt.ACL_USER: "users",
    fmt.ACL_GROUP: "groups",
    fmt.ACL_DEFAULT_USER: "default_users",
    fmt.ACL_DEFAULT_GROUP: "default_groups",
}


def _expect_size(reader: ItemReader, htype: int, offset: int, full_size: int, size: int) -> None:
    if full_size - fmt.HEADER_SIZE != size:
        raise reader.error(f"{fmt.htype_name(htype)} content is {full_size - 16} bytes, expected {size}", offset)


def read_entry(reader: ItemReader, offset: int, end: int, version: int) -> EntryBody:
    """Decode the ENTRY at ``offset`` and its attributes, up to the item that ends it.

    Stops after PAYLOAD, PAYLOAD_REF, SYMLINK or DEVICE, or before a FILENAME/GOODBYE or
    ``end``; a directory's children are left to the caller.
    """
    htype, full_size = reader.header(offset, end)
    if htype not in (fmt.ENTRY, fmt.ENTRY_V1):
        raise reader.error(f"expected ENTRY, found {fmt.htype_name(htype)}", offset)
    metadata = _parse_stat(reader, htype, offset, full_size)
    kind = kind_of_mode(metadata.mode)
    if kind is None:
        raise reader.error(f"ENTRY mode {metadata.mode:#o} has no valid file type", offset)
    body = EntryBody(kind=kind, metadata=metadata, next_offset=offset + full_size)
    acl = {"users": [], "groups": [], "default_users": [], "default_groups": []}
    acl_singletons: dict[str, object] = {}
    seen: set[int] = set()
    pos = offset + full_size
    terminal = None
    while pos < end:
        htype, full_size = reader.header(pos, end)
        if htype in (fmt.FILENAME, fmt.GOODBYE):
            break
        if htype in _SINGLETON_ATTRIBUTES:
            if htype in seen:
                raise reader.error(f"duplicate {fmt.htype_name(htype)} item", pos)
            seen.add(htype)
        if htype == fmt.XATTR:
            content = reader.content(pos, full_size)
            name, sep, value = content.partition(b"\0")
            if not sep or not name:
                raise reader.error("XATTR item without a NUL-terminated name", pos)
            metadata.xattrs.append((name, value))
        elif htype in _ACL_LISTS:
            _expect_size(reader, htype, pos, full_size, 16)
            item = fmt.AclEntry.parse(reader.content(pos, full_size))
            acl[_ACL_LISTS[htype]].append(AclEntry(item.id, item.permissions))
        elif htype == fmt.ACL_GROUP_OBJ:
            _expect_size(reader, htype, pos, full_size, 8)
            acl_singletons["group_obj"] = fmt.U64.parse(reader.content(pos, full_size))
        elif htype == fmt.ACL_DEFAULT:
            _expect_size(reader, htype, pos, full_size, 32)
            item = fmt.AclDefault.parse(reader.content(pos, full_size))
            acl_singletons["default"] = AclDefault(item.user_obj, item.group_obj, item.other, item.mask)
        elif htype == fmt.FCAPS:
            metadata.fcaps = reader.content(pos, full_size)
        elif htype == fmt.QUOTA_PROJID:
            _expect_size(reader, htype, pos, full_size, 8)
            metadata.quota_project_id = fmt.U64.parse(reader.content(pos, full_size))
        elif htype == fmt.PAYLOAD:
            if version != 1:
                raise reader.error("PAYLOAD item inside a v2 metadata archive", pos)
            body.size = full_size - fmt.HEADER_SIZE
            body.content_offset = pos + fmt.HEADER_SIZE
            terminal = htype
        elif htype == fmt.PAYLOAD_REF:
            if version != 2:
                raise reader.error("PAYLOAD_REF item in a v1 archive", pos)
            _expect_size(reader, htype, pos, full_size, 16)
            ref = fmt.PayloadRef.parse(reader.content(pos, full_size))
            body.size = ref.size
            body.payload_ref_offset = ref.offset
            body.content_offset = ref.offset + fmt.HEADER_SIZE
            terminal = htype
        elif htype == fmt.SYMLINK:
            body.symlink_target = _c_string(reader.content(pos, full_size), "symlink target", reader, pos)
            terminal = htype
        elif htype == fmt.DEVICE:
            _expect_size(reader, htype, pos, full_size, 16)
            device = fmt.Device.parse(reader.content(pos, full_size))
            body.device = (device.major, device.minor)
            terminal = htype
        else:
            raise reader.error(f"unexpected {fmt.htype_name(htype)} item in an entry", pos)
        pos += full_size
        if terminal is not None:
            break
    body.next_offset = pos
    metadata.acl = Acl(
        users=tuple(acl["users"]),
        groups=tuple(acl["groups"]),
        default_users=tuple(acl["default_users"]),
        default_groups=tuple(acl["default_groups"]),
        **acl_singletons,
    )
    expected_terminal = {
        Kind.FILE: (fmt.PAYLOAD, fmt.PAYLOAD_REF),
        Kind.SYMLINK: (fmt.SYMLINK,),
        Kind.CHAR_DEVICE: (fmt.DEVICE,),
        Kind.BLOCK_DEVICE: (fmt.DEVICE,),
    }.get(kind, (None,))
    if terminal not in expected_terminal:
        found = fmt.htype_name(terminal) if terminal is not None else "no content item"
        raise reader.error(f"{kind.value} entry (mode {metadata.mode:#o}) has {found}", offset)
    return body


def read_hardlink(reader: ItemReader, offset: int, full_size: int) -> tuple[int, bytes]:
    """(back offset, target path) of the HARDLINK item at ``offset``."""
    content = reader.content(offset, full_size)
    if len(content) < 9:
        raise reader.error("HARDLINK item too short", offset)
    back = fmt.U64.parse(content[:8])
    target = _c_string(content[8:], "hardlink target", reader, offset)
    return back, target


def read_child(
    reader: ItemReader, filename_offset: int, end: int, version: int, parent_path: bytes
) -> tuple[Entry, EntryBody | None]:
    """Decode a child from its FILENAME item: the entry and, unless it is a hardlink, its body."""
    name, name_size = read_filename(reader, filename_offset, end)
    path = parent_path + b"/" + name if parent_path else name
    entry_offset = filename_offset + name_size
    htype, full_size = reader.header(entry_offset, end)
    if htype == fmt.HARDLINK:
        back, target = read_hardlink(reader, entry_offset, full_size)
        if back == 0 or back > filename_offset:
            raise reader.error(f"HARDLINK offset {back} points outside the archive", entry_offset)
        entry = Entry(
            path=path,
            kind=Kind.HARDLINK,
            metadata=None,
            hardlink_target=target,
            hardlink_offset=back,
            filename_offset=filename_offset,
            entry_offset=entry_offset,
            entry_end=entry_offset + full_size,
        )
        return entry, None
    body = read_entry(reader, entry_offset, end, version)
    return entry_from_body(path, body, filename_offset, entry_offset), body


def resolve_hardlink(reader: ItemReader, version: int, link: Entry) -> Entry:
    """The regular file a HARDLINK entry refers to, found through its stored back offset."""
    target_offset = link.filename_offset - link.hardlink_offset
    target, _ = read_child(reader, target_offset, reader.size, version, b"")
    if target.kind is not Kind.FILE:
        raise reader.error(
            f"hardlink {link.path!r} points at a {target.kind.value}, not a regular file", link.entry_offset
        )
    target.path = link.hardlink_target.lstrip(b"/")
    return target


def entry_from_body(path: bytes, body: EntryBody, filename_offset: int | None, entry_offset: int) -> Entry:
    return Entry(
        path=path,
        kind=body.kind,
        metadata=body.metadata,
        size=body.size,
        symlink_target=body.symlink_target,
        device=body.device,
        filename_offset=filename_offset,
        entry_offset=entry_offset,
        entry_end=body.next_offset,
        content_offset=body.content_offset,
        payload_ref_offset=body.payload_ref_offset,
    )


def read_archive_start(reader: ItemReader) -> tuple[int, bytes | None, int]:
    """(format version, prelude, offset of the root ENTRY)."""
    if reader.size == 0:
        raise reader.error("empty archive", 0)
    htype, full_size = reader.header(0)
    if htype != fmt.FORMAT_VERSION:
        return 1, None, 0
    if full_size != 24:
        raise reader.error(f"FORMAT_VERSION item has size {full_size}, expected 24", 0)
    version = fmt.U64.parse(reader.content(0, full_size))
    if version != fmt.FORMAT_VERSION_2:
        raise reader.error(f"unsupported pxar format version {version}", 0)
    htype, full_size = reader.header(24)
    if htype == fmt.PRELUDE:
        return version, reader.content(24, full_size), 24 + full_size
    return version, None, 24


def check_payload_header(payload: ItemReader, entry: Entry) -> None:
    """The PAYLOAD_REF of a v2 file must point at a PAYLOAD header of the same size."""
    htype, full_size = fmt.unpack_header(payload.read(entry.payload_ref_offset, fmt.HEADER_SIZE))
    if htype != fmt.PAYLOAD or full_size - fmt.HEADER_SIZE != entry.size:
        raise payload.error(
            f"PAYLOAD_REF of {entry.path!r} points at {fmt.htype_name(htype)} of "
            f"{full_size - 16} content bytes, expected PAYLOAD of {entry.size}",
            entry.payload_ref_offset,
        )


@dataclass
class _OpenDirectory:
    path: bytes
    filename_offset: int | None
    entry_start: int
    # (name hash, FILENAME offset, exact size, file size) per child, for the goodbye check
    children: list[tuple[int, int, int, int]] = field(default_factory=list)


def walk_directory(reader: ItemReader, version: int, directory: Entry, children_offset: int) -> Iterator[Entry]:
    """Yield everything below ``directory`` (whose children start at ``children_offset``),
    checking each goodbye table; returns the offset just after the directory."""
    stack = [_OpenDirectory(directory.path, directory.filename_offset, directory.entry_offset)]
    pos = children_offset
    while stack:
        current = stack[-1]
        htype, full_size = reader.header(pos)
        if htype == fmt.FILENAME:
            entry, child_body = read_child(reader, pos, reader.size, version, current.path)
            if entry.kind is Kind.DIRECTORY:
                stack.append(_OpenDirectory(entry.path, pos, entry.entry_offset))
                pos = child_body.next_offset
            else:
                current.children.append((fmt.name_hash(entry.name), pos, entry.entry_end - pos, entry.size))
                pos = entry.entry_end
            yield entry
        elif htype == fmt.GOODBYE:
            _check_goodbye(reader, current, pos, full_size)
            pos += full_size
            stack.pop()
            if stack:
                name = current.path.rsplit(b"/", 1)[-1]
                stack[-1].children.append(
                    (fmt.name_hash(name), current.filename_offset, pos - current.filename_offset, 0)
                )
        else:
            raise reader.error(f"expected FILENAME or GOODBYE, found {fmt.htype_name(htype)}", pos)
    return pos


def _check_goodbye(reader: ItemReader, directory: _OpenDirectory, offset: int, full_size: int) -> None:
    table_size = full_size - fmt.HEADER_SIZE
    if table_size % fmt.GOODBYE_ITEM_SIZE or table_size == 0:
        raise reader.error(f"GOODBYE table of {table_size} bytes is not a whole number of items", offset)
    items = list(fmt.iter_goodbye_items(reader.content(offset, full_size)))
    tail_hash, tail_offset, tail_size = items.pop()
    if tail_hash != fmt.GOODBYE_TAIL_MARKER:
        raise reader.error("GOODBYE table does not end with the tail marker", offset)
    if tail_offset != offset - directory.entry_start or tail_size != full_size:
        raise reader.error(
            f"GOODBYE tail (offset {tail_offset}, size {tail_size}) does not match the "
            f"directory at {directory.entry_start}",
            offset,
        )
    expected = {offset - start: (hash_, size, file_size) for hash_, start, size, file_size in directory.children}
    if len(items) != len(expected):
        raise reader.error(f"GOODBYE table lists {len(items)} children, the directory has {len(expected)}", offset)
    for index, (hash_, child_offset, size) in enumerate(items):
        child = expected.get(child_offset)
        if child is None or child[0] != hash_ or size not in (child[1], child[1] + child[2]):
            raise reader.error(
                f"GOODBYE item {index} does not match any child (hash {hash_:#018x}, offset {child_offset})", offset
            )
        for branch in (2 * index + 1, 2 * index + 2):
            if branch < len(items):
                lower, upper = (items[branch][0], hash_) if branch % 2 else (hash_, items[branch][0])
                if lower > upper:
                    raise reader.error(f"GOODBYE table is not in search-tree order at item {index}", offset)


class Decoder:
    """Sequential reader of a whole archive.

    For a v2 archive pass the metadata stream as ``source`` and the payload stream as
    ``payload_source`` (only needed to read file contents).
    """

    def __init__(self, source: Source, payload_source: Source | None = None):
        self.reader = ItemReader(source)
        self.payload = ItemReader(payload_source, window=fmt.HEADER_SIZE) if payload_source is not None else None
        self.version, self.prelude, self.root_offset = read_archive_start(self.reader)

    def __iter__(self) -> Iterator[Entry]:
        reader = self.reader
        body = read_entry(reader, self.root_offset, reader.size, self.version)
        if body.kind is not Kind.DIRECTORY:
            raise reader.error("the archive root is not a directory", self.root_offset)
        root = entry_from_body(b"", body, None, 0)
        root.entry_end = reader.size
        yield root
        end = yield from walk_directory(reader, self.version, root, body.next_offset)
        if end != reader.size:
            raise reader.error(f"{reader.size - end} unexpected bytes after the root directory", end)

    def iter_subtree(self, path: bytes) -> Iterator[Entry]:
        """The entry at ``path`` and everything below it (this decoder reads the whole archive
        to get there; the ``Accessor`` jumps)."""
        if not path:
            yield from self
            return
        prefix = path + b"/"
        found = False
        for entry in self:
            if entry.path == path:
                found = True
                yield entry
            elif entry.path.startswith(prefix):
                yield entry
            elif found:
                return
        if not found:
            raise NotFoundError(f"no entry {path!r} in the archive")

    def resolve_hardlink(self, link: Entry) -> Entry:
        return resolve_hardlink(self.reader, self.version, link)

    def _file(self, entry: Entry) -> Entry:
        return self.resolve_hardlink(entry) if entry.kind is Kind.HARDLINK else entry

    def read_content(self, entry: Entry, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes of a regular file (or a hardlink's target), clipped to its size."""
        return read_content(self.reader, self.payload, self._file(entry), offset, length)

    def iter_content(self, entry: Entry, block: int = CONTENT_BLOCK) -> Iterator[bytes]:
        return iter_content(self.reader, self.payload, self._file(entry), block)


def _content_reader(reader: ItemReader, payload: ItemReader | None, entry: Entry) -> ItemReader:
    if entry.kind is not Kind.FILE:
        raise FormatError(f"{entry.path!r} is a {entry.kind.value}, not a regular file")
    if not entry.in_payload_stream:
        return reader
    if payload is None:
        raise FormatError("this v2 archive needs its payload stream to read file contents")
    check_payload_header(payload, entry)
    return payload


def read_content(
    reader: ItemReader, payload: ItemReader | None, entry: Entry, offset: int = 0, length: int | None = None
) -> bytes:
    """Bytes ``[offset, offset+length)`` of a regular file, clipped to its size."""
    stream = _content_reader(reader, payload, entry)
    offset = max(0, min(offset, entry.size))
    length = entry.size - offset if length is None else max(0, min(length, entry.size - offset))
    if length == 0:
        return b""
    return stream.read(entry.content_offset + offset, length)


def iter_content(
    reader: ItemReader, payload: ItemReader | None, entry: Entry, block: int = CONTENT_BLOCK
) -> Iterator[bytes]:
    stream = _content_reader(reader, payload, entry)
    start = entry.content_offset
    end = start + entry.size
    if end > stream.size:
        raise stream.error(f"content of {entry.path!r} runs past the end of the archive ({end} > {stream.size})", start)
    if entry.size <= block:
        # small contents usually sit in the read-ahead window already
        if entry.size:
            yield stream.read(start, entry.size)
        return
    pos = start
    while pos < end:
        data = stream.source.read_at(pos, min(block, end - pos))
        if not data:
            raise stream.error("archive truncated inside file contents", pos)
        yield data
        pos += len(data)
