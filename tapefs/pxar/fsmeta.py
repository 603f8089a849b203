"""Linux file metadata as pxar stores it: stat, chattr flags, xattrs, POSIX ACLs, fcaps, projid.

Reading follows proxmox-backup-client: xattrs, ACLs, flags and project ids only for regular
files and directories; only ``user.*``, ``trusted.*`` and ``security.NTACL`` (Samba's Windows
ACLs) xattrs, sorted by name; ACLs decoded from their ``system.posix_acl_*`` xattrs;
``security.capability`` as FCAPS.
"""

import errno
import fcntl
import logging
import os
import stat
import struct

from . import format as fmt
from .entry import Acl, AclDefault, AclEntry, Metadata

log = logging.getLogger(__name__)

ACL_ACCESS_XATTR = b"system.posix_acl_access"
ACL_DEFAULT_XATTR = b"system.posix_acl_default"
FCAPS_XATTR = b"security.capability"
_STORED_XATTR_PREFIXES = (b"user.", b"trusted.")
_STORED_XATTR_NAMES = (b"security.NTACL",)

# Errors meaning "this file system has no such feature", which are not a problem.
_UNSUPPORTED = {
    errno.EOPNOTSUPP,
    errno.ENOTTY,
    errno.ENOSYS,
    errno.EINVAL,
    errno.EBADF,
    errno.ENODATA,
    errno.EPERM,
    errno.EACCES,
}

FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_IOC_FSGETXATTR = 0x801C581F
FS_IOC_FSSETXATTR = 0x401C5820
_FSXATTR_SIZE = 28

# chattr bit -> pxar ENTRY.flags bit (pbs-client pxar flags table)
_CHATTR_TO_PXAR = (
    (0x00000020, 0x0010000),  # append-only
    (0x00000080, 0x0020000),  # noatime
    (0x00000004, 0x0040000),  # compress
    (0x00800000, 0x0080000),  # nocow
    (0x00000040, 0x0100000),  # nodump
    (0x00010000, 0x0200000),  # dirsync
    (0x00000010, 0x0400000),  # immutable
    (0x00000008, 0x0800000),  # sync
    (0x00000400, 0x1000000),  # nocomp
    (0x20000000, 0x2000000),  # projinherit
)

# POSIX ACL xattr layout (linux/posix_acl_xattr.h)
_ACL_VERSION = 2
_ACL_HEADER = struct.Struct("<I")
_ACL_ENTRY = struct.Struct("<HHI")
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 1, 2, 4, 8, 0x10, 0x20
_UNDEFINED_ID = 0xFFFFFFFF


def _chattr_flags(fd: int) -> int:
    buf = bytearray(8)
    try:
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
    except OSError as error:
        if error.errno in _UNSUPPORTED:
            return 0
        raise
    chattr = int.from_bytes(buf[:4], "little")
    return sum(pxar for bit, pxar in _CHATTR_TO_PXAR if chattr & bit)


def apply_pxar_flags(fd: int, flags: int) -> None:
    """Set the chattr bits that pxar ``flags`` stand for, keeping the file's other bits."""
    chattr = sum(bit for bit, pxar in _CHATTR_TO_PXAR if flags & pxar)
    if not chattr:
        return
    buf = bytearray(8)
    fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
    current = int.from_bytes(buf[:4], "little")
    fcntl.ioctl(fd, FS_IOC_SETFLAGS, (current | chattr).to_bytes(4, "little") + bytes(4))


def apply_quota_project_id(fd: int, projid: int) -> None:
    buf = bytearray(_FSXATTR_SIZE)
    fcntl.ioctl(fd, FS_IOC_FSGETXATTR, buf)
    buf[12:16] = projid.to_bytes(4, "little")
    fcntl.ioctl(fd, FS_IOC_FSSETXATTR, bytes(buf))


def _quota_project_id(fd: int) -> int | None:
    buf = bytearray(_FSXATTR_SIZE)
    try:
        fcntl.ioctl(fd, FS_IOC_FSGETXATTR, buf)
    except OSError as error:
        if error.errno in _UNSUPPORTED:
            return None
        raise
    projid = int.from_bytes(buf[12:16], "little")
    return projid or None


def _xattrs(fd: int) -> dict[bytes, bytes]:
    try:
        names = os.listxattr(fd)
    except OSError as error:
        if error.errno in _UNSUPPORTED:
            return {}
        raise
    values = {}
    for name in names:
        raw_name = os.fsencode(name)
        try:
            values[raw_name] = os.getxattr(fd, name)
        except OSError as error:
            if error.errno not in _UNSUPPORTED:
                raise
    return values


def parse_acl_xattr(value: bytes) -> list[tuple[int, int, int]]:
    """(tag, permissions, id) of each entry of a ``system.posix_acl_*`` value."""
    if len(value) < 4 or (len(value) - 4) % _ACL_ENTRY.size:
        raise ValueError("malformed POSIX ACL xattr")
    (version,) = _ACL_HEADER.unpack_from(value)
    if version != _ACL_VERSION:
        raise ValueError(f"unsupported POSIX ACL xattr version {version}")
    return list(_ACL_ENTRY.iter_unpack(value[4:]))


def acl_from_xattrs(access: bytes | None, default: bytes | None) -> Acl:
    users, groups, default_users, default_groups = [], [], [], []
    group_obj = None
    if access:
        entries = parse_acl_xattr(access)
        group_perm = None
        has_mask = False
        for tag, perm, id_ in entries:
            if tag == ACL_USER:
                users.append(AclEntry(id_, perm))
            elif tag == ACL_GROUP:
                groups.append(AclEntry(id_, perm))
            elif tag == ACL_GROUP_OBJ:
                group_perm = perm
            elif tag == ACL_MASK:
                has_mask = True
        # Without a mask the group-object permissions are the mode's group bits already.
        if has_mask and group_perm is not None:
            group_obj = group_perm
    default_acl = None
    if default:
        objects = {}
        for tag, perm, id_ in parse_acl_xattr(default):
            if tag == ACL_USER:
                default_users.append(AclEntry(id_, perm))
            elif tag == ACL_GROUP:
                default_groups.append(AclEntry(id_, perm))
            else:
                objects[tag] = perm
        if objects:
            default_acl = AclDefault(
                user_obj=objects.get(ACL_USER_OBJ, fmt.NO_MASK),
                group_obj=objects.get(ACL_GROUP_OBJ, fmt.NO_MASK),
                other=objects.get(ACL_OTHER, fmt.NO_MASK),
                mask=objects.get(ACL_MASK, fmt.NO_MASK),
            )

    def ordered(entries):
        return tuple(sorted(entries, key=lambda entry: (entry.id, entry.permissions)))

    return Acl(
        users=ordered(users),
        groups=ordered(groups),
        group_obj=group_obj,
        default=default_acl,
        default_users=ordered(default_users),
        default_groups=ordered(default_groups),
    )


def _build_acl_xattr(entries: list[tuple[int, int, int]]) -> bytes:
    return _ACL_HEADER.pack(_ACL_VERSION) + b"".join(_ACL_ENTRY.pack(tag, perm & 7, id_) for tag, perm, id_ in entries)


def _with_mask(entries: list[tuple[int, int, int]], mask: int | None) -> list:
    named = any(tag in (ACL_USER, ACL_GROUP) for tag, _, _ in entries)
    if mask is None and named:
        # the kernel wants a mask next to named entries; the union of the group class is
        # what setfacl would compute
        mask = 0
        for tag, perm, _ in entries:
            if tag in (ACL_USER, ACL_GROUP, ACL_GROUP_OBJ):
                mask |= perm
    if mask is not None:
        entries.append((ACL_MASK, mask, _UNDEFINED_ID))
    return sorted(entries, key=lambda item: (item[0], item[2]))


def acl_to_xattrs(acl: Acl, mode: int) -> dict[bytes, bytes]:
    """The ``system.posix_acl_*`` values that restore ``acl`` on a file with ``mode``."""
    values = {}
    if acl.users or acl.groups or acl.group_obj is not None:
        group_bits = (mode >> 3) & 7
        entries = [(ACL_USER_OBJ, (mode >> 6) & 7, _UNDEFINED_ID), (ACL_OTHER, mode & 7, _UNDEFINED_ID)]
        entries += [(ACL_USER, entry.permissions, entry.id) for entry in acl.users]
        entries += [(ACL_GROUP, entry.permissions, entry.id) for entry in acl.groups]
        if acl.group_obj is not None:
            # the mode's group bits are the mask when a mask exists
            entries.append((ACL_GROUP_OBJ, acl.group_obj, _UNDEFINED_ID))
            mask = group_bits
        else:
            entries.append((ACL_GROUP_OBJ, group_bits, _UNDEFINED_ID))
            mask = None
        values[ACL_ACCESS_XATTR] = _build_acl_xattr(_with_mask(entries, mask))
    if acl.default is not None or acl.default_users or acl.default_groups:
        default = acl.default or AclDefault()
        # a default ACL needs all three base entries; take missing ones from the mode, as
        # setfacl -d does
        entries = [
            (tag, (mode >> shift) & 7 if perm == fmt.NO_MASK else perm, _UNDEFINED_ID)
            for tag, perm, shift in (
                (ACL_USER_OBJ, default.user_obj, 6),
                (ACL_GROUP_OBJ, default.group_obj, 3),
                (ACL_OTHER, default.other, 0),
            )
        ]
        entries += [(ACL_USER, entry.permissions, entry.id) for entry in acl.default_users]
        entries += [(ACL_GROUP, entry.permissions, entry.id) for entry in acl.default_groups]
        mask = None if default.mask == fmt.NO_MASK else default.mask
        values[ACL_DEFAULT_XATTR] = _build_acl_xattr(_with_mask(entries, mask))
    return values


def read_metadata(st: os.stat_result, fd: int | None) -> Metadata:
    """Metadata of a file from its ``lstat`` result and, for files and directories, an open fd."""
    secs, nanos = divmod(st.st_mtime_ns, 1_000_000_000)
    metadata = Metadata(mode=st.st_mode, uid=st.st_uid, gid=st.st_gid, mtime_secs=secs, mtime_nanos=nanos)
    if fd is None or stat.S_IFMT(st.st_mode) not in (stat.S_IFREG, stat.S_IFDIR):
        return metadata
    metadata.flags = _chattr_flags(fd)
    xattrs = _xattrs(fd)
    metadata.xattrs = sorted(
        (name, value)
        for name, value in xattrs.items()
        if name.startswith(_STORED_XATTR_PREFIXES) or name in _STORED_XATTR_NAMES
    )
    metadata.fcaps = xattrs.get(FCAPS_XATTR)
    metadata.acl = acl_from_xattrs(xattrs.get(ACL_ACCESS_XATTR), xattrs.get(ACL_DEFAULT_XATTR))
    metadata.quota_project_id = _quota_project_id(fd)
    return metadata
