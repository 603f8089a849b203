"""What a writer reports for each tape file it wrote: the facts a catalog records."""

from __future__ import annotations

import dataclasses
import uuid as uuidlib

from tapefs.tapeformat.block import PAYLOAD_SIZE


@dataclasses.dataclass(frozen=True)
class ChunkLocation:
    digest: bytes
    #: Stream offset of the entry header inside its tape file (0 = first byte of the content header).
    offset: int
    #: Length of the blob after the 48-byte entry header.
    size: int

    @property
    def block_index(self) -> int:
        """Block of the tape file that holds the entry header: LOCATE to first_block + this."""
        return self.offset // PAYLOAD_SIZE


@dataclasses.dataclass
class ArchivePart:
    """One tape file of an archive. An archive cut at early warning has several parts, one per
    tape, sharing the content UUID; every part but the last is flagged INCOMPLETE on tape."""

    kind: str
    content_uuid: uuidlib.UUID
    part_number: int
    file_number: int
    #: Logical object number of the file's block 0 (what LOCATE takes).
    first_block: int
    #: Stream bytes of this part, content header included.
    size: int = 0
    #: True when the part ends INCOMPLETE because the archive goes on in part_number + 1.
    continued: bool = False
    #: True when the part was closed INCOMPLETE at early warning and the whole archive was
    #: written again on the next tape: register nothing from it.
    abandoned: bool = False
    chunks: list[ChunkLocation] = dataclasses.field(default_factory=list)
