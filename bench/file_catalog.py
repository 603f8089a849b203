"""How fast a snapshot's pxar tree goes into the file catalog, and how much room and memory it takes.

    .venv/bin/python bench/file_catalog.py [--entries N] [--version 1|2] [--workdir DIR] [--keep]

Builds a datastore snapshot whose `root.pxar` has N entries (default 1,000,000: directories of
1000 small files, with symlinks and hardlinks among them), made in memory with the pxar Encoder
and stored through the datastore's chunking writer, then times `record_datastore_snapshot` in a
fresh child process, so its peak RSS is the recording's alone, and times a few lookups.
`make_big_snapshot` is meant for reuse by other benchmarks.
"""

import argparse
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tapefs.catalog.file_catalog import FileCatalog  # noqa: E402
from tapefs.catalog.file_catalog_builder import record_datastore_snapshot  # noqa: E402
from tapefs.datastore.chunk_uploader import ChunkUploader  # noqa: E402
from tapefs.datastore.chunker import PXAR_AVERAGE_CHUNK_SIZE  # noqa: E402
from tapefs.datastore.chunking_writer import ChunkingWriter  # noqa: E402
from tapefs.datastore.datastore import Datastore  # noqa: E402
from tapefs.datastore.manifest import Manifest  # noqa: E402
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot  # noqa: E402
from tapefs.pxar.encoder import Encoder  # noqa: E402
from tapefs.pxar.entry import Metadata  # noqa: E402

DIRECTORY_MODE = 0o40755
FILE_MODE = 0o100644
SYMLINK_MODE = 0o120777
#: every SYMLINK_EVERY-th entry of a directory is a symlink, every HARDLINK_EVERY-th a hardlink
SYMLINK_EVERY = 100
HARDLINK_EVERY = 500


def _encode_tree(encoder: Encoder, entries: int, files_per_directory: int, mtime: int) -> None:
    """`entries` entries in total (the root included): directories `dNNNNNN` of small files
    `fNNNNN`, every SYMLINK_EVERY-th a symlink to the first file, every HARDLINK_EVERY-th a
    hardlink to it."""
    count = 1
    directory = 0
    while count < entries:
        name = f"d{directory:06d}"
        encoder.begin_directory(name, Metadata(mode=DIRECTORY_MODE, mtime_secs=mtime))
        count += 1
        first_file = None
        for index in range(min(files_per_directory, entries - count)):
            child = f"f{index:05d}"
            if first_file is not None and index % HARDLINK_EVERY == 0:
                encoder.add_hardlink(child, f"{name}/f00000", first_file)
            elif first_file is not None and index % SYMLINK_EVERY == 0:
                encoder.add_symlink(child, Metadata(mode=SYMLINK_MODE, mtime_secs=mtime), "f00000")
            else:
                content = b"%d\n" % (count % 997)
                offset = encoder.add_file(child, Metadata(mode=FILE_MODE, uid=1000, gid=1000, mtime_secs=mtime,
                                                          mtime_nanos=index), len(content), content)
                if first_file is None:
                    first_file = offset
            count += 1
        encoder.end_directory()
        directory += 1


def make_big_snapshot(datastore: Datastore, entries: int = 1_000_000, version: int = 1,
                      backup_id: str = "bench", backup_time: int | None = None,
                      files_per_directory: int = 1000) -> BackupSnapshot:
    """A finished snapshot `host/<backup_id>/<time>` of `datastore` with one pxar archive
    `root.pxar` (v1: root.pxar.didx; v2: root.mpxar.didx + root.ppxar.didx) of `entries` entries."""
    if version not in (1, 2):
        raise ValueError(f"pxar version {version}: 1 or 2")
    backup_time = int(time.time()) if backup_time is None else backup_time
    snapshot = BackupSnapshot(BackupGroup(BackupNamespace(), "host", backup_id), backup_time)
    directory = datastore.create_snapshot_dir(snapshot)
    manifest = Manifest("host", backup_id, backup_time)
    with ChunkUploader(datastore.chunk_store) as uploader:
        if version == 1:
            with ChunkingWriter(uploader, directory / "root.pxar.didx", PXAR_AVERAGE_CHUNK_SIZE, sync=False) as out:
                encoder = Encoder(out, Metadata(mode=DIRECTORY_MODE, mtime_secs=backup_time))
                _encode_tree(encoder, entries, files_per_directory, backup_time)
                encoder.finish()
                results = {"root.pxar.didx": out.finish()}
        else:
            with ChunkingWriter(uploader, directory / "root.mpxar.didx", PXAR_AVERAGE_CHUNK_SIZE, sync=False) as meta, \
                    ChunkingWriter(uploader, directory / "root.ppxar.didx", PXAR_AVERAGE_CHUNK_SIZE, sync=False) as payload:
                encoder = Encoder(meta, Metadata(mode=DIRECTORY_MODE, mtime_secs=backup_time), payload_out=payload)
                _encode_tree(encoder, entries, files_per_directory, backup_time)
                encoder.finish()
                results = {"root.mpxar.didx": meta.finish(), "root.ppxar.didx": payload.finish()}
    for name, result in results.items():
        manifest.add_file(name, result.size, result.index_csum)
    manifest.save(directory)
    return snapshot


def _record(status_dir: str, store_root: str, snapshot: BackupSnapshot, results) -> None:
    datastore = Datastore.open(store_root)
    with FileCatalog.open(status_dir) as catalog:
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        record_datastore_snapshot(catalog, datastore, snapshot, str(snapshot))
        elapsed, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
        count = catalog.entry_count()
    results.put((elapsed, cpu, count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _time_queries(status_dir: Path, snapshot: BackupSnapshot) -> None:
    with FileCatalog.open(status_dir) as catalog:
        archive = catalog.archives(catalog.snapshot_id("store", str(snapshot)))[0]
        directories = catalog.children(archive.root_entry, limit=100)
        started = time.perf_counter()
        lookups = 0
        for directory in directories:
            for index in range(0, 1000, 7):
                catalog.lookup(directory.id, f"f{index:05d}".encode())
                lookups += 1
        lookup_time = time.perf_counter() - started
        started = time.perf_counter()
        listed = 0
        for directory in directories:
            after = 0
            while page := catalog.children(directory.id, after, 100):
                listed += len(page)
                after = page[-1].id
        children_time = time.perf_counter() - started
    print(f"lookup:   {lookup_time / lookups * 1e6:7.1f} µs per name ({lookups} lookups)")
    print(f"children: {children_time / listed * 1e6:7.1f} µs per entry listed in pages of 100 ({listed} entries)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--version", type=int, choices=(1, 2), default=1, help="pxar format version")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a new one in /var/tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tapefs-bench-catalog-", dir="/var/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        datastore = Datastore.create(workdir / "store", "store", prefix_dirs=False)
        started = time.perf_counter()
        snapshot = make_big_snapshot(datastore, args.entries, args.version)
        print(f"snapshot with {args.entries} entries (pxar v{args.version}) made in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        status_dir = workdir / "status"
        results = multiprocessing.get_context("spawn").Queue()
        child = multiprocessing.get_context("spawn").Process(
            target=_record, args=(str(status_dir), str(datastore.root), snapshot, results))
        child.start()
        elapsed, cpu, count, peak_kib = results.get()
        child.join()
        size = sum(path.stat().st_size for path in status_dir.iterdir())
        # On a shared machine the CPU seconds say what recording costs, the wall time what the box gave it.
        print(f"recorded: {count} entries in {elapsed:.1f} s = {count / elapsed:,.0f} entries/s "
              f"(cpu {cpu:.1f} s; load average {os.getloadavg()[0]:.1f})")
        print(f"database: {size / 2**20:.1f} MiB ({size / count:.0f} bytes per entry)")
        print(f"peak RSS of the recording process: {peak_kib / 1024:.0f} MiB")
        _time_queries(status_dir, snapshot)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
