"""Garbage collection on real datastores: what is removed, what is kept, and why."""

import json
import os
import subprocess
import sys
import time

import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.datastore_lock import DatastoreLockedError, datastore_lock, lock_holders
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.gc import garbage_collect, load_gc_history
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.datastore.snapshot_admin import remove_snapshot
from tapefs.datastore.snapshot_lock import try_lock_directory
from tapefs.datastore.verify import verify_datastore
from tests.helpers.chunk_files import age_all_chunks, chunk_names
from tests.helpers.synthetic_snapshots import make_snapshot

GROUP = BackupGroup(BackupNamespace(), "host", "a")
OLD = BackupSnapshot(GROUP, 1_700_000_000)
NEW = BackupSnapshot(GROUP, 1_700_086_400)
TWO_DAYS = 2 * 86400


def pieces(tag: str, count: int) -> list[bytes]:
    return [f"{tag} chunk {i} ".encode() * 20 for i in range(count)]


@pytest.fixture
def store(tmp_path):
    datastore = Datastore.create(tmp_path / "store", prefix_dirs=False)
    shared = pieces("shared", 3)
    datastore.old_digests = make_snapshot(datastore, OLD, pieces=shared + pieces("old", 4))
    datastore.new_digests = make_snapshot(datastore, NEW, pieces=shared + pieces("new", 5))
    return datastore


def test_unreferenced_chunks_are_removed_after_the_grace_period(store):
    remove_snapshot(store, OLD)
    only_old = set(store.old_digests) - set(store.new_digests)
    age_all_chunks(store, TWO_DAYS)
    result = garbage_collect(store)
    assert (result.removed_chunks, result.disk_chunks, result.pending_chunks) == (4, 8, 0)
    assert result.index_file_count == 1 and result.missing_chunks == 0
    assert chunk_names(store) == {d.hex() for d in store.new_digests}
    assert all(not store.chunk_store.chunk_path(d).exists() for d in only_old)
    assert verify_datastore(store).ok
    assert result.dedup_factor == pytest.approx(result.index_data_bytes / result.disk_bytes)
    # every referenced chunk's atime was set now, its mtime left alone
    stat = store.chunk_store.chunk_path(store.new_digests[0]).stat()
    assert stat.st_atime > time.time() - 60 and stat.st_mtime < time.time() - TWO_DAYS + 60
    status = json.loads((store.root / ".gc-status").read_text())
    assert status["removed-chunks"] == 4 and status["disk-chunks"] == 8
    assert [entry.removed_chunks for entry in load_gc_history(store.root)] == [4]


def test_recently_used_garbage_is_only_pending(store):
    remove_snapshot(store, OLD)
    age_all_chunks(store, 3600)
    result = garbage_collect(store)
    assert (result.removed_chunks, result.pending_chunks, result.disk_chunks) == (0, 4, 8)
    assert garbage_collect(store, atime_cutoff_minutes=30).removed_chunks == 4
    assert verify_datastore(store).ok


def unfinish(store: Datastore, snapshot: BackupSnapshot) -> None:
    """Make a snapshot look half written: no manifest, a temp index."""
    snapshot_dir = store.snapshot_path(snapshot)
    (snapshot_dir / "index.json.blob").unlink()
    (snapshot_dir / "data.pxar.didx").rename(snapshot_dir / "data.pxar.tmp_didx")


def test_index_of_a_running_backup_keeps_its_chunks(store):
    unfinish(store, OLD)
    age_all_chunks(store, TWO_DAYS)
    writer_lock = try_lock_directory(store.snapshot_path(OLD))  # what a running backup holds
    try:
        result = garbage_collect(store)
    finally:
        os.close(writer_lock)
    assert result.removed_chunks == 0 and result.index_file_count == 1 and result.removed_unfinished == []
    assert chunk_names(store) == {d.hex() for d in store.old_digests + store.new_digests}


def test_a_killed_backups_leftover_is_removed_and_its_own_chunks_with_it(store):
    unfinish(store, OLD)  # no process holds its lock: the backup that wrote it is gone
    age_all_chunks(store, TWO_DAYS)
    result = garbage_collect(store)
    assert result.removed_unfinished == [str(OLD)] and not store.snapshot_path(OLD).exists()
    assert chunk_names(store) == {d.hex() for d in store.new_digests}
    assert result.removed_chunks == len(set(store.old_digests) - set(store.new_digests))


def test_bad_copies_and_temp_files(store):
    chunk_dir = store.chunk_store.chunk_dir
    good = store.chunk_store.chunk_path(store.new_digests[0])
    (good.parent / f"{good.name}.0.bad").write_bytes(b"corrupt")          # good again: removed
    orphan = "ab" * 32
    (chunk_dir / orphan[:4]).mkdir(exist_ok=True)
    (chunk_dir / orphan[:4] / f"{orphan}.0.bad").write_bytes(b"x")        # unreferenced, old: removed
    (chunk_dir / orphan[:4] / f"{orphan}.tmp_k3j2h1").write_bytes(b"x")   # stale temp: removed
    age_all_chunks(store, TWO_DAYS)
    (chunk_dir / orphan[:4] / f"{orphan}.tmp_fresh1").write_bytes(b"x")   # being written: kept
    result = garbage_collect(store)
    assert (result.removed_bad, result.removed_temp, result.removed_chunks) == (2, 1, 0)
    assert sorted(p.name for p in (chunk_dir / orphan[:4]).iterdir()) == [f"{orphan}.tmp_fresh1"]


def test_missing_chunk_is_reported_and_its_bad_copy_kept(store):
    path = store.chunk_store.chunk_path(store.new_digests[-1])
    path.rename(path.with_name(path.name + ".0.bad"))
    age_all_chunks(store, TWO_DAYS)
    result = garbage_collect(store)
    assert result.missing_chunks == 1 and result.missing_examples == [path.name]
    assert result.still_bad == 1 and path.with_name(path.name + ".0.bad").exists()


def test_interrupted_collection_is_repaired_by_the_next(store):
    """What kill -9 between set-aside and delete leaves: the next run restores what is used."""
    remove_snapshot(store, OLD)
    age_all_chunks(store, TWO_DAYS)
    used = store.chunk_store.chunk_path(store.new_digests[0])
    unused = store.chunk_store.chunk_path(store.old_digests[-1])
    used.rename(used.with_name(used.name + ".removing"))
    unused.rename(unused.with_name(unused.name + ".removing"))
    result = garbage_collect(store)
    assert result.missing_chunks == 0 and used.exists() and not unused.exists()
    assert not list(store.chunk_store.chunk_dir.rglob("*.removing"))
    assert verify_datastore(store).ok


def test_damaged_index_stops_the_collection_before_any_removal(store):
    remove_snapshot(store, OLD)
    age_all_chunks(store, TWO_DAYS)
    before = chunk_names(store)
    (store.snapshot_path(NEW) / "data.pxar.didx").write_bytes(b"garbage")
    with pytest.raises(DatastoreError, match="not a readable index; garbage collection stopped"):
        garbage_collect(store)
    assert chunk_names(store) == before


def hold_lock(root, mode: str) -> subprocess.Popen:
    code = (f"import fcntl, os, sys, time\nfd = os.open({str(root / '.lock')!r}, os.O_RDWR)\n"
            f"fcntl.{'lockf' if mode != 'flock' else 'flock'}(fd, fcntl.LOCK_{'EX' if mode != 'shared' else 'SH'})\n"
            "print('locked', flush=True)\ntime.sleep(60)\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "locked\n"
    return process


def test_locks(store):
    """PBS's collection (exclusive lockf) and a second tapefs collection (flock) keep us out;
    a backup (shared lockf) does not, but moves the cut-off before its start."""
    for mode, message in (("exclusive", "locked exclusively"), ("flock", "garbage collection is already running")):
        holder = hold_lock(store.root, mode)
        try:
            with pytest.raises(DatastoreLockedError, match=message):
                garbage_collect(store)
        finally:
            holder.kill()
            holder.wait()
    writer = hold_lock(store.root, "shared")
    try:
        [holder] = lock_holders(store.root)
        assert holder.pid == writer.pid and time.time() - 60 < holder.started <= time.time()
        result = garbage_collect(store, atime_cutoff_minutes=0)
        assert result.writers == 1 and result.cutoff <= holder.started - 300
    finally:
        writer.kill()
        writer.wait()
    with datastore_lock(store.root):
        assert lock_holders(store.root) == []  # our own lock does not count
