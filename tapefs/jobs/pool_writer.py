"""Writing to a media pool's current set, tape after tape (PBS's PoolWriter;
docs/architecture.md, "Tape backup").

The writer keeps one tape loaded. `writable_device` allocates it through the pool, loads it,
checks its media label against the inventory and, for a tape new to the set, resets its catalog,
writes the set label and the catalogs of the set's earlier members (see docs/tape-format.md). `next_volume` is the
early-warning callback of the format writers: it registers the finished part, marks the tape
full and returns the next tape at its end of data. `tape_full` does the same after a physical
end (ArchiveAborted), where nothing of the aborted part is registered.

For an encrypted pool the set label carries the key's fingerprint and its password-protected key
config, and is written plain; the drive gets the set's key after the labels, before any data file
of every tape it loads (docs/keys.md, "Encrypted media sets"). Tapes of a plain set get a drive without key.
"""

from __future__ import annotations

import logging
import time
import uuid as uuidlib
from collections.abc import Callable

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.jobs.drive_session import DriveSession
from tapefs.jobs.errors import JobError
from tapefs.jobs.tape_encryption import clear_drive_key, enable_encryption_for_writing
from tapefs.keys.key_store import normalize_fingerprint
from tapefs.keys.media_set_key import MediaSetEncryption
from tapefs.media.inventory import Inventory
from tapefs.media.media_id import MediaStatus
from tapefs.media.pool import MediaPool
from tapefs.scsi.errors import ScsiError
from tapefs.tapeformat.archive_part import ArchivePart
from tapefs.tapeformat.block_device import BLOCK_SIZE, BlockDevice, DriveBlockDevice
from tapefs.tapeformat.catalog_archive import write_catalog_archive
from tapefs.tapeformat.errors import ArchiveAborted
from tapefs.tapeformat.labels import MediaSetLabel, write_media_set_label
from tapefs.tapeformat.tape_file import move_to_end_of_data

log = logging.getLogger(__name__)


class PoolWriter:
    def __init__(
        self,
        pool: MediaPool,
        session: DriveSession,
        inventory: Inventory,
        catalog: MediaCatalog,
        namespaces: bool = True,
        clock: Callable[[], float] = time.time,
        on_tape: Callable[[str], None] | None = None,
        encryption: MediaSetEncryption | None = None,
    ):
        self.pool = pool
        self.session = session
        self.inventory = inventory
        self.catalog = catalog
        self.namespaces = namespaces
        self.clock = clock
        self.on_tape = on_tape
        #: The set's key, when the pool encrypts (`tape_encryption.media_set_encryption_for_pool`).
        self.encryption = encryption
        self.device: BlockDevice | None = None
        self.media_uuid: str | None = None
        #: Label texts of the tapes written in this job, in order.
        self.used_tapes: list[str] = []

    @property
    def set_uuid(self) -> str:
        return self.pool.current_set.uuid

    def writable_device(self) -> BlockDevice:
        """The loaded writable tape at its end of data."""
        if self.device is not None:
            return self.device
        media_uuid = self.pool.alloc_writable_media(int(self.clock()))
        entry = self.inventory.get(media_uuid)
        label_text = entry.id.label_text
        set_label = entry.id.media_set_label
        self._check_encryption(set_label.encryption_key_fingerprint)
        device, labels = self.session.read_labels(label_text)
        if str(labels.media.uuid) != media_uuid:
            raise JobError(
                f"tape {label_text} carries media uuid {labels.media.uuid}, the inventory says "
                f"{media_uuid}: label it again or update the inventory"
            )
        on_tape = labels.media_set
        if on_tape is not None and str(on_tape.uuid) == set_label.uuid:
            if on_tape.seq_nr != set_label.seq_nr:
                raise JobError(
                    f"tape {label_text}: set sequence number {on_tape.seq_nr} on tape, "
                    f"{set_label.seq_nr} in the inventory"
                )
            if not self.catalog.has_media(media_uuid):
                self._import_log(media_uuid, label_text)
            if not self.catalog.has_media(media_uuid):
                raise JobError(
                    f"no media catalog for tape {label_text} ({media_uuid}) of the current set; "
                    "restore its catalog first"
                )
            self._check_encryption(on_tape.encryption_key_fingerprint, f"tape {label_text}")
            self._set_drive_key(device)
            move_to_end_of_data(device)
        else:
            if on_tape is not None:
                log.info(
                    "writing new media set label on %s (overwrite '%s/%d')", label_text, on_tape.uuid, on_tape.seq_nr
                )
            # Catalog first: a crash before the label is written leaves the old label, and the
            # next run writes it again; a crash after it leaves labels and an empty catalog.
            self.catalog.reset_media(media_uuid, set_label.uuid, set_label.seq_nr)
            clear_drive_key(device.drive)  # labels are always plain: key restore reads them keyless
            write_media_set_label(
                device,
                MediaSetLabel(
                    set_label.pool,
                    uuidlib.UUID(set_label.uuid),
                    set_label.seq_nr,
                    set_label.ctime,
                    set_label.encryption_key_fingerprint,
                    self.encryption.key_config if self.encryption else None,
                ),
            )
            self._set_drive_key(device)
            self._export_log(media_uuid)
            self._write_start_catalogs(device, set_label.seq_nr, label_text)
        if set_label.seq_nr >= 20:
            log.warning("media set %s has %d tapes", set_label.uuid, set_label.seq_nr + 1)
        self.device, self.media_uuid = device, media_uuid
        self.used_tapes.append(label_text)
        if self.on_tape is not None:
            self.on_tape(label_text)
        return device

    def _check_encryption(self, fingerprint: str | None, where: str = "the inventory") -> None:
        """The set's fingerprint (from the inventory or the tape) is the one this job encrypts with."""
        expected = self.encryption.fingerprint if self.encryption else None
        found = normalize_fingerprint(fingerprint) if fingerprint else None
        if found != expected:
            raise JobError(
                f"media set {self.set_uuid}: {where} names encryption key {found or 'none'}, "
                f"the job writes with {expected or 'none'}"
            )

    def _set_drive_key(self, device: DriveBlockDevice) -> None:
        """Before any data file of the tape: the set's key in the drive, or no key."""
        if self.encryption is None:
            clear_drive_key(device.drive)
        else:
            enable_encryption_for_writing(device.drive, self.encryption)

    def release_drive_key(self) -> None:
        """At the end of the job (also after an error): take the key out of the drive."""
        device = self.session.device
        if device is not None and self.encryption is not None:
            clear_drive_key(device.drive)

    def _write_start_catalogs(self, device: BlockDevice, seq_nr: int, label_text: str) -> None:
        members = self.pool.current_set.members[:seq_nr]
        for member_seq, member in enumerate(members):
            try:
                write_catalog_archive(
                    device,
                    uuidlib.UUID(member),
                    uuidlib.UUID(self.set_uuid),
                    member_seq,
                    self.catalog.log_bytes(member),
                    self.namespaces,
                )
            except ArchiveAborted:
                raise JobError(f"tape {label_text}: end of tape while writing the start catalogs") from None

    def _import_log(self, media_uuid: str, label_text: str) -> None:
        """A member whose catalog exists only as PBS `.log` (restored by other tools): take it."""
        path = self.inventory.status_dir / f"{media_uuid}.log"
        if path.is_file():
            log.info("tape %s: importing its catalog from %s", label_text, path)
            self.catalog.import_log(path.read_bytes(), str(path))

    def _export_log(self, media_uuid: str) -> None:
        """Refresh `<uuid>.log` in the status directory (PBS's catalog, read by `media content`).
        SQLite is the truth; the `.log` is brought up to date at every tape change and job end."""
        self.catalog.export_log(media_uuid, self.inventory.status_dir)

    def tape_capacity(self) -> int | None:
        """Native capacity in bytes of the loaded tape, as its drive reports it (volume
        statistics); None when the drive does not say."""
        try:
            megabytes = self.session.device.drive.volume_statistics().total_native_capacity
        except ScsiError as error:
            log.debug("no volume statistics: %s", error)
            return None
        return megabytes * 1_000_000 or None

    def _record_bytes_used(self) -> None:
        """Blocks up to the end of data, for `media list` and the restore's progress total."""
        self.inventory.set_bytes_used(self.media_uuid, self.device.position().block_number * BLOCK_SIZE)

    def interrupted(self) -> str:
        """For a job cut short because the drive is gone: what the catalog holds of the tape being
        written (refreshing its `.log`), and where the next backup to the set goes on. Nothing is
        sent to the drive."""
        if self.media_uuid is None:
            if self.used_tapes:  # lost between tapes: the last one was marked full already
                return (
                    f"media set {self.set_uuid}: tape {self.used_tapes[-1]} was closed as full; the next backup "
                    "to this media set continues on the pool's next writable tape"
                )
            return f"media set {self.set_uuid}: no tape was loaded yet"
        label_text = self.inventory.get(self.media_uuid).id.label_text
        self._export_log(self.media_uuid)
        archives = self.catalog.media_archives(self.media_uuid)
        recorded = (
            f"the catalog records its archives up to file {max(archives)}, anything written after that is not used"
            if archives
            else "the catalog records no archive on it yet"
        )
        return (
            f"media set {self.set_uuid}: tape {label_text} was being written; {recorded}; the next backup to "
            f"this media set continues on {label_text} after its end of data"
        )

    def tape_full(self) -> None:
        """The loaded tape takes nothing more: mark it full; the next write loads another."""
        if self.media_uuid is None:
            return
        label_text = self.inventory.get(self.media_uuid).id.label_text
        log.info("tape %s is full", label_text)
        try:
            self.device.sync()
            self._record_bytes_used()
        finally:
            self._export_log(self.media_uuid)
            self.pool.set_media_status_full(self.media_uuid)
            self.device, self.media_uuid = None, None

    def tape_damaged(self) -> str | None:
        """The loaded tape failed a write: mark it damaged, so no job writes to it again and the
        media set goes on with another tape; its label text (None when no tape was loaded).
        Nothing more is sent to the drive."""
        if self.media_uuid is None:
            return None
        label_text = self.inventory.get(self.media_uuid).id.label_text
        log.warning("tape %s failed a write: marked damaged", label_text)
        self._export_log(self.media_uuid)
        self.inventory.set_status(self.media_uuid, MediaStatus.DAMAGED)
        self.device, self.media_uuid = None, None
        return label_text

    def next_volume_for(self, store: str) -> Callable[[ArchivePart], BlockDevice]:
        """The early-warning callback for archives of `store`."""

        def next_volume(part: ArchivePart) -> BlockDevice:
            if part.kind == "chunk" and not part.abandoned:
                self.catalog.register_chunk_archive(self.media_uuid, part, store)
            elif part.kind == "snapshot" and part.continued:
                # Bigger than a tape: registered at its part 0 once the last part is written.
                log.info("snapshot archive %s continues on the next tape", part.content_uuid)
            self.tape_full()
            return self.writable_device()

        return next_volume

    def register_chunk_part(self, part: ArchivePart, store: str) -> None:
        self.catalog.register_chunk_archive(self.media_uuid, part, store)

    def register_snapshot(self, part: ArchivePart, store: str, snapshot: str, media_uuid: str | None = None) -> None:
        """On the tape of `part` (default: the loaded one); a tape already full gets its `.log` again."""
        media_uuid = media_uuid or self.media_uuid
        self.catalog.register_snapshot(media_uuid, part.file_number, part.content_uuid, store, snapshot)
        if media_uuid != self.media_uuid:
            self._export_log(media_uuid)

    def write_catalog(self) -> None:
        """The catalog archive of the last tape written, at its end. Early warning does not stop
        it (PBS's rule); after the physical end the tape is full, and the next tape carries this
        tape's catalog among its start catalogs and then its own."""
        for _ in range(2):
            device = self.writable_device()
            media_uuid = self.media_uuid
            seq_nr = self.catalog.media_set_of(media_uuid)[1]
            try:
                self._export_log(media_uuid)
                write_catalog_archive(
                    device,
                    uuidlib.UUID(media_uuid),
                    uuidlib.UUID(self.set_uuid),
                    seq_nr,
                    self.catalog.log_bytes(media_uuid),
                    self.namespaces,
                )
                self.device.sync()
                self._record_bytes_used()
                return
            except ArchiveAborted:
                self.tape_full()
        raise JobError("could not write the catalog archive on two tapes")
