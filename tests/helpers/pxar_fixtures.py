"""The PBS reference fixtures as the pxar tests read them: the generated tree description, the
oracle listing, and sources over fixture files."""

import hashlib
import json
import os
import stat
from pathlib import Path

from tapefs.pxar.entry import Acl, AclDefault, AclEntry, Metadata
from tapefs.pxar.source import BytesSource
from tests.helpers.pbs_reference import FIXTURES, GENERATED, ORACLE, UPSTREAM  # noqa: F401 - for the pxar tests


class CountingSource:
    """Wraps a source and counts the bytes and calls that reach it."""

    def __init__(self, inner):
        self.inner = inner
        self.size = inner.size
        self.bytes_read = 0
        self.calls = 0

    def read_at(self, offset, length):
        data = self.inner.read_at(offset, length)
        self.bytes_read += len(data)
        self.calls += 1
        return data


def load_bytes(path) -> BytesSource:
    return BytesSource(Path(path).read_bytes(), name=str(path))


def oracle_rows() -> list[dict]:
    with open(ORACLE / "tree-expected.jsonl", encoding="utf-8") as listing:
        return [json.loads(line) for line in listing]


def row_path(row: dict) -> bytes:
    return b"/".join(bytes.fromhex(part) for part in row["path"])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


GENERATED_MTIME = (1700000000, 123456789)


def generated_metadata(mode: int, uid: int = 0, gid: int = 0, **extra) -> Metadata:
    return Metadata(mode=mode, uid=uid, gid=gid, mtime_secs=GENERATED_MTIME[0], mtime_nanos=GENERATED_MTIME[1], **extra)


# The tree of generated/v1.pxar as the fixtures README describes it.
FCAPS_NET_RAW = bytes.fromhex("0100000200200000000000000000000000000000")
GENERATED_TREE = {
    b"": generated_metadata(stat.S_IFDIR | 0o755),
    b"a.txt": generated_metadata(stat.S_IFREG | 0o644, 1000, 1000, xattrs=[(b"user.comment", b"hello xattr")]),
    b"acl.txt": generated_metadata(
        stat.S_IFREG | 0o640, acl=Acl(users=(AclEntry(1000, 6),), groups=(AclEntry(100, 4),), group_obj=4)
    ),
    b"b": generated_metadata(
        stat.S_IFDIR | 0o2775,
        0,
        100,
        quota_project_id=42,
        acl=Acl(default=AclDefault(7, 5, 0), default_users=(AclEntry(1000, 7),)),
    ),
    b"b/c.bin": generated_metadata(stat.S_IFREG | 0o755, fcaps=FCAPS_NET_RAW),
    b"b/link": generated_metadata(stat.S_IFLNK | 0o777),
    b"dev": generated_metadata(stat.S_IFCHR | 0o666),
    b"fifo": generated_metadata(stat.S_IFIFO | 0o600),
    b"sock": generated_metadata(stat.S_IFSOCK | 0o755),
}
C_BIN = bytes(i % 256 for i in range(300))


def running_as_root() -> bool:
    return os.geteuid() == 0
