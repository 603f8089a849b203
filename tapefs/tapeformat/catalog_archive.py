"""Catalog archive v1.0 / v1.1 (docs/tape-format.md): header JSON {"uuid", "media_set_uuid", "seq_nr"},
then a byte-exact copy of that tape's `.log` media catalog. v1.1 says snapshot names in it may
carry namespaces; the payload is the same."""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections.abc import Callable

from tapefs.tapeformat import magic
from tapefs.tapeformat.archive_part import ArchivePart
from tapefs.tapeformat.block import PAYLOAD_SIZE
from tapefs.tapeformat.block_device import BlockDevice
from tapefs.tapeformat.content_header import ContentHeader
from tapefs.tapeformat.errors import HeaderError
from tapefs.tapeformat.stream_archive import NextVolume, StreamArchiveReader, write_stream_archive
from tapefs.tapeformat.tape_file import TapeFile

log = logging.getLogger(__name__)

CATALOG_MAGICS = (magic.CATALOG_ARCHIVE_1_0, magic.CATALOG_ARCHIVE_1_1)


def write_catalog_archive(
    device: BlockDevice,
    media_uuid: uuidlib.UUID,
    media_set_uuid: uuidlib.UUID,
    seq_nr: int,
    catalog: bytes,
    next_volume: NextVolume,
    namespaces: bool = True,
    ctime: int | None = None,
) -> list[ArchivePart]:
    """Write the `.log` bytes of tape `media_uuid` (member `seq_nr` of the set) as an archive.
    `namespaces` selects v1.1, which PBS writes unless the job is root-only (max-depth 0)."""
    content_magic = magic.CATALOG_ARCHIVE_1_1 if namespaces else magic.CATALOG_ARCHIVE_1_0
    header = {"uuid": str(media_uuid), "media_set_uuid": str(media_set_uuid), "seq_nr": seq_nr}
    view = memoryview(catalog)

    def pieces():
        return (view[start : start + PAYLOAD_SIZE] for start in range(0, len(view), PAYLOAD_SIZE))

    return write_stream_archive(device, "catalog", content_magic, header, pieces, next_volume, ctime)


class CatalogArchiveReader(StreamArchiveReader):
    def __init__(self, tape_file: TapeFile, next_volume: Callable[[ContentHeader], BlockDevice] | None = None):
        tape_file.require(*CATALOG_MAGICS)
        super().__init__(tape_file, next_volume)
        try:
            self.media_uuid = uuidlib.UUID(tape_file.header_json["uuid"])
            self.media_set_uuid = uuidlib.UUID(tape_file.header_json["media_set_uuid"])
            self.seq_nr = int(tape_file.header_json["seq_nr"])
        except (KeyError, ValueError, TypeError) as error:
            raise HeaderError(f"bad catalog archive header: {error}", tape_file.file_number) from None
