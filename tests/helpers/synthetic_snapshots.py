"""Snapshots made directly on disk (a manifest, no archives): fast histories for prune tests."""

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.manifest import MANIFEST_BLOB_NAME, Manifest
from tapefs.datastore.naming import BackupSnapshot


def make_snapshot(datastore: Datastore, snapshot: BackupSnapshot, finished: bool = True, protected: bool = False) -> None:
    path = datastore.create_snapshot_dir(snapshot)
    group = snapshot.group
    if finished:
        (path / MANIFEST_BLOB_NAME).write_bytes(Manifest(group.backup_type, group.backup_id, snapshot.backup_time).encode())
    if protected:
        (path / ".protected").touch()
