"""Catalog archive v1.0 / v1.1 (docs/tape-format.md): header JSON {"uuid", "media_set_uuid", "seq_nr"},
then a byte-exact copy of that tape's `.log` media catalog. v1.1 says snapshot names in it may
carry namespaces; the payload is the same.

Written as PBS writes it: early warning is ignored inside a catalog archive, so the whole `.log`
goes into the early-warning zone (that is what the zone is for) and the archive is never left
INCOMPLETE with part of a catalog in it. PBS's fast catalog restore copies the tape's last file
without looking at the INCOMPLETE flag, so a cut catalog would be adopted as the whole one. Only
the physical end stops the archive: the file is then closed without end marker, which every
reader (PBS's too) refuses, and the caller writes the catalog on the next tape.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections.abc import Callable

from tapefs.tapeformat import magic
from tapefs.tapeformat.archive_part import ArchivePart
from tapefs.tapeformat.block import BlockedWriter
from tapefs.tapeformat.block_device import BlockDevice
from tapefs.tapeformat.content_header import ContentHeader, pretty_json, write_content_start
from tapefs.tapeformat.errors import HeaderError
from tapefs.tapeformat.stream_archive import StreamArchiveReader, close, guarded
from tapefs.tapeformat.tape_file import TapeFile

log = logging.getLogger(__name__)

CATALOG_MAGICS = (magic.CATALOG_ARCHIVE_1_0, magic.CATALOG_ARCHIVE_1_1)


def write_catalog_archive(
    device: BlockDevice,
    media_uuid: uuidlib.UUID,
    media_set_uuid: uuidlib.UUID,
    seq_nr: int,
    catalog: bytes,
    namespaces: bool = True,
    ctime: int | None = None,
) -> ArchivePart:
    """Write the `.log` bytes of tape `media_uuid` (member `seq_nr` of the set) as one archive at
    the device's position, early warning or not. `namespaces` selects v1.1, which PBS writes
    unless the job is root-only (max-depth 0). Raises ArchiveAborted at the physical end."""
    content_magic = magic.CATALOG_ARCHIVE_1_1 if namespaces else magic.CATALOG_ARCHIVE_1_0
    header_data = pretty_json({"uuid": str(media_uuid), "media_set_uuid": str(media_set_uuid), "seq_nr": seq_nr})
    content_uuid = uuidlib.uuid4()
    position = device.position()
    part = ArchivePart("catalog", content_uuid, 0, position.file_number, position.block_number)
    writer = BlockedWriter(device)
    guarded(writer, part, lambda: write_content_start(writer, content_magic, header_data, content_uuid, ctime))
    guarded(writer, part, lambda: writer.write(catalog))
    if writer.leom:
        log.info("catalog archive at tape file %d written into the early-warning zone", part.file_number)
    close(writer, part, incomplete=False)
    return part


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
