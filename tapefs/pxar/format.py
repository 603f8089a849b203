"""pxar wire format: item types, record layouts, the goodbye hash and table order.

Everything here is fixed by the Proxmox pxar format (docs/pxar.md, "The pxar format") and shared by the
encoder, the sequential decoder and the accessor.
"""

import functools
import logging
import struct

import construct as cs

log = logging.getLogger(__name__)

# SipHash keys: the two little-endian halves of SHA-1("PROXMOX ARCHIVE FORMAT").
HASH_KEY_1 = 0x83AC3F1CFBB450DB
HASH_KEY_2 = 0xAA4F1B6879369FBD

# Item types (htype).  Each is the SipHash of a fixed text such as "__PROXMOX_FORMAT_ENTRY_V2__";
# tests/pxar/test_format.py recomputes them all.
FORMAT_VERSION = 0x730F6C75DF16A40D
PRELUDE = 0xE309D79D9F7B771B
ENTRY = 0xD5956474E588ACEF
ENTRY_V1 = 0x11DA850A1C1CCEFF
FILENAME = 0x16701121063917B3
SYMLINK = 0x27F971E7DBF5DC5F
DEVICE = 0x9FC9E906586D5CE9
XATTR = 0x0DAB0229B57DCD03
ACL_USER = 0x2CE8540A457D55B8
ACL_GROUP = 0x136E3ECEB04C03AB
ACL_GROUP_OBJ = 0x10868031E9582876
ACL_DEFAULT = 0xBBBB13415A6896F5
ACL_DEFAULT_USER = 0xC89357B40532CD1F
ACL_DEFAULT_GROUP = 0xF90A8A5816038FFE
FCAPS = 0x2DA9DD9DB5F7FB67
QUOTA_PROJID = 0xE07540E82F7D1CBB
HARDLINK = 0x51269C8422BD7275
PAYLOAD = 0x28147A1B0B7C1A25
PAYLOAD_REF = 0x419D3D6BC4BA977E
GOODBYE = 0x2FEC4FA642D5731D
GOODBYE_TAIL_MARKER = 0xEF5EED5B753E1555
PAYLOAD_START_MARKER = 0x834C68C2194A4ED2
PAYLOAD_TAIL_MARKER = 0x6C72B78B984C81B5

HTYPE_NAMES = {
    FORMAT_VERSION: "FORMAT_VERSION",
    PRELUDE: "PRELUDE",
    ENTRY: "ENTRY",
    ENTRY_V1: "ENTRY_V1",
    FILENAME: "FILENAME",
    SYMLINK: "SYMLINK",
    DEVICE: "DEVICE",
    XATTR: "XATTR",
    ACL_USER: "ACL_USER",
    ACL_GROUP: "ACL_GROUP",
    ACL_GROUP_OBJ: "ACL_GROUP_OBJ",
    ACL_DEFAULT: "ACL_DEFAULT",
    ACL_DEFAULT_USER: "ACL_DEFAULT_USER",
    ACL_DEFAULT_GROUP: "ACL_DEFAULT_GROUP",
    FCAPS: "FCAPS",
    QUOTA_PROJID: "QUOTA_PROJID",
    HARDLINK: "HARDLINK",
    PAYLOAD: "PAYLOAD",
    PAYLOAD_REF: "PAYLOAD_REF",
    GOODBYE: "GOODBYE",
    PAYLOAD_START_MARKER: "PAYLOAD_START_MARKER",
    PAYLOAD_TAIL_MARKER: "PAYLOAD_TAIL_MARKER",
}

HEADER_SIZE = 16
GOODBYE_ITEM_SIZE = 24
FORMAT_VERSION_2 = 2

# Largest content the reference decoder accepts per item type; anything bigger is corrupt.
MAX_CONTENT_SIZE = {
    FILENAME: 4097,
    SYMLINK: 4097,
    HARDLINK: 4105,
    DEVICE: 16,
    XATTR: 65791,
    FCAPS: 65791,
    ACL_USER: 16,
    ACL_GROUP: 16,
    ACL_GROUP_OBJ: 8,
    ACL_DEFAULT: 32,
    ACL_DEFAULT_USER: 16,
    ACL_DEFAULT_GROUP: 16,
    QUOTA_PROJID: 8,
    PAYLOAD_REF: 16,
    ENTRY: 40,
    ENTRY_V1: 32,
    FORMAT_VERSION: 8,
}

# ACL permission bits and the "not set" marker of ACL_DEFAULT fields.
ACL_READ, ACL_WRITE, ACL_EXECUTE = 4, 2, 1
NO_MASK = 0xFFFFFFFFFFFFFFFF

# File-type bits of ENTRY.mode (equal to Linux's).
S_IFMT = 0o170000
S_IFSOCK = 0o140000
S_IFLNK = 0o120000
S_IFREG = 0o100000
S_IFBLK = 0o060000
S_IFDIR = 0o040000
S_IFCHR = 0o020000
S_IFIFO = 0o010000

Stat = cs.Struct(
    "mode" / cs.Int64ul,
    "flags" / cs.Int64ul,
    "uid" / cs.Int32ul,
    "gid" / cs.Int32ul,
    "mtime_secs" / cs.Int64sl,
    "mtime_nanos" / cs.Int32ul,
    "padding" / cs.Const(0, cs.Int32ul),
).compile()
StatV1 = cs.Struct(
    "mode" / cs.Int64ul,
    "flags" / cs.Int64ul,
    "uid" / cs.Int32ul,
    "gid" / cs.Int32ul,
    "mtime_ns" / cs.Int64ul,
).compile()
Device = cs.Struct("major" / cs.Int64ul, "minor" / cs.Int64ul).compile()
AclEntry = cs.Struct("id" / cs.Int64ul, "permissions" / cs.Int64ul).compile()
AclDefault = cs.Struct(
    "user_obj" / cs.Int64ul, "group_obj" / cs.Int64ul, "other" / cs.Int64ul, "mask" / cs.Int64ul
).compile()
PayloadRef = cs.Struct("offset" / cs.Int64ul, "size" / cs.Int64ul).compile()
U64 = cs.Int64ul

# Plain struct for the layouts handled once per item or entry: construct's compiled parser
# still builds a Container per call (about 15 us), and its builder takes over 100 us for a Stat,
# which dominated encoding small files.  tests/pxar/test_format.py checks that _STAT and Stat
# agree.  Item header: htype u64, full_size u64 (header included).  Goodbye slot: hash u64,
# offset u64 (back from the GOODBYE item), size u64.
_HEADER = struct.Struct("<QQ")
_GOODBYE_ITEM = struct.Struct("<QQQ")
_STAT = struct.Struct("<QQIIqII")


def pack_stat(mode: int, flags: int, uid: int, gid: int, mtime_secs: int, mtime_nanos: int) -> bytes:
    return _STAT.pack(mode, flags, uid, gid, mtime_secs, mtime_nanos, 0)


def unpack_stat(buf: bytes) -> tuple[int, int, int, int, int, int, int]:
    """(mode, flags, uid, gid, mtime_secs, mtime_nanos, padding) of a 40-byte ENTRY."""
    return _STAT.unpack(buf)


def pack_header(htype: int, content_size: int) -> bytes:
    return _HEADER.pack(htype, content_size + HEADER_SIZE)


def unpack_header(buf: bytes, pos: int = 0) -> tuple[int, int]:
    """(htype, full_size) of the item header at ``buf[pos:pos+16]``."""
    return _HEADER.unpack_from(buf, pos)


def pack_goodbye_item(hash_: int, offset: int, size: int) -> bytes:
    return _GOODBYE_ITEM.pack(hash_, offset, size)


def iter_goodbye_items(buf: bytes):
    """(hash, offset, size) of each 24-byte goodbye slot in ``buf``."""
    return _GOODBYE_ITEM.iter_unpack(buf)


def htype_name(htype: int) -> str:
    return HTYPE_NAMES.get(htype, f"unknown htype {htype:#018x}")


_MASK64 = 0xFFFFFFFFFFFFFFFF


def siphash24(k0: int, k1: int, data: bytes) -> int:
    """SipHash-2-4 of ``data`` with the 128-bit key given as two little-endian u64 halves."""
    # Rounds and rotations are written out inline: this runs once per file name when encoding
    # and decoding, and Python function calls would triple its cost.
    m = _MASK64
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    length = len(data)
    tail_start = length - (length % 8)
    words = [word for (word,) in struct.iter_unpack("<Q", data[:tail_start])]
    words.append((length & 0xFF) << 56 | int.from_bytes(data[tail_start:], "little"))
    for word in words:
        v3 ^= word
        for _ in range(2):
            v0 = (v0 + v1) & m
            v1 = ((v1 << 13) | (v1 >> 51)) & m ^ v0
            v0 = ((v0 << 32) | (v0 >> 32)) & m
            v2 = (v2 + v3) & m
            v3 = ((v3 << 16) | (v3 >> 48)) & m ^ v2
            v0 = (v0 + v3) & m
            v3 = ((v3 << 21) | (v3 >> 43)) & m ^ v0
            v2 = (v2 + v1) & m
            v1 = ((v1 << 17) | (v1 >> 47)) & m ^ v2
            v2 = ((v2 << 32) | (v2 >> 32)) & m
        v0 ^= word
    v2 ^= 0xFF
    for _ in range(4):
        v0 = (v0 + v1) & m
        v1 = ((v1 << 13) | (v1 >> 51)) & m ^ v0
        v0 = ((v0 << 32) | (v0 >> 32)) & m
        v2 = (v2 + v3) & m
        v3 = ((v3 << 16) | (v3 >> 48)) & m ^ v2
        v0 = (v0 + v3) & m
        v3 = ((v3 << 21) | (v3 >> 43)) & m ^ v0
        v2 = (v2 + v1) & m
        v1 = ((v1 << 17) | (v1 >> 47)) & m ^ v2
        v2 = ((v2 << 32) | (v2 >> 32)) & m
    return v0 ^ v1 ^ v2 ^ v3


@functools.lru_cache(maxsize=1 << 16)
def name_hash(name: bytes) -> int:
    """Goodbye-table hash of a file name (without its NUL).

    Cached: trees repeat names (``__init__.py``, ``Makefile``) and pure-Python SipHash is slow.
    """
    return siphash24(HASH_KEY_1, HASH_KEY_2, name)


def goodbye_permutation(count: int) -> list[int]:
    """Order of ``count`` hash-sorted items in a goodbye table: result[position] = sorted index.

    The table is an implicit binary search tree (children of slot i at 2i+1 and 2i+2) that is
    filled level by level, the last level from the left, so every subtree is as full as possible.
    """
    order = [0] * count

    def place(first: int, length: int, position: int, exponent: int) -> None:
        if length == 0:
            return
        full = 1 << exponent
        threshold = full + full // 2 - 1
        left = full - 1 if length > threshold else full - 1 - (threshold - length)
        order[position] = first + left
        place(first, left, 2 * position + 1, exponent - 1)
        place(first + left + 1, length - left - 1, 2 * position + 2, exponent - 1)

    if count:
        place(0, count, 0, count.bit_length() - 1)
    return order
