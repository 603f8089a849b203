"""What a datastore holds and how its maintenance went: space, groups, snapshots, chunks, the
last garbage collection with its history, and the last verify.

The last verify is recorded in ``.verify-status`` in the datastore's root (next to PBS's
``.gc-status``), so the figures travel with the datastore whoever runs the commands.
"""

import json
import logging
import os
import time
from dataclasses import dataclass, field

from tapefs.config.atomic_file import atomic_write
from tapefs.datastore.chunk_store import CHUNK_FILE_NAME
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.gc import GcResult, load_gc_history
from tapefs.datastore.snapshot_admin import PROTECTED_FILE_NAME

log = logging.getLogger(__name__)

VERIFY_STATUS_FILE_NAME = ".verify-status"


def record_verify(
    datastore: Datastore, ok: bool, snapshots: int, chunks: int, bad_chunks: int, snapshot_errors: int
) -> None:
    """Remember a verify run; a datastore we may not write to just goes unrecorded."""
    value = {
        "time": int(time.time()),
        "ok": ok,
        "snapshots": snapshots,
        "chunks": chunks,
        "bad-chunks": bad_chunks,
        "snapshot-errors": snapshot_errors,
    }
    try:
        atomic_write(datastore.root / VERIFY_STATUS_FILE_NAME, json.dumps(value, indent=2).encode())
    except OSError as exc:
        log.warning("cannot record the verify result in %s: %s", datastore.root, exc)


def last_verify(datastore: Datastore) -> dict | None:
    try:
        return json.loads((datastore.root / VERIFY_STATUS_FILE_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


@dataclass
class DatastoreStatus:
    name: str
    path: str
    total_bytes: int
    used_bytes: int
    available_bytes: int
    namespaces: int = 0
    groups: int = 0
    snapshots: int = 0
    unfinished_snapshots: int = 0
    protected_snapshots: int = 0
    chunks: int = 0
    last_verify: dict | None = None
    gc_history: list[GcResult] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "path": self.path,
            "total-bytes": self.total_bytes,
            "used-bytes": self.used_bytes,
            "available-bytes": self.available_bytes,
            "namespaces": self.namespaces,
            "groups": self.groups,
            "snapshots": self.snapshots,
            "unfinished-snapshots": self.unfinished_snapshots,
            "protected-snapshots": self.protected_snapshots,
            "chunks": self.chunks,
            "last-gc": self.gc_history[-1].to_json() if self.gc_history else None,
            "last-verify": self.last_verify,
            "gc-history": [entry.to_json() for entry in self.gc_history],
        }


def count_chunks(datastore: Datastore) -> int:
    count = 0
    with os.scandir(datastore.chunk_store.chunk_dir) as prefixes:
        for prefix in prefixes:
            if prefix.is_dir(follow_symlinks=False):
                count += sum(1 for name in os.listdir(prefix.path) if CHUNK_FILE_NAME.fullmatch(name))
    return count


def datastore_status(datastore: Datastore) -> DatastoreStatus:
    space = os.statvfs(datastore.root)
    total = space.f_blocks * space.f_frsize
    status = DatastoreStatus(
        datastore.name,
        str(datastore.root),
        total,
        total - space.f_bfree * space.f_frsize,
        space.f_bavail * space.f_frsize,
    )
    for namespace in datastore.list_namespaces():
        status.namespaces += 1
        for group in datastore.list_groups(namespace):
            status.groups += 1
            for info in datastore.list_snapshots(group, include_unfinished=True):
                if not info.finished:
                    status.unfinished_snapshots += 1
                    continue
                status.snapshots += 1
                status.protected_snapshots += (info.path / PROTECTED_FILE_NAME).exists()
    status.chunks = count_chunks(datastore)
    status.last_verify = last_verify(datastore)
    status.gc_history = load_gc_history(datastore.root)
    return status
