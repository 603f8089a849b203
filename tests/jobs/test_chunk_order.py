"""`chunk-order` of a tape backup on a real vtape library: by default the chunks of each index
reach the tape sorted by the inode of their chunk files (PBS's default), with `none` in index
order; the option on the command line and in tape-job.cfg."""
import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupSnapshot
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.jobs.snapshot_files import snapshot_digests
from tapefs.media.tape_config import load_tape_job
from tests.helpers.commands import tapefs
from tests.helpers.synthetic_snapshots import make_snapshot, store_chunks
from tests.helpers.tape_jobs import read_tape, run_backup
from tests.helpers.tape_setup import add_cartridges

pytestmark = pytest.mark.vtape


def test_chunks_reach_the_tape_in_inode_order_or_index_order(tape_setup):
    pieces = [n.to_bytes(2, "little") * 100 for n in range(60)]
    store_chunks(tape_setup.datastore, pieces[::-1])  # inode order is the reverse of index order
    snapshot = BackupSnapshot.parse("host/a/2024-01-01T00:00:00Z")
    digests = make_snapshot(tape_setup.datastore, snapshot, pieces=pieces)
    add_cartridges(tape_setup.library, 2, "64MiB", "4MiB")
    tape_setup.label("SM0001L8")
    tape_setup.label("SM0002L8", pool="other")
    run_backup(tape_setup, "daily")
    run_backup(tape_setup, "other", chunk_order="none")
    by_inode = snapshot_digests(tape_setup.datastore, snapshot, "inode")
    assert by_inode != digests
    for label, expected in (("SM0001L8", by_inode), ("SM0002L8", digests)):
        [(kind, _, on_tape)] = [entry for entry in read_tape(tape_setup, label).values() if entry[0] == "chunk"]
        assert on_tape == expected, label


def test_chunk_order_option_and_job_property(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEFS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TAPEFS_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "config").mkdir()
    Datastore.create(tmp_path / "store", prefix_dirs=False)
    DatastoreRegistry().add("store", tmp_path / "store")
    (tmp_path / "config" / "media-pool.cfg").write_text("pool: daily\n")
    (tmp_path / "config" / "tape.cfg").write_text("lto: drive0\n\tpath /dev/null\n")
    bad = tapefs("backup", "store", "daily", "--drive", "drive0", "--chunk-order", "random", check=False)
    assert bad.returncode == 2 and "Invalid value for '--chunk-order'" in bad.stderr
    tapefs("backup-job", "create", "nightly", "--store", "store", "--pool", "daily", "--drive", "drive0",
           "--chunk-order", "none")
    path = tmp_path / "config" / "tape-job.cfg"
    assert "\tchunk-order none\n" in path.read_text()
    assert load_tape_job("nightly").chunk_order == "none"
    path.write_text(path.read_text().replace("chunk-order none", "chunk-order size"))
    done = tapefs("backup-job", "run", "nightly", check=False)
    assert done.returncode == 2
    assert done.stderr.strip().endswith("property 'chunk-order': expected one of inode, none, got 'size'")
