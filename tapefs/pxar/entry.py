"""What a pxar archive stores about one file: kinds, metadata, ACLs, and decoded entries."""

import enum
import logging
from dataclasses import dataclass, field

from . import format as fmt

log = logging.getLogger(__name__)


class Kind(enum.Enum):
    DIRECTORY = "dir"
    FILE = "file"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    FIFO = "fifo"
    SOCKET = "socket"
    CHAR_DEVICE = "chardev"
    BLOCK_DEVICE = "blockdev"


# Kinds that are fully described by ENTRY + attributes and end where the next item starts.
_KIND_BY_MODE = {
    fmt.S_IFDIR: Kind.DIRECTORY,
    fmt.S_IFREG: Kind.FILE,
    fmt.S_IFLNK: Kind.SYMLINK,
    fmt.S_IFIFO: Kind.FIFO,
    fmt.S_IFSOCK: Kind.SOCKET,
    fmt.S_IFCHR: Kind.CHAR_DEVICE,
    fmt.S_IFBLK: Kind.BLOCK_DEVICE,
}


def kind_of_mode(mode: int) -> Kind | None:
    return _KIND_BY_MODE.get(mode & fmt.S_IFMT)


@dataclass(frozen=True)
class AclEntry:
    """A named ACL entry: a uid (user entries) or gid (group entries) with rwx bits 4/2/1."""

    id: int
    permissions: int


@dataclass(frozen=True)
class AclDefault:
    """The unnamed entries of a directory's default ACL; ``fmt.NO_MASK`` marks a missing one."""

    user_obj: int = fmt.NO_MASK
    group_obj: int = fmt.NO_MASK
    other: int = fmt.NO_MASK
    mask: int = fmt.NO_MASK


@dataclass(frozen=True)
class Acl:
    users: tuple[AclEntry, ...] = ()
    groups: tuple[AclEntry, ...] = ()
    group_obj: int | None = None
    default: AclDefault | None = None
    default_users: tuple[AclEntry, ...] = ()
    default_groups: tuple[AclEntry, ...] = ()

    def is_empty(self) -> bool:
        return self == Acl()


@dataclass
class Metadata:
    """ENTRY stat plus the attribute items that follow it."""

    mode: int
    uid: int = 0
    gid: int = 0
    mtime_secs: int = 0
    mtime_nanos: int = 0
    flags: int = 0
    xattrs: list[tuple[bytes, bytes]] = field(default_factory=list)
    acl: Acl = field(default_factory=Acl)
    fcaps: bytes | None = None
    quota_project_id: int | None = None

    @property
    def mtime_ns(self) -> int:
        return self.mtime_secs * 1_000_000_000 + self.mtime_nanos

    @property
    def kind(self) -> Kind | None:
        return kind_of_mode(self.mode)


@dataclass
class Entry:
    """One decoded archive entry.

    ``path`` is relative to the archive root without a leading slash (the root is ``b""``).
    Offsets are into the metadata stream: ``filename_offset`` is the child's FILENAME item
    (None for the root), ``entry_offset`` the ENTRY or HARDLINK item that follows it.
    ``entry_end`` is, from the accessor, the end recorded in the parent's goodbye table (for v2
    files that includes the payload size); from the sequential decoder, the end of
    the items decoded for this entry (for a directory: its ENTRY and attributes).  For regular files,
    ``content_offset`` is the first content byte, in the archive itself (v1) or in the payload
    stream (v2, ``payload_ref_offset`` is then the PAYLOAD header there).
    """

    path: bytes
    kind: Kind
    metadata: Metadata | None
    size: int = 0
    symlink_target: bytes | None = None
    hardlink_target: bytes | None = None
    hardlink_offset: int | None = None
    device: tuple[int, int] | None = None
    filename_offset: int | None = None
    entry_offset: int = 0
    entry_end: int = 0
    content_offset: int | None = None
    payload_ref_offset: int | None = None

    @property
    def name(self) -> bytes:
        return self.path.rsplit(b"/", 1)[-1]

    @property
    def mode(self) -> int:
        return self.metadata.mode if self.metadata else 0

    @property
    def uid(self) -> int:
        return self.metadata.uid if self.metadata else 0

    @property
    def gid(self) -> int:
        return self.metadata.gid if self.metadata else 0

    @property
    def mtime_ns(self) -> int:
        return self.metadata.mtime_ns if self.metadata else 0

    @property
    def xattrs(self) -> list[tuple[bytes, bytes]]:
        return self.metadata.xattrs if self.metadata else []

    @property
    def acl(self) -> Acl:
        return self.metadata.acl if self.metadata else Acl()

    @property
    def fcaps(self) -> bytes | None:
        return self.metadata.fcaps if self.metadata else None

    @property
    def quota_project_id(self) -> int | None:
        return self.metadata.quota_project_id if self.metadata else None

    @property
    def in_payload_stream(self) -> bool:
        return self.payload_ref_offset is not None
