"""Restore of a media set into datastores (docs/tape-backup.md, "Restore").

Full restore: every tape of the set in sequence order, every file from 2 to end of data; chunks
are inserted as their archives pass by, snapshots when their archive comes (always after its
chunks). Selective restore (named snapshots): the catalog says where each snapshot and each chunk
lies; the snapshot archives are read first, then only the missing chunks, in tape order, each after
one LOCATE. Every chunk's CRC is checked and, for unencrypted chunks, its digest; a bad or
missing chunk fails the restore with the tape, file number and offset.

A namespace map (``tapefs.jobs.namespace_map``) places snapshots in other namespaces of the
target; with a map and no snapshot list, the covered snapshots are restored selectively (or by a
full pass if a tape of the set has no catalog here).

A snapshot that already exists in the target (finished or not) is never replaced: it is kept as
it was and reported in ``RestoreResult.snapshots_kept`` (the command warns); only snapshot
directories this restore creates are written into.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import time
import uuid as uuidlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from tapefs.catalog.media_catalog import ChunkPlace, MediaCatalog, SnapshotPlace
from tapefs.config.private_files import make_private_dirs
from tapefs.datastore.blob import chunk_digest_matches
from tapefs.datastore.datastore import DEFAULT_OWNER, Datastore
from tapefs.datastore.errors import DatastoreError, SnapshotExistsError
from tapefs.datastore.naming import BackupGroup, BackupSnapshot
from tapefs.datastore.snapshot_admin import AUTH_ID, describe_group, group_owner
from tapefs.errors import InvalidInput
from tapefs.jobs.drive_session import DriveSession
from tapefs.jobs.errors import ArchiveDamaged, JobError, MediaOffline, TapeReadFailed
from tapefs.jobs.namespace_map import NamespaceMap
from tapefs.jobs.snapshot_files import (
    decode_snapshot_pxar,
    manifest_digests,
    parse_tape_snapshot_path,
    tape_snapshot_path,
    write_snapshot_files,
)
from tapefs.jobs.tape_encryption import clear_drive_key, set_drive_key_for_set
from tapefs.media.errors import UnknownMediaError
from tapefs.media.inventory import Inventory
from tapefs.media.locks import lock_media_set
from tapefs.progress import ProgressCallback, ProgressMeter
from tapefs.scsi.errors import CheckCondition
from tapefs.tapeformat.archive_part import ArchivePart
from tapefs.tapeformat.block import PAYLOAD_SIZE
from tapefs.tapeformat.block_device import BlockDevice, Mark
from tapefs.tapeformat.chunk_archive import ChunkArchiveReader, read_chunk_at
from tapefs.tapeformat.errors import MissingEndMarker, TapeFormatError, UnexpectedEndOfData
from tapefs.tapeformat.magic import CHUNK_ARCHIVE_1_1
from tapefs.tapeformat.snapshot_archive import SNAPSHOT_MAGICS, SnapshotArchiveReader
from tapefs.tapeformat.tape_file import TapeFile, open_tape_file
from tapefs.tasks.worker import check_stop

log = logging.getLogger(__name__)

WRITER_THREADS = 2
#: Chunks handed to the writers and not yet stored (at most 4 MiB each).
WRITES_IN_FLIGHT = 6
READ_SIZE = 16 * PAYLOAD_SIZE


class InvalidRestoreOwner(InvalidInput, JobError):
    """--owner is not an auth id."""


class SetLabelMissing(JobError):
    """The tape the inventory names as a set member does not carry that set's label."""


class StoreMap:
    """`source=target` items and at most one bare default target, as in PBS."""

    def __init__(self, targets: dict[str, Datastore], default: Datastore | None = None):
        self.targets = targets
        self.default = default

    @classmethod
    def parse(cls, items: list[str], lookup) -> StoreMap:
        targets, default = {}, None
        for item in items:
            for part in item.split(","):
                source, sep, target = part.partition("=")
                if not sep:
                    if default is not None:
                        raise JobError(f"store map {item!r}: more than one default target")
                    default = lookup(source)
                else:
                    targets[source] = lookup(target)
        return cls(targets, default)

    def target(self, source_store: str) -> Datastore | None:
        return self.targets.get(source_store, self.default)

    def all_targets(self) -> list[Datastore]:
        """Each target datastore once."""
        unique = {str(t.root): t for t in [*self.targets.values(), self.default] if t is not None}
        return list(unique.values())


@dataclass
class RestoreResult:
    media_set: str
    snapshots_restored: list[str] = field(default_factory=list)
    #: Source `store:path`s not restored anywhere because every target place already had them.
    snapshots_skipped: list[str] = field(default_factory=list)
    #: Target `store:path`s that already existed and were kept as they were.
    snapshots_kept: list[str] = field(default_factory=list)
    #: Source `store:path` -> the `target-store:path`s it was restored as.
    targets: dict[str, list[str]] = field(default_factory=dict)
    chunks_restored: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    #: Labels of the tapes a selective restore read (a full one reads every tape of the set).
    tapes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "media-set": self.media_set,
            "snapshots": self.snapshots_restored,
            "skipped": self.snapshots_skipped,
            "kept": self.snapshots_kept,
            "targets": self.targets,
            "chunks": self.chunks_restored,
            "bytes": self.bytes_read,
            "seconds": round(self.seconds, 3),
            "tapes": self.tapes,
        }


def verify_chunk(digest: bytes, blob: bytes, where: str) -> None:
    """CRC always; the digest too unless the chunk is encrypted (its digest is keyed)."""
    try:
        if not chunk_digest_matches(blob, digest, where):
            raise JobError(f"{where}: chunk {digest.hex()} does not match its digest")
    except DatastoreError as error:
        raise JobError(f"{where}: chunk {digest.hex()}: {error}") from None


def _verify_and_insert(target: Datastore, digest: bytes, blob: bytes, where: str) -> None:
    verify_chunk(digest, blob, where)
    target.chunk_store.insert(digest, blob)


def check_owner(owner: str | None) -> None:
    """An owner for restored groups is an auth id, ``user@realm`` or ``user@realm!token``."""
    if owner is not None and not AUTH_ID.fullmatch(owner):
        raise InvalidRestoreOwner(f"invalid owner {owner!r} (expected user@realm or user@realm!token)")


def unreadable(label_text: str, file_number: int, error: CheckCondition) -> TapeReadFailed:
    """A drive error while reading a tape file, as one line that says which file it was."""
    return TapeReadFailed(f"tape {label_text} file {file_number}: cannot read it: {error}")


def restore_media_set(
    media_set: str,
    store_map: StoreMap,
    session: DriveSession,
    inventory: Inventory,
    catalog: MediaCatalog,
    snapshots: list[str] | None = None,
    progress: ProgressCallback | None = None,
    namespaces: NamespaceMap | None = None,
    owner: str | None = None,
) -> RestoreResult:
    """`snapshots`: `store:path` or `path` items (as in the catalog); None restores everything
    (with `namespaces`: everything the map covers). `owner`: the owner of the groups the restore
    creates; an existing group of another owner is then refused, as PBS does (without it new
    groups get the default owner and existing ones are not checked)."""
    check_owner(owner)
    members = _complete_members(inventory, media_set)
    return _run_restore(
        media_set, members, store_map, session, inventory, catalog, progress, namespaces, owner, snapshots
    )


def media_selection(
    label_text: str, inventory: Inventory, catalog: MediaCatalog, snapshots: list[str] | None = None
) -> tuple[str, list[str]]:
    """The media set of tape ``label_text`` and the ``store:path`` of each snapshot whose archive
    it holds (of ``snapshots`` only, each of which must be on it)."""
    entry = inventory.find_media_by_label_text(label_text)
    if entry is None:
        raise UnknownMediaError(f"no tape labelled {label_text!r} in the inventory")
    set_label = entry.id.media_set_label
    if set_label is None or set_label.is_unassigned:
        raise JobError(f"tape {label_text} is not a member of a media set: it holds no backup")
    media_set = set_label.uuid
    members = _complete_members(inventory, media_set)
    if not catalog.has_media(entry.uuid):
        raise JobError(
            f"tape {label_text} has no catalog here: restore it first ('tapefs catalog --label-text {label_text}' "
            f"or 'tapefs inventory --catalog'), or restore media set {media_set} whole"
        )
    places = catalog.snapshots_in_set(media_set)
    if snapshots is None:
        chosen = [f"{p.store}:{p.snapshot}" for p in places if p.seq_nr == set_label.seq_nr]
        if not chosen:
            raise JobError(
                f"tape {label_text} holds no snapshot archive, only chunks of snapshots on other tapes of "
                f"media set {media_set}"
            )
        return media_set, chosen
    chosen = []
    for item in snapshots:
        place = find_snapshot_place(places, item, media_set)
        if place.seq_nr != set_label.seq_nr:
            where = inventory.get(members[place.seq_nr]).id.label_text
            raise JobError(f"snapshot {item} is not on tape {label_text} but on tape {where}")
        chosen.append(f"{place.store}:{place.snapshot}")
    return media_set, chosen


def _tapes(labels: list[str]) -> str:
    return f"tape{'s' if len(labels) > 1 else ''} {', '.join(labels)}"


def _complete_members(inventory: Inventory, media_set: str) -> list[str]:
    members = inventory.compute_media_set_members(media_set)
    if not members:
        raise JobError(f"media set {media_set} is not in the inventory")
    if None in members:
        raise JobError(f"media set {media_set} is incomplete (member {members.index(None)} unknown)")
    return [uuid for uuid in members if uuid is not None]


def _run_restore(
    media_set: str,
    members: list[str],
    store_map: StoreMap,
    session: DriveSession,
    inventory: Inventory,
    catalog: MediaCatalog,
    progress: ProgressCallback | None,
    namespaces: NamespaceMap | None,
    owner: str | None,
    snapshots: list[str] | None,
) -> RestoreResult:
    started = time.monotonic()
    result = RestoreResult(media_set)
    labels = [inventory.get(uuid).id.label_text for uuid in members]
    with lock_media_set(inventory.status_dir, media_set):
        job = _Restore(media_set, members, labels, store_map, session, catalog, result, namespaces, owner)
        try:
            if snapshots is None and namespaces and all(catalog.has_media(uuid) for uuid in members):
                job.meter = ProgressMeter("restore", progress)
                job.selective(None)
            elif snapshots is None:
                job.meter = ProgressMeter(
                    "restore", progress, sum(inventory.get(u).bytes_used or 0 for u in members) or None
                )
                job.full()
            else:
                job.meter = ProgressMeter("restore", progress)
                job.selective(snapshots)
        finally:
            job.close()
            if session.device is not None:
                # As PBS does when it lets go of a drive: no set key stays behind in it.
                clear_drive_key(session.device.drive)
    result.seconds = time.monotonic() - started
    return result


def find_snapshot_place(places: list[SnapshotPlace], item: str, media_set: str) -> SnapshotPlace:
    """The catalog's place of a snapshot named ``[STORE:]PATH`` (a colon inside PATH's time is
    not a store)."""
    store, sep, path = item.partition(":")
    if "/" in store:  # no store given: the colon was inside the snapshot time
        store, sep, path = "", "", item
    matches = [p for p in places if p.snapshot == path and (not sep or p.store == store)]
    if not matches:
        raise JobError(f"snapshot {item} is not in the catalog of media set {media_set}")
    return matches[0]


@dataclass
class _PendingSnapshot:
    store: str
    snapshot: str
    content_uuid: uuidlib.UUID
    first_seq: int
    file_number: int
    last_seq: int = 0
    next_part: int = 1
    data: bytearray = field(default_factory=bytearray)


class _Restore:
    def __init__(self, media_set, members, labels, store_map, session, catalog, result, namespace_map=None, owner=None):
        self.media_set = media_set
        self.owner = owner
        #: labels of the tapes a selective restore reads besides those holding its snapshot archives
        self.other_tapes: list[str] = []
        self.namespace_map = namespace_map or NamespaceMap()
        #: Snapshots were named one by one (an unmapped store then keeps its namespaces).
        self.named = False
        self.members = members
        self.labels = labels
        self.store_map = store_map
        self.session = session
        self.catalog = catalog
        self.result = result
        self.meter: ProgressMeter | None = None
        #: Snapshot archives bigger than a tape, read up to a part that continues (full restore).
        self._pending: dict[uuidlib.UUID, _PendingSnapshot] = {}
        #: Tapes whose catalog the full restore rebuilds: seq_nr -> what was found on them.
        self._found: dict[int, list[tuple]] = {}
        #: Digests checked and present per target store in this run (verified once, as PBS does).
        self.present: dict[str, set[bytes]] = {}
        # Hashing and writing release the GIL: PBS uses 4 writer threads too.
        self._writers = ThreadPoolExecutor(WRITER_THREADS, thread_name_prefix="chunk-write")
        self._writes: deque[Future] = deque()

    def _load(self, seq_nr: int) -> BlockDevice:
        label_text = self.labels[seq_nr]
        try:
            device, labels = self.session.read_labels(label_text)
        except MediaOffline as offline:
            if label_text not in self.other_tapes:
                raise
            raise MediaOffline(
                label_text,
                f"{offline}: the snapshots restored need chunks on {_tapes(self.other_tapes)} "
                "too (bring them into the library, or give --wait SECONDS to be asked for each)",
            ) from None
        if labels.media_set is None or str(labels.media_set.uuid) != self.media_set:
            raise SetLabelMissing(f"tape {label_text} is not in media set {self.media_set}")
        if labels.media_set.seq_nr != seq_nr:
            raise JobError(f"tape {label_text} is number {labels.media_set.seq_nr} of the set, expected {seq_nr}")
        # Before any data file is read: the set's key, or none (fails naming a key not in the store).
        set_drive_key_for_set(device.drive, labels)
        self.meter.emit("tape-loaded", label_text)
        return device

    def _insert(self, target: Datastore, digest: bytes, blob: bytes, where: str) -> None:
        """Check and store a chunk in a worker thread, while the tape reads on."""
        present = self.present.setdefault(str(target.root), set())
        if digest in present:
            return
        present.add(digest)
        self.result.chunks_restored += 1
        while len(self._writes) >= WRITES_IN_FLIGHT:
            self._writes.popleft().result()
        self._writes.append(self._writers.submit(_verify_and_insert, target, digest, blob, where))

    def wait_for_writes(self) -> None:
        """Every chunk handed to the writers is stored; the first error among them is raised."""
        while self._writes:
            self._writes.popleft().result()

    def close(self) -> None:
        self._writers.shutdown(cancel_futures=True)

    # -- full ------------------------------------------------------------------------------

    def full(self) -> None:
        for seq_nr in range(len(self.members)):
            try:
                device = self._load(seq_nr)
            except SetLabelMissing:
                if seq_nr != len(self.members) - 1:
                    raise
                # The pool assigns a tape to the set before its set label is written; a job
                # killed in between leaves a last member that holds nothing of the set.
                log.warning(
                    "tape %s was assigned to media set %s but never got its set label (an "
                    "interrupted backup): it holds nothing of the set",
                    self.labels[seq_nr],
                    self.media_set,
                )
                break
            # A tape without catalog here (inventory brought from elsewhere) gets one rebuilt
            # from what this pass reads, chunk offsets included; an existing one is kept.
            found: list[tuple] | None = None if self.catalog.has_media(self.members[seq_nr]) else []
            if found is not None:
                self._found[seq_nr] = found
            while True:
                check_stop()  # between tape files: each snapshot is published whole or not at all
                try:
                    tape_file = open_tape_file(device)
                except UnexpectedEndOfData:
                    log.info("tape %s: last file cut short (writer interrupted)", self.labels[seq_nr])
                    break
                except TapeFormatError as error:
                    raise ArchiveDamaged(f"tape {self.labels[seq_nr]}: {error}") from None
                if tape_file is Mark.END_OF_DATA:
                    break
                if tape_file is Mark.FILEMARK:
                    continue
                try:
                    self._restore_file(seq_nr, tape_file, found)
                except CheckCondition as error:
                    raise unreadable(self.labels[seq_nr], tape_file.file_number, error) from None
                except TapeFormatError as error:  # a header or entry the format does not allow
                    raise ArchiveDamaged(f"tape {self.labels[seq_nr]}: {error}") from None
            # A part is continued on the very next tape; one that was not was written again whole.
            self._pending = {uuid: p for uuid, p in self._pending.items() if p.last_seq == seq_nr}
            # A tape's catalog is rebuilt once the snapshots that start on it are complete.
            for ready in [n for n in self._found if all(p.first_seq != n for p in self._pending.values())]:
                self._rebuild_catalog(ready, self._found.pop(ready))
        for rest in list(self._found):
            self._rebuild_catalog(rest, self._found.pop(rest))
        self.wait_for_writes()
        for target in self.store_map.all_targets():
            target.chunk_store.sync()

    def _rebuild_catalog(self, seq_nr: int, found: list[tuple]) -> None:
        media_uuid = self.members[seq_nr]
        self.catalog.reset_media(media_uuid, self.media_set, seq_nr)
        for kind, store, value in found:
            if kind == "chunk":
                self.catalog.register_chunk_archive(media_uuid, value, store)
            else:
                file_number, content_uuid, snapshot = value
                self.catalog.register_snapshot(media_uuid, file_number, content_uuid, store, snapshot)
        log.info("rebuilt the catalog of tape %s: %d archives", self.labels[seq_nr], len(found))

    def _restore_file(self, seq_nr: int, tape_file: TapeFile, found: list[tuple] | None) -> None:
        magic = tape_file.header.content_magic
        label_text = self.labels[seq_nr]
        if magic == CHUNK_ARCHIVE_1_1:
            reader = ChunkArchiveReader(tape_file)
            target = self.store_map.target(reader.store)
            if target is None and found is None:
                tape_file.reader.skip_data()
                return
            try:
                for digest, blob in reader:
                    if target is not None:
                        offset = reader.locations[-1].offset
                        self._insert(
                            target, digest, blob, f"tape {label_text} file {tape_file.file_number} offset {offset}"
                        )
                    self.meter.add(len(blob))
            except (MissingEndMarker, UnexpectedEndOfData):
                # An archive cut by a crash or the physical end: its chunks were written again
                # after it (or never referenced); those read so far are checked and fine to keep.
                log.info("tape %s file %d: archive without end marker", label_text, tape_file.file_number)
                return
            if found is not None and reader.truncated_entry is None:
                header = tape_file.header
                found.append(
                    (
                        "chunk",
                        reader.store,
                        ArchivePart(
                            "chunk",
                            header.uuid,
                            header.part_number,
                            tape_file.file_number,
                            reader.first_block,
                            chunks=list(reader.locations),
                        ),
                    )
                )
            return
        if magic in SNAPSHOT_MAGICS:
            self._restore_snapshot_part(seq_nr, tape_file)
            return
        tape_file.reader.skip_data()

    def _restore_snapshot_part(self, seq_nr: int, tape_file: TapeFile) -> None:
        """A snapshot archive, or one part of one bigger than a tape: its parts are put together
        (in memory, as every snapshot archive is) and it is restored after the last."""
        header = tape_file.header
        where = f"tape {self.labels[seq_nr]} file {tape_file.file_number}"
        if header.part_number == 0:
            reader = SnapshotArchiveReader(tape_file)
            pending = _PendingSnapshot(reader.store, reader.snapshot, header.uuid, seq_nr, tape_file.file_number)
        else:
            pending = self._pending.pop(header.uuid, None)
            if pending is None or pending.next_part != header.part_number:
                log.info(
                    "%s: part %d of snapshot archive %s without the parts before it, skipping it",
                    where,
                    header.part_number,
                    header.uuid,
                )
                tape_file.reader.skip_data()
                return
        try:
            while data := tape_file.reader.read(READ_SIZE):
                pending.data += data
        except TapeFormatError:  # cut short by a crash or the physical end; written again after it
            log.info("%s: skipping incomplete snapshot %s", where, pending.snapshot)
            return
        if tape_file.reader.incomplete:
            # Continued on the next tape, or (early warning at the first try) written again there whole.
            pending.last_seq, pending.next_part = seq_nr, header.part_number + 1
            self._pending[header.uuid] = pending
            return
        self.meter.add(len(pending.data))
        self._restore_snapshot(pending.store, pending.snapshot, bytes(pending.data), where)
        if pending.first_seq in self._found:
            self._found[pending.first_seq].append(
                ("snapshot", pending.store, (pending.file_number, pending.content_uuid, pending.snapshot))
            )

    def _restore_snapshot(self, store: str, path: str, data: bytes, where: str) -> None:
        self.wait_for_writes()
        target = self.store_map.target(store)
        name = f"{store}:{path}"
        if target is None:
            return
        placements = self._placements(store, parse_tape_snapshot_path(path))
        if not placements:
            log.info("snapshot %s: no namespace mapping covers it, skipping it", name)
            return
        new = []
        for snapshot in placements:
            self._check_group_owner(target, snapshot)
            # An unfinished copy that a killed restore left is removed and restored again; any
            # other existing snapshot is kept as it was.
            if not target.snapshot_path(snapshot).exists() or target.remove_abandoned_snapshot(snapshot):
                new.append(snapshot)
            else:
                self._keep_existing(target, snapshot)
        if not new:
            self.result.snapshots_skipped.append(name)
            return
        files = decode_snapshot_pxar(data, where)
        temp = target.root / ".tmp" / self.media_set / store / path
        shutil.rmtree(temp, ignore_errors=True)
        make_private_dirs(temp)
        try:
            write_snapshot_files(temp, files)
            missing = [d for d in manifest_digests(temp, files) if not target.chunk_store.chunk_path(d).exists()]
            if missing:
                raise JobError(
                    f"snapshot {path} ({where}): {len(missing)} chunks are not on the media set, "
                    f"first {missing[0].hex()}"
                )
            # Its chunks are durable before the snapshot appears, as for a datastore backup.
            target.chunk_store.sync()
            restored = False
            for snapshot in new:
                # Creating the group creates its namespace directories too; the snapshot directory
                # must be new, so one made meanwhile (say by a backup) is kept, not written into.
                try:
                    with target.writing_snapshot(snapshot, self.owner or DEFAULT_OWNER) as directory:
                        write_snapshot_files(directory, files)
                except SnapshotExistsError:
                    self._keep_existing(target, snapshot)
                    continue
                target.publish_snapshot(snapshot)
                self.result.targets.setdefault(name, []).append(f"{target.name}:{tape_snapshot_path(snapshot)}")
                restored = True
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        if not restored:
            self.result.snapshots_skipped.append(name)
            return
        self.result.snapshots_restored.append(name)
        self.meter.emit("snapshot-done", name)

    def _check_group_owner(self, target: Datastore, snapshot: BackupSnapshot) -> None:
        """With an owner given, a group that exists must be that owner's (PBS's owner check)."""
        if self.owner is None or not target.group_path(snapshot.group).is_dir():
            return
        current = group_owner(target, snapshot.group)
        if current != self.owner:
            raise JobError(
                f"snapshot {tape_snapshot_path(snapshot)}: group {describe_group(snapshot.group)} of datastore "
                f"{target.name} belongs to {current}, not {self.owner}; nothing of it was restored"
            )

    def _keep_existing(self, target: Datastore, snapshot: BackupSnapshot) -> None:
        kept = f"{target.name}:{tape_snapshot_path(snapshot)}"
        log.info("snapshot %s already exists; kept as it was, not restored from tape", kept)
        self.result.snapshots_kept.append(kept)

    def _placements(self, store: str, snapshot: BackupSnapshot) -> list[BackupSnapshot]:
        """The snapshot in each target namespace; none for an unmapped store when a map is given
        and the restore takes everything."""
        if self.namespace_map and not self.named and not self.namespace_map.maps_store(store):
            return []
        group = snapshot.group
        return [
            BackupSnapshot(BackupGroup(namespace, group.backup_type, group.backup_id), snapshot.backup_time)
            for namespace in self.namespace_map.targets(store, group.namespace)
        ]

    # -- selective -------------------------------------------------------------------------

    def selective(self, wanted: list[str] | None) -> None:
        """`wanted` None: every snapshot of a mapped store that the namespace map covers."""
        places = self.catalog.snapshots_in_set(self.media_set)
        self.named = wanted is not None
        if wanted is None:
            unknown = sorted({m.store for m in self.namespace_map.mappings} - {p.store for p in places})
            if unknown:
                raise JobError(
                    f"namespace mapping: media set {self.media_set} has no snapshots of store {', '.join(unknown)}"
                )
            chosen = [
                p
                for p in places
                if self.store_map.target(p.store) is not None
                and self._placements(p.store, parse_tape_snapshot_path(p.snapshot))
            ]
        else:
            chosen = [self._named_place(places, item) for item in wanted]
        # Snapshot archives first, in tape order, kept in memory (they are small).
        archives = {}
        for place in sorted(chosen, key=lambda p: (p.seq_nr, p.file_number)):
            device = self._load(place.seq_nr)
            device.locate_file(place.file_number)
            where = f"tape {self.labels[place.seq_nr]} file {place.file_number}"
            try:
                tape_file = open_tape_file(device)
                if not isinstance(tape_file, TapeFile) or tape_file.header.content_magic not in SNAPSHOT_MAGICS:
                    raise JobError(f"{where}: the catalog names snapshot {place.snapshot}, the tape does not hold it")
                data = SnapshotArchiveReader(tape_file, self._next_part_from(place.seq_nr)).read()
            except CheckCondition as error:
                raise unreadable(self.labels[place.seq_nr], place.file_number, error) from None
            except TapeFormatError as error:  # a header or entry the format does not allow
                raise ArchiveDamaged(f"tape {self.labels[place.seq_nr]}: {error}") from None
            archives[place] = (data, where)
        # Where the chunks those snapshots need are; the other tapes that hold some are named
        # before any of them is asked for.
        chunk_places = {}
        for place, (data, where) in archives.items():
            target = self.store_map.target(place.store)
            files = decode_snapshot_pxar(data, where)
            temp = target.root / ".tmp" / self.media_set / place.store / place.snapshot
            shutil.rmtree(temp, ignore_errors=True)
            make_private_dirs(temp)
            try:
                write_snapshot_files(temp, files)
                digests = manifest_digests(temp, files)
            finally:
                shutil.rmtree(temp, ignore_errors=True)
            missing = [d for d in digests if not target.chunk_store.chunk_path(d).exists()]
            chunk_places[place] = self._chunk_places(place.store, missing)
        archive_tapes = {place.seq_nr for place in archives}
        other = sorted({c.seq_nr for found in chunk_places.values() for c in found.values()} - archive_tapes)
        self.other_tapes = [self.labels[seq_nr] for seq_nr in other]
        self.result.tapes = [self.labels[seq_nr] for seq_nr in sorted(archive_tapes | set(other))]
        if self.other_tapes:
            # Told before the operator is asked for any of them; without a wait, the error of a
            # missing one names them all instead.
            waits = self.session.wait is not None and self.session.wait.timeout > 0
            log.log(
                logging.WARNING if waits else logging.INFO,
                "the snapshots restored share chunks with %s of media set %s: those are read too",
                _tapes(self.other_tapes),
                self.media_set,
            )
            self.meter.emit("tapes-needed", ", ".join(self.other_tapes))
        # Then the chunks, in tape order, one LOCATE each.
        for place, (data, where) in archives.items():
            target = self.store_map.target(place.store)
            self._fetch_chunks(target, chunk_places[place])
            self.wait_for_writes()
            target.chunk_store.sync()
            self._restore_snapshot(place.store, place.snapshot, data, where)

    def _next_part_from(self, seq_nr: int):
        """For a snapshot archive bigger than a tape: each next part is on the next tape of the set."""
        tape = [seq_nr]

        def next_volume(header) -> BlockDevice:
            tape[0] += 1
            part = header.part_number + 1
            if tape[0] >= len(self.members):
                raise JobError(
                    f"snapshot archive {header.uuid}: part {part} would be after the last tape of "
                    f"media set {self.media_set}"
                )
            device = self._load(tape[0])
            for file_number in itertools.count(2):
                device.locate_file(file_number)
                tape_file = open_tape_file(device)
                if tape_file is Mark.END_OF_DATA:
                    raise JobError(
                        f"tape {self.labels[tape[0]]}: part {part} of snapshot archive {header.uuid} is not on it"
                    )
                if isinstance(tape_file, TapeFile) and (tape_file.header.uuid, tape_file.header.part_number) == (
                    header.uuid,
                    part,
                ):
                    device.locate_file(file_number)
                    return device

        return next_volume

    def _named_place(self, places: list, item: str):
        place = find_snapshot_place(places, item, self.media_set)
        if self.store_map.target(place.store) is None:
            raise JobError(f"snapshot {item}: no target datastore for store {place.store}")
        namespace = parse_tape_snapshot_path(place.snapshot).group.namespace
        if not self._placements(place.store, parse_tape_snapshot_path(place.snapshot)):
            raise JobError(
                f"snapshot {item}: no namespace mapping of store {place.store} covers "
                f"namespace '{str(namespace) or '/'}'"
            )
        return place

    def _chunk_places(self, store: str, digests: list[bytes]) -> dict[bytes, ChunkPlace]:
        places = self.catalog.chunk_places(self.media_set, store, digests)
        missing = [d for d in digests if d not in places]
        if missing:
            raise JobError(
                f"chunk {missing[0].hex()} (and {len(missing) - 1} more) of store {store} "
                f"is not on media set {self.media_set} according to the catalog"
            )
        return places

    def _fetch_chunks(self, target: Datastore, places: dict[bytes, ChunkPlace]) -> None:
        for place in sorted(places.values(), key=lambda p: (p.seq_nr, p.file_number, p.offset or 0)):
            where = f"tape {self.labels[place.seq_nr]} file {place.file_number} offset {place.offset}"
            device = self._load_once(place.seq_nr)
            if place.offset is None or place.first_block is None:
                raise JobError(f"{where}: the catalog has no chunk offsets (imported from a .log); run a full restore")
            try:
                blob = read_chunk_at(device, place.file_number, place.first_block, place.location())
            except TapeFormatError as error:
                raise JobError(f"{where}: chunk {place.digest.hex()}: {error}") from None
            except CheckCondition as error:
                raise unreadable(self.labels[place.seq_nr], place.file_number, error) from None
            self._insert(target, place.digest, blob, where)
            self.meter.add(len(blob))

    def _load_once(self, seq_nr: int) -> BlockDevice:
        if self.session.label_text == self.labels[seq_nr] and self.session.device is not None:
            return self.session.device
        return self._load(seq_nr)
