"""Changes to one snapshot or group: forget, protect, notes and owner, in PBS's places.

* A snapshot is protected by an empty ``.protected`` file in its directory; a protected
  snapshot cannot be forgotten or pruned.
* Group notes are the ``notes`` file in the group directory; snapshot notes are the key
  ``notes`` of the manifest's ``unprotected`` object, which the signature does not cover, so
  notes of signed snapshots can change without the key.
* The owner is the first line of the group's ``owner`` file (an Authid: ``user@realm`` or
  ``user@realm!token``).

A forgotten snapshot is first renamed to a hidden name and then deleted: a crash midway leaves
no half snapshot that listings would show; the next forget in that group removes the rest.
"""

import logging
import os
import re
import shutil
from pathlib import Path

from tapefs.config.atomic_file import atomic_write
from tapefs.datastore.datastore import OWNER_FILE_NAME, Datastore
from tapefs.datastore.datastore_lock import lock_holders
from tapefs.datastore.errors import DatastoreError, UnknownNameError
from tapefs.datastore.manifest import MANIFEST_BLOB_NAME, Manifest
from tapefs.datastore.naming import BackupGroup, BackupSnapshot

log = logging.getLogger(__name__)

PROTECTED_FILE_NAME = ".protected"
NOTES_FILE_NAME = "notes"
MANIFEST_NOTES_KEY = "notes"
#: a snapshot directory being deleted: ``.<time>.removing``
REMOVING_SUFFIX = ".removing"
AUTH_ID = re.compile(r"[^\s:/@!]+@[A-Za-z0-9_][A-Za-z0-9._\-]*(![A-Za-z0-9_][A-Za-z0-9._\-]*)?")


class SnapshotProtectedError(DatastoreError):
    pass


def describe_snapshot(snapshot: BackupSnapshot) -> str:
    namespace = snapshot.group.namespace
    return f"{snapshot} (namespace {namespace})" if not namespace.is_root else str(snapshot)


def describe_group(group: BackupGroup) -> str:
    return f"{group} (namespace {group.namespace})" if not group.namespace.is_root else str(group)


def _existing_snapshot_dir(datastore: Datastore, snapshot: BackupSnapshot) -> Path:
    path = datastore.snapshot_path(snapshot)
    if not path.is_dir():
        raise UnknownNameError(f"snapshot {describe_snapshot(snapshot)} not found in datastore {datastore.name}")
    return path


def _existing_group_dir(datastore: Datastore, group: BackupGroup) -> Path:
    path = datastore.group_path(group)
    if not path.is_dir():
        raise UnknownNameError(f"group {describe_group(group)} not found in datastore {datastore.name}")
    return path


def is_protected(datastore: Datastore, snapshot: BackupSnapshot) -> bool:
    return (datastore.snapshot_path(snapshot) / PROTECTED_FILE_NAME).exists()


def set_protected(datastore: Datastore, snapshot: BackupSnapshot, protected: bool) -> None:
    marker = _existing_snapshot_dir(datastore, snapshot) / PROTECTED_FILE_NAME
    if protected:
        marker.touch()
        datastore.upload_content(marker)
    else:
        marker.unlink(missing_ok=True)
        datastore.delete_content(marker)


def writer_running(datastore: Datastore) -> bool:
    """Whether a backup or sync holds the datastore lock (its snapshot may be unfinished yet)."""
    return bool(lock_holders(datastore.root))


def remove_leftovers(group_dir: Path) -> None:
    """Finish deleting snapshots whose removal was interrupted."""
    try:
        names = os.listdir(group_dir)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith(".") and name.endswith(REMOVING_SUFFIX):
            shutil.rmtree(group_dir / name, ignore_errors=True)


def remove_snapshot(datastore: Datastore, snapshot: BackupSnapshot) -> None:
    """Forget one snapshot. Refused if it is protected, or unfinished while a writer runs
    (it may be the snapshot that writer is making)."""
    path = _existing_snapshot_dir(datastore, snapshot)
    if (path / PROTECTED_FILE_NAME).exists():
        raise SnapshotProtectedError(f"snapshot {describe_snapshot(snapshot)} is protected; unprotect it first")
    if not (path / MANIFEST_BLOB_NAME).exists() and writer_running(datastore):
        raise DatastoreError(
            f"snapshot {describe_snapshot(snapshot)} is unfinished and a backup is running "
            "in this datastore; try again when it has ended"
        )
    remove_leftovers(path.parent)
    # the bucket first: objects it refuses to delete (object lock) leave the snapshot listed
    datastore.delete_content(path)
    doomed = path.with_name(f".{path.name}{REMOVING_SUFFIX}")
    os.rename(path, doomed)
    shutil.rmtree(doomed)
    log.info("removed snapshot %s", describe_snapshot(snapshot))


def group_notes(datastore: Datastore, group: BackupGroup) -> str:
    try:
        return (_existing_group_dir(datastore, group) / NOTES_FILE_NAME).read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def set_group_notes(datastore: Datastore, group: BackupGroup, notes: str) -> None:
    """Empty notes remove the file, as PBS does."""
    path = _existing_group_dir(datastore, group) / NOTES_FILE_NAME
    if notes:
        atomic_write(path, notes.encode("utf-8"))
        datastore.upload_content(path)
    else:
        path.unlink(missing_ok=True)
        datastore.delete_content(path)


def _finished_manifest(datastore: Datastore, snapshot: BackupSnapshot) -> tuple[Path, Manifest]:
    path = _existing_snapshot_dir(datastore, snapshot)
    return path, datastore.load_manifest(snapshot)


def snapshot_notes(datastore: Datastore, snapshot: BackupSnapshot) -> str:
    notes = _finished_manifest(datastore, snapshot)[1].unprotected.get(MANIFEST_NOTES_KEY, "")
    return notes if isinstance(notes, str) else ""


def set_snapshot_notes(datastore: Datastore, snapshot: BackupSnapshot, notes: str) -> None:
    """Rewrite the manifest with new notes; everything the signature covers stays as it was."""
    path, manifest = _finished_manifest(datastore, snapshot)
    if notes:
        manifest.unprotected[MANIFEST_NOTES_KEY] = notes
    else:
        manifest.unprotected.pop(MANIFEST_NOTES_KEY, None)
    manifest.save(path)
    datastore.upload_content(path / MANIFEST_BLOB_NAME)


def group_owner(datastore: Datastore, group: BackupGroup) -> str:
    path = _existing_group_dir(datastore, group) / OWNER_FILE_NAME
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatastoreError(f"group {describe_group(group)} has no owner file") from None
    return lines[0].strip() if lines else ""


def set_group_owner(datastore: Datastore, group: BackupGroup, owner: str) -> None:
    if not AUTH_ID.fullmatch(owner):
        raise DatastoreError(f"invalid owner {owner!r} (expected user@realm or user@realm!token)")
    path = _existing_group_dir(datastore, group) / OWNER_FILE_NAME
    atomic_write(path, f"{owner}\n".encode())
    datastore.upload_content(path)
