"""Snapshot archive v1.1 / v1.2 (docs/tape-format.md): header JSON {"snapshot", "store"}, then a pxar
stream that this layer treats as bytes. v1.2 marks snapshot paths inside a namespace."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from tapefs.datastore.naming import SAFE_ID
from tapefs.tapeformat import magic
from tapefs.tapeformat.archive_part import ArchivePart
from tapefs.tapeformat.block_device import BlockDevice
from tapefs.tapeformat.content_header import ContentHeader
from tapefs.tapeformat.errors import HeaderError
from tapefs.tapeformat.stream_archive import NextVolume, OpenStream, StreamArchiveReader, write_stream_archive
from tapefs.tapeformat.tape_file import TapeFile

log = logging.getLogger(__name__)

SNAPSHOT_MAGICS = (magic.SNAPSHOT_ARCHIVE_1_1, magic.SNAPSHOT_ARCHIVE_1_2)


@dataclasses.dataclass(frozen=True)
class SnapshotPath:
    """`[ns/a/ns/b/]type/id/time`, split at the third `/` from the right."""

    namespace: str
    backup_type: str
    backup_id: str
    backup_time: str

    @classmethod
    def parse(cls, path: str) -> SnapshotPath:
        parts = path.rsplit("/", 3)
        if len(parts) == 3:
            parts = ["", *parts]
        namespace, backup_type, backup_id, backup_time = parts
        components = namespace.split("/") if namespace else []
        if (
            len(parts) != 4
            or not all((backup_type, backup_id, backup_time))
            or len(components) % 2
            or any(key != "ns" or not name for key, name in zip(components[::2], components[1::2], strict=True))
            or len(components) > 14
            # A restore makes directories of these names: nothing may climb out or start elsewhere.
            or not all(SAFE_ID.fullmatch(name) for name in [backup_type, backup_id, *components[1::2]])
            or backup_time in (".", "..")
        ):
            raise ValueError(f"not a snapshot path: {path!r}")
        return cls(namespace, backup_type, backup_id, backup_time)

    def __str__(self) -> str:
        group = f"{self.backup_type}/{self.backup_id}/{self.backup_time}"
        return f"{self.namespace}/{group}" if self.namespace else group


def check_store_name(store: object) -> str:
    """A datastore name read from tape: the restore makes a directory of it, so it must be a
    plain name (letters, digits, ``_``, ``.``, ``-``; no ``/``, not ``..``). ValueError if not."""
    if not isinstance(store, str) or not SAFE_ID.fullmatch(store):
        raise ValueError(f"not a datastore name: {store!r}")
    return store


def snapshot_magic(snapshot: str) -> bytes:
    return magic.SNAPSHOT_ARCHIVE_1_2 if SnapshotPath.parse(snapshot).namespace else magic.SNAPSHOT_ARCHIVE_1_1


def write_snapshot_archive(
    device: BlockDevice,
    store: str,
    snapshot: str,
    open_pxar: OpenStream,
    next_volume: NextVolume,
    ctime: int | None = None,
) -> list[ArchivePart]:
    """Write the archive at the device's position; its parts, one per tape. `open_pxar()` gives
    the pxar stream from its start (twice if the archive is written again on the next tape).
    Register the snapshot only once this returns: ArchiveAborted means nothing usable was written."""
    # Key order is the struct order PBS prints: snapshot, then store.
    return write_stream_archive(
        device,
        "snapshot",
        snapshot_magic(snapshot),
        {"snapshot": snapshot, "store": store},
        open_pxar,
        next_volume,
        ctime,
    )


class SnapshotArchiveReader(StreamArchiveReader):
    def __init__(self, tape_file: TapeFile, next_volume: Callable[[ContentHeader], BlockDevice] | None = None):
        tape_file.require(*SNAPSHOT_MAGICS)
        super().__init__(tape_file, next_volume)
        try:
            self.snapshot = str(tape_file.header_json["snapshot"])
            self.store = check_store_name(tape_file.header_json["store"])
            self.path = SnapshotPath.parse(self.snapshot)
        except (KeyError, ValueError) as error:
            raise HeaderError(f"bad snapshot archive header: {error}", tape_file.file_number) from None
