"""Datastore maintenance speed: garbage collection over many chunks, and sync of a large snapshot.

    .venv/bin/python bench/datastore_gc.py [--dir /var/tmp/tapefs-bench-gc] [--chunks 1000000] [--sync-gib 2]

GC: a datastore with ``--chunks`` small chunks, half of them named by snapshot indexes, all
last used two days ago; the collection (in a child process, so its peak RSS is its own) marks
the used half and removes the rest. Goals (issue 14): under 60 s for 1,000,000 chunks on a
2-core machine, peak RSS under 200 MB.

Sync: a snapshot of ``--sync-gib`` GiB of random data in 4 MiB chunks, half of whose chunks the
target already has; prints the rate of new data and the chunks copied. Goals: at least 300 MB/s
for new data, nothing copied for chunks already present.

Setup is not timed; the scratch directory is removed at the end.
"""

import argparse
import hashlib
import os
import resource
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

from tapefs.datastore.blob import encode_blob
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.dynamic_index import DynamicIndexWriter
from tapefs.datastore.fixed_index import FixedIndexWriter
from tapefs.datastore.manifest import MANIFEST_BLOB_NAME, Manifest
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot

MIB = 1 << 20
CHUNKS_PER_SNAPSHOT = 50_000
TWO_DAYS = 2 * 86400

CHILD_GC = """
import json, sys
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.gc import garbage_collect
result = garbage_collect(Datastore.open(sys.argv[1]))
print(json.dumps(result.to_json()))
"""

CHILD_SYNC = """
import json, sys
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.sync import sync_datastores
stats = sync_datastores(Datastore.open(sys.argv[1]), Datastore.open(sys.argv[2]))
print(json.dumps(stats.to_json()))
"""


def run_child(code: str, *args: str) -> tuple[dict, float, float]:
    """(its JSON output, wall seconds, peak RSS in MB)."""
    import json
    started = time.monotonic()
    output = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True).stdout
    seconds = time.monotonic() - started
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return json.loads(output), seconds, peak_rss_mb


def write_chunk(chunk_dir: Path, data: bytes, atime: float) -> bytes:
    digest = hashlib.sha256(data).digest()
    hex_digest = digest.hex()
    path = chunk_dir / hex_digest[:4] / hex_digest
    path.write_bytes(encode_blob(data, compress=False))
    os.utime(path, (atime, atime))
    return digest


def make_gc_store(root: Path, chunk_count: int) -> Datastore:
    store = Datastore.create(root)
    old = time.time() - TWO_DAYS
    group = BackupGroup(BackupNamespace(), "host", "bench")
    used = []
    for number in range(chunk_count):
        digest = write_chunk(store.chunk_store.chunk_dir, struct.pack("<Q", number) * 4, old)
        if number % 2 == 0:
            used.append(digest)
    for first in range(0, len(used), CHUNKS_PER_SNAPSHOT):
        snapshot = BackupSnapshot(group, 1_700_000_000 + first)
        path = store.create_snapshot_dir(snapshot)
        with DynamicIndexWriter(path / "data.pxar.didx", sync=False) as index:
            for offset, digest in enumerate(used[first:first + CHUNKS_PER_SNAPSHOT], start=1):
                index.add_chunk(offset * 32, digest)
            csum = index.close()
        manifest = Manifest("host", "bench", snapshot.backup_time)
        manifest.add_file("data.pxar.didx", min(CHUNKS_PER_SNAPSHOT, len(used) - first) * 32, csum)
        (path / MANIFEST_BLOB_NAME).write_bytes(manifest.encode())
    return store


def make_sync_stores(root: Path, size: int) -> tuple[Datastore, Datastore]:
    source = Datastore.create(root / "source", prefix_dirs=False)
    target = Datastore.create(root / "target", prefix_dirs=False)
    snapshot = BackupSnapshot(BackupGroup(BackupNamespace(), "vm", "100"), 1_700_000_000)
    path = source.create_snapshot_dir(snapshot)
    with FixedIndexWriter(path / "drive-scsi0.img.fidx", 4 * MIB, sync=False) as index:
        for number in range(size // (4 * MIB)):
            data = os.urandom(4 * MIB)
            digest = hashlib.sha256(data).digest()
            encoded = encode_blob(data, compress=False)
            source.chunk_store.insert(digest, encoded)
            if number % 2 == 0:
                target.chunk_store.insert(digest, encoded)
            index.add_digest(digest)
        csum = index.close(size)
    manifest = Manifest("vm", "100", snapshot.backup_time)
    manifest.add_file("drive-scsi0.img.fidx", size, csum)
    (path / MANIFEST_BLOB_NAME).write_bytes(manifest.encode())
    os.sync()
    return source, target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/tapefs-bench-gc"))
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--sync-gib", type=float, default=2.0)
    args = parser.parse_args()
    if args.chunks < 2 or args.sync_gib <= 0:
        parser.error("--chunks must be at least 2 and --sync-gib positive")
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    try:
        print(f"cpus: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}")
        started = time.monotonic()
        make_gc_store(args.dir / "gc", args.chunks)
        print(f"gc setup: {args.chunks} chunks in {time.monotonic() - started:.0f} s")
        os.sync()
        result, seconds, rss = run_child(CHILD_GC, str(args.dir / "gc"))
        print(f"gc           {args.chunks:9d} chunks   {seconds:6.1f} s   peak RSS {rss:5.0f} MB   "
              f"(mark {result['mark-seconds']:.1f} s, sweep {result['seconds'] - result['mark-seconds']:.1f} s)   "
              f"removed {result['removed-chunks']}, kept {result['disk-chunks']}")
        shutil.rmtree(args.dir / "gc")

        size = int(args.sync_gib * 1024) * MIB // (4 * MIB) * (4 * MIB)
        make_sync_stores(args.dir / "sync", size)
        stats, seconds, _ = run_child(CHILD_SYNC, str(args.dir / "sync" / "source"), str(args.dir / "sync" / "target"))
        new_bytes = stats["chunk-bytes-copied"]
        print(f"sync         {size / MIB:9.0f} MiB      {stats['seconds']:6.1f} s   "
              f"{new_bytes / stats['seconds'] / 1e6:5.0f} MB/s of new data   "
              f"{stats['chunks-copied']} chunks copied ({new_bytes / MIB:.0f} MiB), {stats['chunks-present']} present "
              f"(not copied)")
    finally:
        shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
