"""Garbage collection beside a running backup, and killed midway: nothing in use is lost."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.gc import garbage_collect
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.datastore.snapshot_admin import remove_snapshot
from tapefs.datastore.verify import verify_datastore
from tests.helpers.chunk_files import age_all_chunks, chunk_names
from tests.helpers.commands import command_path, tapefs
from tests.helpers.synthetic_snapshots import make_snapshot
from tests.helpers.trees import same_tree

TWO_DAYS = 2 * 86400
GROUP = BackupGroup(BackupNamespace(), "host", "a")

#: a writer holding the shared lock that re-inserts every chunk of a snapshot, as a backup of
#: unchanged data does, and reports when it is done
REINSERT = """
import sys
from tapefs.datastore.blob import encode_blob
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.datastore_lock import datastore_lock
store = Datastore.open(sys.argv[1])
pieces = [f"chunk {i} ".encode() * 20 for i in range(int(sys.argv[2]))]
import hashlib
with datastore_lock(store.root):
    print("locked", flush=True)
    sys.stdin.readline()
    for piece in pieces:
        store.chunk_store.insert(hashlib.sha256(piece).digest(), encode_blob(piece, compress=False))
print("done", flush=True)
"""


@pytest.mark.slow
def test_chunks_a_writer_reinserts_during_collection_survive(tmp_path):
    count = 4000
    store = Datastore.create(tmp_path / "store", prefix_dirs=False)
    old = BackupSnapshot(GROUP, 1_700_000_000)
    digests = make_snapshot(store, old, pieces=[f"chunk {i} ".encode() * 20 for i in range(count)])
    remove_snapshot(store, old)
    age_all_chunks(store, TWO_DAYS)
    writer = subprocess.Popen([sys.executable, "-c", REINSERT, str(store.root), str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "locked\n"
    writer.stdin.write("go\n")
    writer.stdin.flush()
    runs = 0
    while writer.poll() is None or runs == 0:
        result = garbage_collect(store)
        assert result.writers <= 1
        runs += 1
    assert writer.stdout.read() == "done\n" and writer.returncode == 0
    # everything the writer inserted is there: untouched garbage was removed and written again,
    # touched chunks were kept
    assert all(store.chunk_store.chunk_path(d).exists() for d in digests), runs
    assert not list(store.chunk_store.chunk_dir.rglob("*.removing"))


@pytest.mark.slow
def test_backup_during_collection_restores_identically(store, env, tmp_path):
    tree = tmp_path / "tree"
    rng = random.Random(5)
    for i in range(6):
        (tree / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (tree / f"d{i % 2}" / f"f{i}.bin").write_bytes(rng.randbytes(3 << 20))
    image = tmp_path / "disk.raw"
    image.write_bytes(rng.randbytes(24 << 20))
    tapefs("datastore", "backup", "main", "host/a", tree, image, env=env)
    datastore = Datastore.open(store)
    [first] = datastore.list_snapshots(GROUP)
    remove_snapshot(datastore, first.snapshot)
    age_all_chunks(datastore, TWO_DAYS)
    backup = subprocess.Popen([command_path("tapefs"), "datastore", "backup", "main", "host/a", str(tree), str(image)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    collections = []
    while backup.poll() is None or not collections:
        proc = tapefs("datastore", "gc", "main", "--output-format", "json", env=env, check=False)
        # a collection may find the previous one still finishing: that is the only excuse
        assert proc.returncode == 0 or "already running" in proc.stderr, proc.stderr
        collections.append(proc.returncode)
    out, err = backup.communicate()
    assert backup.returncode == 0, err
    [second] = datastore.list_snapshots(GROUP)
    tapefs("datastore", "restore", "main", second.snapshot, "root.pxar", tmp_path / "restored", env=env)
    same_tree(tree, tmp_path / "restored")
    tapefs("datastore", "restore", "main", second.snapshot, "disk.img", tmp_path / "disk.out", env=env)
    assert (tmp_path / "disk.out").read_bytes() == image.read_bytes()
    assert verify_datastore(datastore).ok


@pytest.mark.slow
def test_collection_killed_midway_then_rerun_loses_nothing(store, env):
    datastore = Datastore.open(store)
    keep = make_snapshot(datastore, BackupSnapshot(GROUP, 1_700_000_000), pieces=[f"keep {i} ".encode() * 9 for i in range(1500)])
    gone = BackupSnapshot(GROUP, 1_600_000_000)
    make_snapshot(datastore, gone, pieces=[f"gone {i} ".encode() * 9 for i in range(6000)])
    remove_snapshot(datastore, gone)
    age_all_chunks(datastore, TWO_DAYS)
    def chunk_count():
        return sum(len(os.listdir(d)) for d in datastore.chunk_store.chunk_dir.iterdir())

    total = chunk_count()
    for attempt in range(3):
        gc = subprocess.Popen([command_path("tapefs"), "datastore", "gc", "main"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # kill it once the sweep is under way
        deadline = time.monotonic() + 60
        while gc.poll() is None and chunk_count() > total - 500 * (attempt + 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(gc.pid, signal.SIGKILL)
        gc.wait()
        assert all(datastore.chunk_store.chunk_path(d).exists() or
                   datastore.chunk_store.chunk_path(d).with_name(d.hex() + ".removing").exists() for d in keep)
    tapefs("datastore", "gc", "main", env=env)
    assert chunk_names(datastore) == {d.hex() for d in keep}
    assert verify_datastore(datastore).ok
