"""The file tree `tapefs mount` shows: views over the inventory, the media catalog and the file
catalog. Synchronous and free of pyfuse3 and trio; `operations.py` translates.

    /.status                                      what the mount is doing (JSON, rendered at open)
    /pools/POOL/SET/tapes/NNN-LABEL -> media      the set's tapes, in sequence order
    /pools/POOL/SET/STORE/[ns/NS/]TYPE/ID/TIME/   each snapshot on that media set
    /snapshots/STORE/[ns/NS/]TYPE/ID/TIME/        every snapshot, the copy readable now first
    /media/LABEL/{label.json,content.txt}         each tape: labels, location, what it holds

Inside a snapshot directory: its blobs decoded (`index.json`, `client.log`), each image archive
(`NAME.img.fidx`) as the file `NAME.img`, any other stream (`X.didx`) as `X`, and each pxar archive
(`NAME.pxar.didx`, or `NAME.mpxar.didx` + `NAME.ppxar.didx`) as the directory `NAME.pxar` holding
the archived tree.

Who may read what. Archive entries keep the owners and modes they were archived with. Everything
else belongs to the mount's owner: directories and metadata files (labels, tape contents, the
status file) are readable by all, since they show names and counts; nodes that hand out backed-up
bytes (raw tape files, images and other streams, snapshot blobs) are the owner's alone, unless
the mount exposes them (`expose_raw`).

Refresh. Backups, label and catalog commands change the databases while the mount runs. The mount
service calls `refresh` every REFRESH_SECONDS in a worker thread: when SQLite's data_version says
another process committed, it builds new views aside, on connections of its own and without the
tree's lock, then swaps them in under the lock (a dict update). Requests never wait for a build:
until the swap they are answered from the old views.

Inode numbers. Views, tapes and snapshot directories are few: they are numbered from 2 in order of
first appearance and keyed by their path, so a refresh keeps them. Archive entries may be millions:
their inode is computed, ``ENTRY_BIT | copy << COPY_SHIFT | entry id``, where `copy` numbers the
(media set, snapshot) it is reached through, because a read must know which set holds the chunks.
Nothing is dropped for a FUSE ``forget``: any inode can be rebuilt from its number. A row id a
catalog rebuild hands to another entry gets another generation number (`Node.generation`).
"""

from __future__ import annotations

import calendar
import errno
import json
import logging
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from tapefs.catalog.file_catalog import ArchiveRow, EntryRow, FileCatalog
from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.datastore.blob import decode_blob
from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.fixed_index import FixedIndex
from tapefs.errors import NotFound, TapefsError
from tapefs.media.inventory import Inventory
from tapefs.media.media_id import LocationKind, MediaLocation
from tapefs.mount.tape_stream import TapeStream
from tapefs.tapeformat.tape_file import read_raw_range

log = logging.getLogger(__name__)

ROOT_INODE = 1
ENTRY_BIT = 1 << 62
COPY_SHIFT = 40
STATUS_NAME = b".status"
#: How often the mount looks for new backups (`Tree.refresh`, called by the mount service).
REFRESH_SECONDS = 5.0
DIRECTORY_MODE = stat.S_IFDIR | 0o555
#: metadata: labels, tape contents, the status file
FILE_MODE = stat.S_IFREG | 0o444
#: backed-up bytes outside the archives' own permissions: raw tape files, streams, blobs
OWNER_ONLY_FILE_MODE = stat.S_IFREG | 0o400
SYMLINK_MODE = stat.S_IFLNK | 0o777
XATTR_PREFIX = b"user.tapefs."
INDEX_CACHE_SIZE = 64
#: Catalog rows kept after readdir and lookup: `ls -l` asks for each listed name's attributes
#: and extended attributes right after listing them.
ROW_CACHE_SIZE = 16384


class TreeError(TapefsError):
    errno = errno.EIO


class NodeNotFound(NotFound, TreeError):
    errno = errno.ENOENT


class NotADirectory(TreeError):
    errno = errno.ENOTDIR


class NotAFile(TreeError):
    errno = errno.EISDIR


class NoDrives(TreeError):
    """tape.cfg names no drive: everything lists, nothing reads."""

    errno = errno.ENOMEDIUM


@dataclass(frozen=True)
class SnapshotCopy:
    """One snapshot on one media set."""

    number: int
    set_uuid: str
    set_name: str
    pool: str
    store: str
    path: str
    set_ctime: int
    #: label texts of the tapes holding the snapshot archive, and its file number on the first
    tapes: tuple[str, ...]
    file_number: int
    key_fingerprint: str | None
    snapshot_id: int | None
    #: Every tape of its media set is in a library (the inventory says so): readable now.
    in_library: bool = True


def preferred_first(copies: list[SnapshotCopy]) -> list[SnapshotCopy]:
    """The copies of one snapshot, the one `snapshots/` shows first: one the file catalog knows
    (its contents can be listed), then one readable now rather than one waiting for a vaulted
    tape, then the newest."""
    return sorted(
        copies, key=lambda c: (c.snapshot_id is not None, c.in_library, c.set_ctime, c.set_uuid), reverse=True
    )


#: FUSE's generation numbers are 64-bit unsigned.
GENERATION_MASK = (1 << 64) - 1


@dataclass(slots=True)
class Node:
    """What stat, readdir and open need to know about one inode."""

    inode: int
    name: bytes
    mode: int
    size: int = 0
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    nlink: int = 1
    rdev: int = 0
    target: bytes | None = None
    #: regular files: builds the reader for one open
    opener: Callable[[], FileReader] | None = None
    #: rendered again at every open (the status file): the size is not known in advance
    direct_io: bool = False
    #: extended attributes listed by listxattr (archived ones, or tapefs's own on view nodes)
    xattrs: dict[bytes, bytes] = field(default_factory=dict)
    #: tapefs's own attributes on archive entries: answered by getxattr, not listed, so that
    #: `cp -a` out of the mount restores a file without them
    hidden_xattrs: Callable[[], dict[bytes, bytes]] | None = None
    #: archive entries: (copy number, catalog row); open and getxattr work from these
    entry: tuple[int, EntryRow] | None = None
    #: virtual directories: built on first use
    expand: Callable[[], list[Node]] | None = None
    children: list[int] | None = None

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def generation(self) -> int:
        """FUSE's generation number: (inode, generation) names one file for the mount's life. An
        archive entry's inode holds its catalog row id, which SQLite may give to another entry
        after a catalog rebuild, so the generation is drawn from what the row describes. View
        inodes are kept by path and never name another node: 0."""
        if self.entry is None:
            return 0
        row = self.entry[1]
        # Python's hash is stable for the life of the process, as long as the generation must
        # be, and costs a fifth of a keyed digest (it is asked for every name `find` meets).
        return hash((row.archive_id, row.parent, row.kind, row.mtime_ns, row.size, row.name)) & GENERATION_MASK


class FileReader:
    """`read(offset, length)` for one open file."""

    #: Tape reads wait for drives and run in a thread; in-memory contents are answered at once.
    blocking = True

    def read(self, offset: int, length: int) -> bytes | memoryview:
        raise NotImplementedError

    def read_at_once(self, offset: int, length: int) -> bytes | memoryview | None:
        """`read`'s answer where it needs no wait (data in memory), else None."""
        return None

    def close(self) -> None:
        pass


class BytesReader(FileReader):
    blocking = False

    def __init__(self, data: bytes):
        self.data = data

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]


class RawTapeFileReader(FileReader):
    """A tape file as recorded (blocks with their headers), read through the planner's drives."""

    def __init__(self, planner, media_uuid: str, file_number: int):
        self.planner = planner
        self.media_uuid = media_uuid
        self.file_number = file_number

    def read(self, offset: int, length: int) -> bytes:
        return self.planner.run_on_tape(
            self.media_uuid,
            f"file {self.file_number}",
            lambda device: read_raw_range(device, self.file_number, offset, length),
        )


class StreamRangeReader(FileReader):
    """Bytes ``[start, start + size)`` of an index-described stream whose chunks are on tape."""

    def __init__(self, stream: TapeStream, start: int, size: int):
        self.stream = stream
        self.start = start
        self.size = size

    def read(self, offset: int, length: int) -> bytes | memoryview:
        length = max(0, min(length, self.size - offset))
        if length == 0:
            return b""
        data = self.stream.view_at(self.start + offset, length, readahead_end=self.start + self.size)
        return self._checked(data, offset, length)

    def read_at_once(self, offset: int, length: int) -> bytes | memoryview | None:
        length = max(0, min(length, self.size - offset))
        if length == 0:
            return b""
        data = self.stream.view_in_memory(self.start + offset, length, readahead_end=self.start + self.size)
        return None if data is None else self._checked(data, offset, length)

    def _checked(self, data: bytes | memoryview, offset: int, length: int) -> bytes | memoryview:
        if len(data) != length:
            # A short answer would reach the reader as zeros: fail the range instead.
            raise TreeError(f"{self.stream.name}: {len(data)} of {length} bytes at {self.start + offset}")
        return data


def first_of_each_name(rows: list[EntryRow], previous: bytes | None = None) -> Iterator[EntryRow]:
    """Rows in name order, each name once: an archive may hold two entries of one name (restore
    refuses it); lookup finds the first, so the listing shows that one alone. `previous` is the
    name listed last before `rows`."""
    for row in rows:
        if row.name != previous:
            yield row
        previous = row.name


def _online(location: MediaLocation | None) -> bool:
    return location is not None and location.kind is LocationKind.ONLINE


def _decoded_name(file_name: str) -> tuple[str, str]:
    """(name shown in a snapshot directory, kind) for a file of the snapshot archive."""
    if file_name.endswith(".blob"):
        return file_name[: -len(".blob")], "blob"
    if file_name.endswith(".fidx"):
        return file_name[: -len(".fidx")], "stream"
    if file_name.endswith(".didx"):
        return file_name[: -len(".didx")], "stream"
    return file_name, "raw"


def _pxar_index_names(archive: ArchiveRow) -> set[str]:
    return {archive.metadata_index} | ({archive.payload_index} if archive.payload_index else set())


class Databases(NamedTuple):
    """What the views are built from."""

    inventory: Inventory
    media_catalog: MediaCatalog
    file_catalog: FileCatalog

    def reopened(self) -> Databases:
        """Connections of their own to the same files (closed with `close`). A build runs many
        queries; on connections of its own, the requests' catalog queries never queue behind
        them for the lock that serialises each connection's users."""
        opened: list = []
        try:
            for db in self:
                opened.append(type(db)(db.db_path))
        except BaseException:
            for db in opened:
                db.close()
            raise
        return Databases(*opened)

    def close(self) -> None:
        for db in self:
            db.close()


class Tree:
    """The views; thread-safe (FUSE handlers, read threads and the refresh thread call in
    concurrently). `close` releases the connections `refresh` opened."""

    def __init__(
        self,
        inventory: Inventory,
        media_catalog: MediaCatalog,
        file_catalog: FileCatalog,
        planner=None,
        status: Callable[[], dict] | None = None,
        uid: int = 0,
        gid: int = 0,
        expose_raw: bool = False,
    ):
        self.inventory = inventory
        self.media_catalog = media_catalog
        self.file_catalog = file_catalog
        self.planner = planner
        self.status = status or (lambda: {})
        self.uid = uid
        self.gid = gid
        #: mode of the nodes holding backed-up bytes that no archived mode protects
        self.content_mode = FILE_MODE if expose_raw else OWNER_ONLY_FILE_MODE
        self.mounted_at = int(time.time())
        #: The published views: `_nodes` and `_copies` change only under it, in short sections.
        self._lock = threading.RLock()
        self._nodes: dict[int, Node] = {}
        #: Inode numbers by path (`_by_path`, `_next_inode`): handed out by builds and expansions.
        self._paths_lock = threading.Lock()
        self._by_path: dict[tuple[bytes, ...], int] = {(): ROOT_INODE}
        self._next_inode = ROOT_INODE + 1
        self._copies: dict[int, SnapshotCopy] = {}
        self._copy_numbers: dict[tuple[str, str, str], int] = {}
        self._indexes: OrderedDict[tuple[int, str], DynamicIndex | FixedIndex] = OrderedDict()
        self._rows: OrderedDict[int, EntryRow] = OrderedDict()
        self._rows_lock = threading.Lock()
        #: One build at a time: `refresh`, its connections, `_versions` and `_copy_numbers`.
        self._building = threading.Lock()
        #: Per thread: the dict collecting the nodes of the build or expansion under way.
        self._local = threading.local()
        self._databases = Databases(inventory, media_catalog, file_catalog)
        self._builder_databases: Databases | None = None
        self._versions: tuple[int, ...] = ()
        self.view_builds = 0
        self.last_build_seconds = 0.0
        # The first views are built with the tree's own connections: no second set is opened
        # for a tree that is never refreshed.
        with self._building:
            self._refresh(self._databases, force=True)

    def close(self) -> None:
        """Close the connections `refresh` opened (waits for a build under way)."""
        with self._building:
            if self._builder_databases is not None:
                self._builder_databases.close()
                self._builder_databases = None

    # -- building the views ----------------------------------------------------------------

    def _data_versions(self) -> tuple[int, ...]:
        """SQLite's data_version of each database: it changes when another process commits."""
        return tuple(db.data_version() for db in self._databases)

    def refresh(self, force: bool = False) -> bool:
        """Rebuild the views when a backup, label or catalog command changed the databases (no
        archive entry is read); True if it did. Blocking: the mount service calls it in a worker
        thread. The new views are built aside, on connections of their own and without the tree's
        lock, and swapped in under the lock; meanwhile requests are answered from the old ones.
        Nodes already handed out stay valid, inode numbers stay with their paths."""
        with self._building:
            if self._builder_databases is None:
                self._builder_databases = self._databases.reopened()
            return self._refresh(self._builder_databases, force)

    def _refresh(self, databases: Databases, force: bool) -> bool:
        """`refresh` from `databases`; the caller holds `_building`."""
        versions = self._data_versions()
        if not force and versions == self._versions:
            return False
        started = time.monotonic()
        built, copies = self._build_views(databases)
        with self._lock:
            # Nodes of paths that are gone stay: a process may still hold their inodes.
            self._nodes.update(built)
            self._copies = {copy.number: copy for copy in copies}
        # Set last: a build that failed is tried again at the next refresh.
        self._versions = versions
        self.view_builds += 1
        self.last_build_seconds = time.monotonic() - started
        return True

    def _build_views(self, databases: Databases) -> tuple[dict[int, Node], list[SnapshotCopy]]:
        """The root and the three views as new nodes, none of them published yet."""
        with self._collecting() as built:
            copies = self._find_copies(databases)
            root = self._directory((), ROOT_INODE)
            root.children = [self._add(self._status_node()).inode]
            for view, build in (
                (b"pools", self._pools_view),
                (b"snapshots", self._snapshots_view),
                (b"media", self._media_view),
            ):
                node = self._directory((view,))
                root.children.append(node.inode)
                node.children = [child.inode for child in build(databases, copies, (view,))]
        return built, copies

    @contextmanager
    def _collecting(self) -> Iterator[dict[int, Node]]:
        """The nodes `_add` makes in this thread go to the dict yielded, not to the published
        views; the caller publishes them under the lock."""
        self._local.built = built = {}
        try:
            yield built
        finally:
            del self._local.built

    def _find_copies(self, databases: Databases) -> list[SnapshotCopy]:
        copies = []
        for info in databases.inventory.list_media_sets():
            labels = {}
            fingerprint = None
            in_library = True
            for uuid in info.members:
                if uuid is None:
                    continue
                entry = databases.inventory.lookup(uuid)
                in_library = in_library and entry is not None and _online(entry.location)
                if entry is not None:
                    labels[uuid] = entry.id.label_text
                    fingerprint = fingerprint or entry.id.media_set_label.encryption_key_fingerprint
            set_name = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(info.ctime))
            places: dict[tuple[str, str], list] = {}
            for place in databases.media_catalog.snapshots_in_set(info.uuid):
                places.setdefault((place.store, place.snapshot), []).append(place)
            for (store, path), found in places.items():
                key = (info.uuid, store, path)
                number = self._copy_numbers.setdefault(key, len(self._copy_numbers) + 1)
                tapes = tuple(dict.fromkeys(labels.get(p.media_uuid, p.media_uuid) for p in found))
                copies.append(
                    SnapshotCopy(
                        number,
                        info.uuid,
                        set_name,
                        info.pool,
                        store,
                        path,
                        info.ctime,
                        tapes,
                        found[0].file_number,
                        fingerprint,
                        databases.file_catalog.snapshot_id(store, path),
                        in_library,
                    )
                )
        return copies

    def _add(self, node: Node) -> Node:
        built = getattr(self._local, "built", None)
        if built is not None:
            built[node.inode] = node
        else:
            with self._lock:
                self._nodes[node.inode] = node
        return node

    def _inode_for(self, path: tuple[bytes, ...]) -> int:
        with self._paths_lock:
            inode = self._by_path.get(path)
            if inode is None:
                inode = self._by_path[path] = self._next_inode
                self._next_inode += 1
            return inode

    def _directory(
        self,
        path: tuple[bytes, ...],
        inode: int | None = None,
        mtime: int | None = None,
        xattrs: dict[bytes, bytes] | None = None,
    ) -> Node:
        node = Node(
            inode or self._inode_for(path),
            path[-1] if path else b"",
            DIRECTORY_MODE,
            nlink=2,
            uid=self.uid,
            gid=self.gid,
            mtime_ns=(mtime or self.mounted_at) * 1_000_000_000,
            xattrs=xattrs or {},
        )
        node.children = None
        return self._add(node)

    def _file(self, path: tuple[bytes, ...], data: bytes, mtime: int | None = None, mode: int = FILE_MODE) -> Node:
        return self._add(
            Node(
                self._inode_for(path),
                path[-1],
                mode,
                size=len(data),
                uid=self.uid,
                gid=self.gid,
                mtime_ns=(mtime or self.mounted_at) * 1_000_000_000,
                opener=lambda: BytesReader(data),
            )
        )

    def _status_node(self) -> Node:
        def render() -> FileReader:
            return BytesReader(json.dumps(self.status(), indent=2, sort_keys=True).encode() + b"\n")

        return Node(
            self._inode_for((STATUS_NAME,)),
            STATUS_NAME,
            FILE_MODE,
            uid=self.uid,
            gid=self.gid,
            mtime_ns=self.mounted_at * 1_000_000_000,
            opener=render,
            direct_io=True,
        )

    def _tree_of_paths(self, base: tuple[bytes, ...], items: list[tuple[list[bytes], Callable]]) -> list[Node]:
        """Directories for the components of each item's path below `base`; each item's last
        component is made by its callable(path)."""
        top: list[int] = []
        directories: dict[tuple[bytes, ...], Node] = {}
        #: what this call made, by inode (none of it is published yet)
        made: dict[int, Node] = {}
        for components, make in items:
            parent_children = top
            for depth in range(1, len(components)):
                path = base + tuple(components[:depth])
                node = directories.get(path)
                if node is None:
                    node = directories[path] = self._directory(path)
                    made[node.inode] = node
                    node.children = []
                    parent_children.append(node.inode)
                assert node.children is not None
                parent_children = node.children
            node = make(base + tuple(components))
            made[node.inode] = node
            parent_children.append(node.inode)
        for node in directories.values():
            assert node.children is not None
            node.children.sort(key=lambda child: made[child].name)
        top.sort(key=lambda child: made[child].name)
        return [made[inode] for inode in top]

    def _pools_view(self, databases: Databases, copies: list[SnapshotCopy], base: tuple[bytes, ...]) -> list[Node]:
        items = []
        sets: dict[str, tuple[str, str]] = {}
        for copy in copies:
            sets.setdefault(copy.set_uuid, (copy.pool, copy.set_name))
        used: dict[tuple[str, str], str] = {}
        set_dirs: dict[str, str] = {}
        for info in databases.inventory.list_media_sets():
            sets.setdefault(info.uuid, (info.pool, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(info.ctime))))
        for set_uuid, (pool, name) in sorted(sets.items(), key=lambda item: item[1]):
            unique = name if (pool, name) not in used else f"{name}-{set_uuid[:8]}"
            used[(pool, unique)] = set_uuid
            set_dirs[set_uuid] = unique
            members = databases.inventory.compute_media_set_members(set_uuid)
            for seq_nr, uuid in enumerate(members):
                entry = databases.inventory.lookup(uuid) if uuid else None
                if entry is None:
                    continue
                label = entry.id.label_text
                link = f"{seq_nr:03d}-{label}".encode()
                items.append(
                    (
                        [pool.encode(), unique.encode(), b"tapes", link],
                        lambda path, label=label: self._symlink(path, f"../../../../media/{label}"),
                    )
                )
        for copy in copies:
            components = [
                copy.pool.encode(),
                set_dirs[copy.set_uuid].encode(),
                copy.store.encode(),
                *[part.encode() for part in copy.path.split("/")],
            ]
            items.append((components, lambda path, copy=copy: self._snapshot_dir(path, copy)))
        return self._tree_of_paths(base, items)

    def _snapshots_view(self, databases: Databases, copies: list[SnapshotCopy], base: tuple[bytes, ...]) -> list[Node]:
        by_snapshot: dict[tuple[str, str], list[SnapshotCopy]] = {}
        for copy in copies:
            by_snapshot.setdefault((copy.store, copy.path), []).append(copy)
        items = []
        for (store, path), found in by_snapshot.items():
            found = preferred_first(found)
            components = [store.encode(), *[part.encode() for part in path.split("/")]]
            items.append(
                (components, lambda p, newest=found[0], others=found[1:]: self._snapshot_dir(p, newest, others))
            )
        return self._tree_of_paths(base, items)

    def _media_view(self, databases: Databases, copies: list[SnapshotCopy], base: tuple[bytes, ...]) -> list[Node]:
        nodes = []
        for entry in sorted(databases.inventory.list_media(), key=lambda e: e.id.label_text):
            label = entry.id.label_text
            path = base + (label.encode(),)
            directory = self._directory(
                path,
                mtime=entry.id.label.ctime,
                xattrs={
                    XATTR_PREFIX + b"uuid": entry.uuid.encode(),
                    XATTR_PREFIX + b"location": str(entry.effective_location).encode(),
                    XATTR_PREFIX + b"status": entry.effective_status.value.encode(),
                },
            )
            directory.expand = lambda path=path, uuid=entry.uuid: self._tape_files(path, uuid)
            nodes.append(directory)
        return nodes

    def _tape_files(self, path: tuple[bytes, ...], media_uuid: str) -> list[Node]:
        entry = self.inventory.lookup(media_uuid)
        if entry is None:
            return []
        set_label = entry.id.media_set_label
        label = {
            "uuid": entry.uuid,
            "label-text": entry.id.label_text,
            "ctime": entry.id.label.ctime,
            "pool": entry.id.pool,
            "location": str(entry.effective_location),
            "status": entry.effective_status.value,
            "bytes-used": entry.bytes_used,
        }
        if set_label is not None and not set_label.is_unassigned:
            label["media-set"] = {
                "uuid": set_label.uuid,
                "seq-nr": set_label.seq_nr,
                "ctime": set_label.ctime,
                "pool": set_label.pool,
                "encryption-key-fingerprint": set_label.encryption_key_fingerprint,
            }
        lines = ["file  kind      store       content"]
        raw_files = [(0, "media-label")] + ([(1, "media-set-label")] if "media-set" in label else [])
        for file_number, kind, store, snapshot, chunks in self.media_catalog.media_content(media_uuid):
            what = snapshot if kind == "snapshot" else f"{chunks} chunks"
            lines.append(f"{file_number:>4}  {kind:<8}  {store:<10}  {what}")
            raw_files.append((file_number, f"{kind}-archive"))
        files = self._directory(path + (b"files",), mtime=entry.id.label.ctime)
        files.children = [
            self._raw_tape_file(path + (b"files",), media_uuid, number, kind).inode for number, kind in raw_files
        ]
        return [
            self._file(path + (b"label.json",), json.dumps(label, indent=2).encode() + b"\n", entry.id.label.ctime),
            self._file(path + (b"content.txt",), ("\n".join(lines) + "\n").encode(), entry.id.label.ctime),
            files,
        ]

    def _raw_tape_file(self, directory: tuple[bytes, ...], media_uuid: str, file_number: int, kind: str) -> Node:
        """Size unknown until read: shown as 0 and served with direct I/O, so readers go on to EOF."""
        path = directory + (f"{file_number:05d}-{kind}".encode(),)

        def open_raw() -> FileReader:
            if self.planner is None:
                raise NoDrives("this mount has no drives to read from")
            return RawTapeFileReader(self.planner, media_uuid, file_number)

        return self._add(
            Node(
                self._inode_for(path),
                path[-1],
                self.content_mode,
                uid=self.uid,
                gid=self.gid,
                mtime_ns=self.mounted_at * 1_000_000_000,
                opener=open_raw,
                direct_io=True,
            )
        )

    def _symlink(self, path: tuple[bytes, ...], target: str) -> Node:
        encoded = target.encode()
        return self._add(
            Node(
                self._inode_for(path),
                path[-1],
                SYMLINK_MODE,
                size=len(encoded),
                uid=self.uid,
                gid=self.gid,
                mtime_ns=self.mounted_at * 1_000_000_000,
                target=encoded,
            )
        )

    def _snapshot_dir(self, path: tuple[bytes, ...], copy: SnapshotCopy, other_copies: list[SnapshotCopy] = ()) -> Node:
        backup_time = _backup_time(copy.path)
        xattrs = {
            XATTR_PREFIX + b"media-set": copy.set_uuid.encode(),
            XATTR_PREFIX + b"tapes": ",".join(copy.tapes).encode(),
            XATTR_PREFIX + b"file-number": str(copy.file_number).encode(),
            XATTR_PREFIX + b"copies": ",".join(c.set_uuid for c in [copy, *other_copies]).encode(),
        }
        if copy.key_fingerprint:
            xattrs[XATTR_PREFIX + b"key-fingerprint"] = copy.key_fingerprint.encode()
        if copy.snapshot_id is None:
            xattrs[XATTR_PREFIX + b"error"] = b"no file catalog for this snapshot: run 'tapefs catalog'"
        node = self._directory(path, mtime=backup_time, xattrs=xattrs)
        node.expand = lambda: self._snapshot_files(path, copy)
        return node

    def _snapshot_files(self, path: tuple[bytes, ...], copy: SnapshotCopy) -> list[Node]:
        if copy.snapshot_id is None:
            return []
        catalog = self.file_catalog
        archives = catalog.archives(copy.snapshot_id)
        hidden = set().union(*(_pxar_index_names(a) for a in archives)) if archives else set()
        nodes = []
        for archive in archives:
            nodes.append(self._archive_root(path + (archive.name.encode(),), copy, archive))
        for info in catalog.snapshot_files(copy.snapshot_id):
            if info.name in hidden:
                continue
            name, kind = _decoded_name(info.name)
            file_path = path + (name.encode(),)
            if kind == "stream":
                try:
                    index = self._index(copy, info.name)
                except (DatastoreError, ValueError) as error:
                    log.warning("snapshot %s:%s, %s: %s", copy.store, copy.path, info.name, error)
                    continue
                nodes.append(
                    self._add(
                        Node(
                            self._inode_for(file_path),
                            file_path[-1],
                            self.content_mode,
                            size=index.size,
                            uid=self.uid,
                            gid=self.gid,
                            mtime_ns=info.mtime * 1_000_000_000,
                            opener=lambda copy=copy, name=info.name, size=index.size: StreamRangeReader(
                                self._stream(copy, name), 0, size
                            ),
                            hidden_xattrs=lambda copy=copy, name=info.name: self._stream_xattrs(copy, name, None),
                        )
                    )
                )
                continue
            raw = catalog.snapshot_file(copy.snapshot_id, info.name)
            if kind == "blob":
                try:
                    raw = decode_blob(raw, source=info.name)
                except DatastoreError:
                    # Encrypted with a client key, or damaged: shown as stored.
                    file_path = path + (info.name.encode(),)
            nodes.append(self._file(file_path, raw, info.mtime, self.content_mode))
        nodes.sort(key=lambda node: node.name)
        return nodes

    def _archive_root(self, path: tuple[bytes, ...], copy: SnapshotCopy, archive: ArchiveRow) -> Node:
        if archive.root_entry is None:
            node = self._directory(
                path,
                mtime=_backup_time(copy.path),
                xattrs={XATTR_PREFIX + b"error": (archive.error or "no entries").encode()},
            )
            node.children = []
            return node
        row = self.file_catalog.entry(archive.root_entry)
        node = self._entry_node(copy.number, row)
        # The archive root keeps its number: that is how lookups below it find their copy.
        node.name = path[-1]
        return node

    # -- archive entries -------------------------------------------------------------------

    @staticmethod
    def entry_inode(copy_number: int, entry_id: int) -> int:
        return ENTRY_BIT | copy_number << COPY_SHIFT | entry_id

    def _copy(self, number: int) -> SnapshotCopy:
        with self._lock:
            copy = self._copies.get(number)
        if copy is None:
            raise NodeNotFound(f"snapshot copy {number} is gone")
        return copy

    def _remember(self, rows: list[EntryRow]) -> None:
        with self._rows_lock:
            for row in rows:
                self._rows[row.id] = row
            while len(self._rows) > ROW_CACHE_SIZE:
                self._rows.popitem(last=False)

    def _row(self, entry_id: int) -> EntryRow | None:
        with self._rows_lock:
            row = self._rows.get(entry_id)
        if row is None:
            row = self.file_catalog.entry(entry_id)
            if row is not None:
                self._remember([row])
        return row

    def _resolved(self, row: EntryRow) -> EntryRow:
        """A hardlink's target (the file whose inode, content and attributes it shares)."""
        if row.kind == "hardlink" and row.link is not None:
            return self._row(row.link) or row
        return row

    def _entry_node(self, copy_number: int, row: EntryRow) -> Node:
        name = row.name
        row = self._resolved(row)
        return Node(
            self.entry_inode(copy_number, row.id),
            name,
            row.mode,
            size=row.size,
            uid=row.uid,
            gid=row.gid,
            mtime_ns=row.mtime_ns,
            nlink=row.nlink,
            rdev=row.rdev or 0,
            target=row.target,
            xattrs=dict(row.xattrs) if row.xattrs else {},
            entry=(copy_number, row),
        )

    def _archive_of(self, copy: SnapshotCopy, row: EntryRow) -> ArchiveRow:
        for archive in self.file_catalog.archives(copy.snapshot_id):
            if archive.id == row.archive_id:
                return archive
        raise NodeNotFound(f"archive {row.archive_id} is not in snapshot {copy.path}")

    def _content_stream_name(self, copy: SnapshotCopy, row: EntryRow) -> str:
        archive = self._archive_of(copy, row)
        return archive.payload_index or archive.metadata_index

    def _open_entry(self, copy_number: int, row: EntryRow) -> FileReader:
        copy = self._copy(copy_number)
        stream = self._stream(copy, self._content_stream_name(copy, row))
        return StreamRangeReader(stream, row.content_offset or 0, row.size)

    def _entry_xattrs(self, copy_number: int, row: EntryRow) -> dict[bytes, bytes]:
        copy = self._copy(copy_number)
        return self._stream_xattrs(copy, self._content_stream_name(copy, row), (row.content_offset or 0, row.size))

    # -- tape information ------------------------------------------------------------------

    def _index(self, copy: SnapshotCopy, name: str) -> DynamicIndex | FixedIndex:
        key = (copy.snapshot_id, name)
        with self._lock:
            index = self._indexes.get(key)
            if index is not None:
                self._indexes.move_to_end(key)
                return index
        raw = self.file_catalog.snapshot_file(copy.snapshot_id, name)
        index = FixedIndex.parse(raw, name) if name.endswith(".fidx") else DynamicIndex.parse(raw, name)
        with self._lock:
            self._indexes[key] = index
            while len(self._indexes) > INDEX_CACHE_SIZE:
                self._indexes.popitem(last=False)
        return index

    def _stream(self, copy: SnapshotCopy, name: str) -> TapeStream:
        if self.planner is None:
            raise NoDrives("this mount has no drives to read from")
        return TapeStream(
            self.planner, copy.set_uuid, copy.store, self._index(copy, name), f"{copy.store}:{copy.path}/{name}"
        )

    def _stream_xattrs(self, copy: SnapshotCopy, name: str, byte_range: tuple[int, int] | None) -> dict[bytes, bytes]:
        """Which tapes, file numbers and key a file's bytes need."""
        index = self._index(copy, name)
        start, size = byte_range if byte_range is not None else (0, index.size)
        digests = []
        if size:
            first, last = index.find_chunk(start), index.find_chunk(start + size - 1)
            digests = index.digests[first : last + 1]
        places = self.media_catalog.chunk_places(copy.set_uuid, copy.store, digests)
        labels: dict[str, set[int]] = {}
        for place in places.values():
            entry = self.inventory.lookup(place.media_uuid)
            label = entry.id.label_text if entry else place.media_uuid
            labels.setdefault(label, set()).add(place.file_number)
        xattrs = {
            XATTR_PREFIX + b"media-set": copy.set_uuid.encode(),
            XATTR_PREFIX + b"tapes": ",".join(sorted(labels)).encode(),
            XATTR_PREFIX + b"files": " ".join(
                f"{label}:{','.join(map(str, sorted(numbers)))}" for label, numbers in sorted(labels.items())
            ).encode(),
            XATTR_PREFIX + b"chunks": str(len(digests)).encode(),
        }
        if copy.key_fingerprint:
            xattrs[XATTR_PREFIX + b"key-fingerprint"] = copy.key_fingerprint.encode()
        return xattrs

    # -- what the adapter calls ------------------------------------------------------------

    def node(self, inode: int) -> Node:
        if inode & ENTRY_BIT:
            row = self._row(inode & ((1 << COPY_SHIFT) - 1))
            if row is None:
                raise NodeNotFound(f"inode {inode} is gone")
            return self._entry_node((inode & ~ENTRY_BIT) >> COPY_SHIFT, row)
        with self._lock:
            node = self._nodes.get(inode)
        if node is None:
            raise NodeNotFound(f"inode {inode} is gone")
        return node

    def _virtual_children(self, node: Node) -> list[int]:
        children = node.children
        if children is not None:
            return children
        # Expanded without the lock (it reads the catalogs), published under it.
        with self._collecting() as built:
            made = node.expand() if node.expand is not None else []
        with self._lock:
            if node.children is None:
                self._nodes.update(built)
                for child in made:
                    # archive roots: entry nodes, not made by `_add`
                    self._nodes.setdefault(child.inode, child)
                node.children = [child.inode for child in made]
            return node.children

    def lookup(self, parent_inode: int, name: bytes) -> Node:
        parent = self.node(parent_inode)
        if not parent.is_dir:
            raise NotADirectory(f"inode {parent_inode} is not a directory")
        if parent_inode & ENTRY_BIT:
            copy_number = (parent_inode & ~ENTRY_BIT) >> COPY_SHIFT
            row = self.file_catalog.lookup(parent_inode & ((1 << COPY_SHIFT) - 1), name)
            if row is None:
                raise NodeNotFound(name.decode(errors="replace"))
            self._remember([row])
            return self._entry_node(copy_number, row)
        for inode in self._virtual_children(parent):
            child = self._nodes.get(inode)
            if child is not None and child.name == name:
                return child
        raise NodeNotFound(name.decode(errors="replace"))

    def readdir(self, inode: int, after: int = 0) -> Iterator[tuple[Node, int]]:
        """(child, offset to resume after it); offsets are > 0 and stable between calls, across
        catalog refreshes too (the entry id in archives, the inode number in views)."""
        node = self.node(inode)
        if not node.is_dir:
            raise NotADirectory(f"inode {inode} is not a directory")
        if inode & ENTRY_BIT:
            copy_number = (inode & ~ENTRY_BIT) >> COPY_SHIFT
            entry_id = inode & ((1 << COPY_SHIFT) - 1)
            resumed = self.file_catalog.entry(after) if after else None
            previous = resumed.name if resumed is not None else None
            while True:
                rows = self.file_catalog.children(entry_id, after_id=after)
                if not rows:
                    return
                self._remember(rows)
                for row in first_of_each_name(rows, previous):
                    yield self._entry_node(copy_number, row), row.id
                previous, after = rows[-1].name, rows[-1].id
        # In inode order, the offset being the inode: inodes are given in order of first
        # appearance and kept by path, so what a refresh adds comes after everything listed
        # before it, and a listing resumed after a refresh neither repeats nor skips a name.
        for inode in sorted(self._virtual_children(node)):
            child = self._nodes.get(inode)
            if inode > after and child is not None:
                yield child, inode

    def reader(self, node: Node) -> FileReader:
        """The reader for one open of `node` (the caller has checked it may read it)."""
        if node.is_dir:
            raise NotAFile(f"inode {node.inode} is a directory")
        if node.entry is not None and stat.S_ISREG(node.mode):
            return self._open_entry(*node.entry)
        if node.opener is None:
            raise TreeError(f"inode {node.inode} has no content")
        return node.opener()

    def getxattr(self, inode: int, name: bytes) -> bytes | None:
        if inode & ENTRY_BIT:
            # Asked for every name `ls -l` lists (security.selinux): answered without a Node.
            row = self._row(inode & ((1 << COPY_SHIFT) - 1))
            if row is None:
                raise NodeNotFound(f"inode {inode} is gone")
            row = self._resolved(row)
            for key, value in row.xattrs or ():
                if key == name:
                    return value
            if name.startswith(XATTR_PREFIX) and stat.S_ISREG(row.mode):
                return self._entry_xattrs((inode & ~ENTRY_BIT) >> COPY_SHIFT, row).get(name)
            return None
        node = self.node(inode)
        if name in node.xattrs:
            return node.xattrs[name]
        if node.hidden_xattrs is not None and name.startswith(XATTR_PREFIX):
            return node.hidden_xattrs().get(name)
        return None

    def stats(self) -> dict:
        with self._lock:
            return {
                "snapshot-copies": len(self._copies),
                "view-nodes": len(self._nodes),
                "view-builds": self.view_builds,
                "last-build-seconds": round(self.last_build_seconds, 3),
            }


def _backup_time(path: str) -> int | None:
    try:
        return calendar.timegm(time.strptime(path.rsplit("/", 1)[-1], "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return None
