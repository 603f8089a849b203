"""pxar encoding, byte-compatible with proxmox-backup-client and the pxar crate (docs/pxar.md).

``Encoder`` writes entries as it is told (an entry-level API for in-memory trees and tests);
``encode_entries`` re-encodes decoded entries; ``encode_tree`` walks a local directory the way
proxmox-backup-client does and can feed a ``CatalogWriter`` in the same pass.
"""

import logging
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import format as fmt
from .catalog import CatalogWriter
from .entry import Entry, Kind, Metadata
from .fsmeta import read_metadata

log = logging.getLogger(__name__)

FLUSH_THRESHOLD = 1 << 20
# File contents at least this big bypass the item buffer instead of being copied into it.
DIRECT_WRITE_SIZE = 1 << 16
READ_BLOCK = 1 << 20


@dataclass
class _OpenDirectory:
    name: bytes
    entry_offset: int
    filename_offset: int | None
    # (name hash, FILENAME offset, size) of each child, for the goodbye table
    children: list[tuple[int, int, int]] = field(default_factory=list)


class _OutputStream:
    """Counts the bytes written to ``out`` and batches small writes into large ones."""

    def __init__(self, out):
        self._out = out
        self._buffer = bytearray()
        self.position = 0

    def write(self, data) -> None:
        if len(data) >= DIRECT_WRITE_SIZE:
            self.flush()
            self._out.write(data)
        else:
            self._buffer += data
            if len(self._buffer) >= FLUSH_THRESHOLD:
                self.flush()
        self.position += len(data)

    def flush(self) -> None:
        if self._buffer:
            self._out.write(bytes(self._buffer))
            self._buffer.clear()


def _c_string(data: bytes) -> bytes:
    if b"\0" in data:
        raise ValueError(f"{data!r} contains a NUL byte")
    return data + b"\0"


class Encoder:
    """Writes one archive to ``out`` (anything with ``write(bytes)``).

    The root directory is opened by the constructor; add its children in the order they should
    appear (byte-sorted names for output identical to proxmox-backup-client), open and close
    subdirectories with ``begin_directory``/``end_directory``, and call ``finish`` at the end.
    If ``catalog`` is given, the same walk is recorded there (names, kinds, sizes, mtimes).

    With ``payload_out`` the archive is a v2 split archive: ``out`` receives the metadata stream
    (``.mpxar``, with ``prelude`` if given) and ``payload_out`` the file contents (``.ppxar``).
    ``payload_boundary`` is then called with the payload-stream offset of each file's PAYLOAD
    header, the points PBS's payload chunker prefers to cut at (docs/datastore-format.md, "Chunking").
    """

    def __init__(
        self,
        out,
        root: Metadata,
        catalog: CatalogWriter | None = None,
        payload_out=None,
        prelude: bytes | None = None,
        payload_boundary: Callable[[int], None] | None = None,
    ):
        if stat.S_IFMT(root.mode) != fmt.S_IFDIR:
            raise ValueError("the archive root must be a directory")
        if prelude is not None and payload_out is None:
            raise ValueError("a prelude needs a v2 archive (payload_out)")
        self._meta = _OutputStream(out)
        self._payload = _OutputStream(payload_out) if payload_out is not None else None
        self._payload_out = payload_out
        self._payload_boundary = payload_boundary
        self._catalog = catalog
        if self._payload is not None:
            self._item(fmt.FORMAT_VERSION, fmt.U64.build(fmt.FORMAT_VERSION_2))
            if prelude is not None:
                self._item(fmt.PRELUDE, prelude)
            self._payload.write(fmt.pack_header(fmt.PAYLOAD_START_MARKER, 0))
        #: file content bytes read from file objects (not from bytes given in memory)
        self.bytes_read = 0
        self._write_entry(root)
        # the root's goodbye tail points at offset 0, before any FORMAT_VERSION
        self._stack = [_OpenDirectory(b"", 0, None)]

    @property
    def position(self) -> int:
        """Bytes written so far to the (metadata) archive: the offset of the next item."""
        return self._meta.position

    @property
    def payload_position(self) -> int | None:
        """Bytes written so far to the payload stream of a v2 archive."""
        return self._payload.position if self._payload is not None else None

    def _write(self, data: bytes) -> None:
        self._meta.write(data)

    def _item(self, htype: int, content: bytes) -> None:
        self._write(fmt.pack_header(htype, len(content)) + content)

    def _write_entry(self, metadata: Metadata) -> None:
        if not 0 <= metadata.mtime_nanos < 1_000_000_000:
            raise ValueError(f"mtime nanoseconds {metadata.mtime_nanos} out of range")
        self._item(
            fmt.ENTRY,
            fmt.pack_stat(
                metadata.mode, metadata.flags, metadata.uid, metadata.gid, metadata.mtime_secs, metadata.mtime_nanos
            ),
        )
        for name, value in metadata.xattrs:
            self._item(fmt.XATTR, _c_string(name) + value)
        acl = metadata.acl
        for htype, entries in ((fmt.ACL_USER, acl.users), (fmt.ACL_GROUP, acl.groups)):
            for entry in entries:
                self._item(htype, fmt.AclEntry.build(dict(id=entry.id, permissions=entry.permissions)))
        if acl.group_obj is not None:
            self._item(fmt.ACL_GROUP_OBJ, fmt.U64.build(acl.group_obj))
        if acl.default is not None:
            default = acl.default
            self._item(
                fmt.ACL_DEFAULT,
                fmt.AclDefault.build(
                    dict(user_obj=default.user_obj, group_obj=default.group_obj, other=default.other, mask=default.mask)
                ),
            )
        for htype, entries in ((fmt.ACL_DEFAULT_USER, acl.default_users), (fmt.ACL_DEFAULT_GROUP, acl.default_groups)):
            for entry in entries:
                self._item(htype, fmt.AclEntry.build(dict(id=entry.id, permissions=entry.permissions)))
        if metadata.fcaps is not None:
            self._item(fmt.FCAPS, metadata.fcaps)
        if metadata.quota_project_id is not None:
            self._item(fmt.QUOTA_PROJID, fmt.U64.build(metadata.quota_project_id))

    def _begin_child(self, name: bytes | str) -> tuple[bytes, int]:
        name = os.fsencode(name)
        if not name or name in (b".", b"..") or b"/" in name or b"\0" in name:
            raise ValueError(f"invalid file name {name!r}")
        if len(self._stack) == 0:
            raise ValueError("the archive is already finished")
        start = self.position
        self._item(fmt.FILENAME, name + b"\0")
        return name, start

    def _end_child(self, name: bytes, filename_offset: int, payload_size: int = 0) -> None:
        # v2 file sizes in the goodbye table include the payload, as the pxar crate writes them
        self._stack[-1].children.append(
            (fmt.name_hash(name), filename_offset, self.position - filename_offset + payload_size)
        )

    def _check_kind(self, metadata: Metadata, *kinds: int) -> None:
        if stat.S_IFMT(metadata.mode) not in kinds:
            raise ValueError(f"mode {metadata.mode:#o} does not match the entry kind")

    def add_file(self, name: bytes | str, metadata: Metadata, size: int, content) -> int:
        """Add a regular file of ``size`` bytes; ``content`` is bytes or a binary file object.

        A file object that yields fewer bytes is zero-padded and one that yields more is cut,
        as proxmox-backup-client does for files that change while they are read.  Returns the
        FILENAME offset, which a later ``add_hardlink`` to this file needs.
        """
        self._check_kind(metadata, fmt.S_IFREG)
        if isinstance(content, (bytes, bytearray, memoryview)) and len(content) != size:
            raise ValueError(f"content is {len(content)} bytes, size says {size}")
        name, start = self._begin_child(name)
        self._write_entry(metadata)
        stream = self._payload if self._payload is not None else self._meta
        payload_offset = stream.position
        if self._payload is not None and self._payload_boundary is not None:
            self._payload_boundary(payload_offset)
        stream.write(fmt.pack_header(fmt.PAYLOAD, size))
        if isinstance(content, (bytes, bytearray, memoryview)):
            stream.write(content)
        else:
            self._copy_content(stream, content, size, name)
        if self._payload is not None:
            self._item(fmt.PAYLOAD_REF, fmt.PayloadRef.build(dict(offset=payload_offset, size=size)))
            self._end_child(name, start, size)
        else:
            self._end_child(name, start)
        if self._catalog is not None:
            self._catalog.add_file(name, size, metadata.mtime_secs)
        return start

    def _copy_content(self, stream: _OutputStream, reader, size: int, name: bytes) -> None:
        remaining = size
        while remaining:
            data = reader.read(min(READ_BLOCK, remaining))
            self.bytes_read += len(data)
            if not data:
                log.warning("%r shrank while being archived; padding %d bytes with zeros", name, remaining)
                data = bytes(min(READ_BLOCK, remaining))
            stream.write(data)
            remaining -= len(data)
        if reader.read(1):
            log.warning("%r grew while being archived; stored the first %d bytes", name, size)

    def add_payload_ref(self, name: bytes | str, metadata: Metadata, size: int, payload_offset: int) -> int:
        """Add a regular file of a v2 archive whose PAYLOAD item is, or will be, at
        ``payload_offset`` of the payload stream (put there by ``append_payload_chunks``);
        nothing is read.

        As the pxar crate does for such files, the goodbye size counts the metadata bytes only.
        Returns the FILENAME offset, like ``add_file``.
        """
        if self._payload is None:
            raise ValueError("payload references need a v2 archive (payload_out)")
        self._check_kind(metadata, fmt.S_IFREG)
        if payload_offset < 0:
            raise ValueError(f"negative payload offset {payload_offset}")
        name, start = self._begin_child(name)
        self._write_entry(metadata)
        self._item(fmt.PAYLOAD_REF, fmt.PayloadRef.build(dict(offset=payload_offset, size=size)))
        self._end_child(name, start)
        return start

    def append_payload_chunks(self, chunks: list, size: int) -> None:
        """Append already stored chunks of ``size`` bytes in all to the payload stream.

        ``payload_out`` must offer ``append_known_chunks(chunks)``; the bytes are not seen
        here, so the payload stream position just moves on.
        """
        if self._payload is None:
            raise ValueError("appending payload chunks needs a v2 archive (payload_out)")
        self._payload.flush()
        self._payload_out.append_known_chunks(chunks)
        self._payload.position += size

    def add_symlink(self, name: bytes | str, metadata: Metadata, target: bytes | str) -> None:
        self._check_kind(metadata, fmt.S_IFLNK)
        name, start = self._begin_child(name)
        self._write_entry(metadata)
        self._item(fmt.SYMLINK, _c_string(os.fsencode(target)))
        self._end_child(name, start)
        if self._catalog is not None:
            self._catalog.add_symlink(name)

    def add_device(self, name: bytes | str, metadata: Metadata, major: int, minor: int) -> None:
        self._check_kind(metadata, fmt.S_IFCHR, fmt.S_IFBLK)
        name, start = self._begin_child(name)
        self._write_entry(metadata)
        self._item(fmt.DEVICE, fmt.Device.build(dict(major=major, minor=minor)))
        self._end_child(name, start)
        if self._catalog is not None:
            if stat.S_IFMT(metadata.mode) == fmt.S_IFCHR:
                self._catalog.add_char_device(name)
            else:
                self._catalog.add_block_device(name)

    def add_special(self, name: bytes | str, metadata: Metadata) -> None:
        """A fifo or socket: ENTRY and attributes only."""
        self._check_kind(metadata, fmt.S_IFIFO, fmt.S_IFSOCK)
        name, start = self._begin_child(name)
        self._write_entry(metadata)
        self._end_child(name, start)
        if self._catalog is not None:
            if stat.S_IFMT(metadata.mode) == fmt.S_IFIFO:
                self._catalog.add_fifo(name)
            else:
                self._catalog.add_socket(name)

    def add_hardlink(self, name: bytes | str, target_path: bytes | str, target_filename_offset: int) -> None:
        """Another name for a file added earlier: its path from the root and FILENAME offset."""
        name, start = self._begin_child(name)
        if not 0 <= target_filename_offset < start:
            raise ValueError("a hardlink target must precede the link")
        self._item(fmt.HARDLINK, fmt.U64.build(start - target_filename_offset) + _c_string(os.fsencode(target_path)))
        self._end_child(name, start)
        if self._catalog is not None:
            self._catalog.add_hardlink(name)

    def begin_directory(self, name: bytes | str, metadata: Metadata) -> None:
        self._check_kind(metadata, fmt.S_IFDIR)
        name, start = self._begin_child(name)
        entry_offset = self.position
        self._write_entry(metadata)
        self._stack.append(_OpenDirectory(name, entry_offset, start))
        if self._catalog is not None:
            self._catalog.start_directory(name)

    def _write_goodbye(self, directory: _OpenDirectory) -> None:
        goodbye_offset = self.position
        children = sorted(directory.children, key=lambda child: child[0])
        order = fmt.goodbye_permutation(len(children))
        table_size = fmt.HEADER_SIZE + fmt.GOODBYE_ITEM_SIZE * (len(children) + 1)
        table = bytearray(fmt.pack_header(fmt.GOODBYE, table_size - fmt.HEADER_SIZE))
        for index in order:
            hash_, filename_offset, size = children[index]
            table += fmt.pack_goodbye_item(hash_, goodbye_offset - filename_offset, size)
        table += fmt.pack_goodbye_item(fmt.GOODBYE_TAIL_MARKER, goodbye_offset - directory.entry_offset, table_size)
        self._write(bytes(table))

    def end_directory(self) -> None:
        if len(self._stack) < 2:
            raise ValueError("end_directory without begin_directory")
        directory = self._stack.pop()
        self._write_goodbye(directory)
        self._end_child(directory.name, directory.filename_offset)
        if self._catalog is not None:
            self._catalog.end_directory()

    def finish(self) -> None:
        """Close the root directory and flush; the archive is complete afterwards."""
        if len(self._stack) != 1:
            raise ValueError(f"{len(self._stack) - 1} directories are still open")
        self._write_goodbye(self._stack.pop())
        self._meta.flush()
        if self._payload is not None:
            self._payload.write(fmt.pack_header(fmt.PAYLOAD_TAIL_MARKER, 0))
            self._payload.flush()


def encode_entries(
    out, entries: Iterable[Entry], content_of: Callable[[Entry], bytes], catalog: CatalogWriter | None = None, **options
) -> int:
    """Encode decoded entries (root first, then depth-first archive order).

    ``content_of(entry)`` returns a regular file's bytes or a binary file object; ``options``
    go to ``Encoder`` (``payload_out`` and ``prelude`` for a v2 archive).  Returns the
    (metadata) archive size.
    """
    iterator = iter(entries)
    root = next(iterator)
    if root.path != b"" or root.kind is not Kind.DIRECTORY:
        raise ValueError("the first entry must be the root directory")
    encoder = Encoder(out, root.metadata, catalog, **options)
    open_paths = [b""]
    file_offsets: dict[bytes, int] = {}
    for entry in iterator:
        parent, _, name = entry.path.rpartition(b"/")
        while open_paths[-1] != parent:
            if len(open_paths) == 1:
                raise ValueError(f"{entry.path!r} is not below an open directory")
            open_paths.pop()
            encoder.end_directory()
        if entry.kind is Kind.DIRECTORY:
            encoder.begin_directory(name, entry.metadata)
            open_paths.append(entry.path)
        elif entry.kind is Kind.FILE:
            file_offsets[entry.path] = encoder.add_file(name, entry.metadata, entry.size, content_of(entry))
        elif entry.kind is Kind.SYMLINK:
            encoder.add_symlink(name, entry.metadata, entry.symlink_target)
        elif entry.kind in (Kind.CHAR_DEVICE, Kind.BLOCK_DEVICE):
            encoder.add_device(name, entry.metadata, *entry.device)
        elif entry.kind is Kind.HARDLINK:
            target = entry.hardlink_target.lstrip(b"/")
            if target not in file_offsets:
                raise ValueError(f"hardlink {entry.path!r} to {target!r}, which is not an earlier regular file")
            encoder.add_hardlink(name, entry.hardlink_target, file_offsets[target])
        else:
            encoder.add_special(name, entry.metadata)
    for _ in open_paths[1:]:
        encoder.end_directory()
    encoder.finish()
    return encoder.position


class TreeWalker:
    """Walks a local directory into an ``Encoder``; subclasses may archive files differently."""

    def __init__(self, encoder: Encoder, one_file_system: bool):
        self.encoder = encoder
        self.one_file_system = one_file_system
        self.hardlinks: dict[tuple[int, int], tuple[bytes, int]] = {}

    def walk(self, dir_fd: int, path: bytes, device: int) -> None:
        # sort the bytes: str order differs for undecodable names (surrogate escapes)
        for name in sorted(map(os.fsencode, os.listdir(dir_fd))):
            child_path = path + b"/" + name if path else name
            try:
                self.add(dir_fd, name, child_path, device)
            except FileNotFoundError:
                log.warning("%r vanished while being archived; skipped", child_path)
            except PermissionError as error:
                log.warning("cannot read %r (%s); skipped", child_path, error.strerror)

    def finish(self) -> None:
        """Called after the walk, before the archive is closed."""

    def close(self) -> None:
        """Called last, also after a failure."""

    def add_regular_file(self, fd: int, name: bytes, metadata: Metadata, st: os.stat_result) -> int:
        """Archive the open regular file ``fd``; returns its FILENAME offset."""
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as reader:
            return self.encoder.add_file(name, metadata, st.st_size, reader)

    def begin_directory(self, name: bytes, metadata: Metadata) -> None:
        self.encoder.begin_directory(name, metadata)

    def end_directory(self) -> None:
        self.encoder.end_directory()

    def add(self, dir_fd: int, name: bytes, path: bytes, device: int) -> None:
        st = os.lstat(name, dir_fd=dir_fd)
        kind = stat.S_IFMT(st.st_mode)
        encoder = self.encoder
        if kind == stat.S_IFREG and st.st_nlink > 1:
            known = self.hardlinks.get((st.st_dev, st.st_ino))
            if known is not None:
                encoder.add_hardlink(name, *known)
                return
        if kind in (stat.S_IFREG, stat.S_IFDIR):
            # O_NONBLOCK: if the name was swapped for a fifo since lstat, open must not hang
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
            if kind == stat.S_IFDIR:
                flags |= os.O_DIRECTORY
            fd = os.open(name, flags, dir_fd=dir_fd)
            try:
                st = os.fstat(fd)
                if stat.S_IFMT(st.st_mode) != kind:
                    log.warning("%r changed type while being archived; skipped", path)
                    return
                metadata = read_metadata(st, fd)
                if kind == stat.S_IFREG:
                    offset = self.add_regular_file(fd, name, metadata, st)
                    if st.st_nlink > 1:
                        self.hardlinks[(st.st_dev, st.st_ino)] = (path, offset)
                else:
                    self.begin_directory(name, metadata)
                    if self.one_file_system and st.st_dev != device:
                        log.info("not descending into mount point %r", path)
                    else:
                        self.walk(fd, path, st.st_dev)
                    self.end_directory()
            finally:
                os.close(fd)
        elif kind == stat.S_IFLNK:
            encoder.add_symlink(name, read_metadata(st, None), os.readlink(name, dir_fd=dir_fd))
        elif kind in (stat.S_IFCHR, stat.S_IFBLK):
            encoder.add_device(name, read_metadata(st, None), os.major(st.st_rdev), os.minor(st.st_rdev))
        elif kind in (stat.S_IFIFO, stat.S_IFSOCK):
            encoder.add_special(name, read_metadata(st, None))
        else:
            log.warning("%r has unknown file type %#o; skipped", path, kind)


def encode_tree(
    source: str | os.PathLike,
    out,
    catalog: CatalogWriter | None = None,
    one_file_system: bool = True,
    walker: Callable[[Encoder, bool], TreeWalker] = TreeWalker,
    **options,
) -> int:
    """Archive the directory ``source`` as a pxar stream written to ``out``.

    Children are added in byte-sorted name order with metadata from ``lstat``, chattr flags,
    ``user.*``/``trusted.*`` xattrs, POSIX ACLs, file capabilities and quota project ids, as
    proxmox-backup-client does.  With ``one_file_system`` a mount point below ``source`` is
    stored as an empty directory.  ``walker`` makes the ``TreeWalker`` (see ``tapefs.pxar.reuse``
    for one that reuses a previous archive's payload).  ``options`` go to ``Encoder`` (``payload_out``, ``prelude``
    and ``payload_boundary`` for a v2 archive).  Returns the (metadata) archive size.
    """
    fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        encoder = Encoder(out, read_metadata(st, fd), catalog, **options)
        tree_walker = walker(encoder, one_file_system)
        try:
            tree_walker.walk(fd, b"", st.st_dev)
            tree_walker.finish()
        finally:
            tree_walker.close()
        encoder.finish()
    finally:
        os.close(fd)
    return encoder.position
