import json

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.gc import garbage_collect
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.datastore.status import datastore_status
from tapefs.datastore.verify import verify_datastore
from tests.helpers.commands import tapefs
from tests.helpers.synthetic_snapshots import make_snapshot


def fill(datastore: Datastore) -> None:
    group = BackupGroup(BackupNamespace.parse("a"), "vm", "1")
    make_snapshot(datastore, BackupSnapshot(group, 100), pieces=[b"one" * 50, b"two" * 50])
    make_snapshot(datastore, BackupSnapshot(group, 200), pieces=[b"one" * 50], protected=True)
    make_snapshot(datastore, BackupSnapshot(group, 300), finished=False)


def test_status_counts_and_records(tmp_path):
    datastore = Datastore.create(tmp_path / "store", prefix_dirs=False)
    fill(datastore)
    status = datastore_status(datastore)
    assert (status.namespaces, status.groups, status.snapshots, status.protected_snapshots,
            status.unfinished_snapshots, status.chunks) == (2, 1, 2, 1, 1, 2)
    assert status.last_verify is None and status.gc_history == []
    assert 0 < status.available_bytes <= status.total_bytes
    verify_datastore(datastore)
    for _ in range(3):
        garbage_collect(datastore)
    status = datastore_status(datastore)
    assert status.last_verify["ok"] is True and status.last_verify["chunks"] == 2
    assert [entry.disk_chunks for entry in status.gc_history] == [2, 2, 2]
    assert status.to_json()["last-gc"]["index-file-count"] == 2


def test_status_command(store, env):
    fill(Datastore.open(store))
    text = tapefs("datastore", "status", "main", env=env).stdout
    assert "contents: 2 namespaces, 1 groups, 2 snapshots (1 protected, 1 unfinished), 2 chunks" in text
    assert "last verify: never" in text
    tapefs("datastore", "gc", "main", env=env)  # also removes the unfinished snapshot: no backup holds it
    [status] = json.loads(tapefs("datastore", "status", "--output-format", "json", env=env).stdout)
    assert status["name"] == "main" and status["snapshots"] == 2 and status["last-gc"]["disk-chunks"] == 2
    assert status["unfinished-snapshots"] == 0 and status["last-verify"] is None
