"""MediaContentHeader (docs/tape-format.md): the 48 bytes at the start of every tape file's stream,
followed by `size` bytes of pretty JSON, followed by the content stream."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid as uuidlib

from construct import Bytes, Int8ul, Int32ul, Int64sl, Struct

from tapefs.tapeformat import magic
from tapefs.tapeformat.block import BlockedReader, BlockedWriter
from tapefs.tapeformat.errors import BadMagic, HeaderError, TruncatedData, UnsupportedVersion

log = logging.getLogger(__name__)

CONTENT_HEADER_SIZE = 48
#: PBS bounds only the labels' JSON (1..64 KiB). Every header JSON it writes is far smaller, so
#: the same bound for all content types keeps a damaged size field from allocating gigabytes.
MAX_HEADER_DATA = 65536

CONTENT_HEADER = Struct(
    "magic" / Bytes(8),
    "content_magic" / Bytes(8),
    "uuid" / Bytes(16),
    "ctime" / Int64sl,
    "size" / Int32ul,
    "part_number" / Int8ul,
    "reserved" / Bytes(3),
).compile()

CONTENT_NAMES = {
    magic.MEDIA_LABEL: "media label",
    magic.MEDIA_SET_LABEL: "media-set label",
    magic.CHUNK_ARCHIVE_1_1: "chunk archive v1.1",
    magic.SNAPSHOT_ARCHIVE_1_1: "snapshot archive v1.1",
    magic.SNAPSHOT_ARCHIVE_1_2: "snapshot archive v1.2",
    magic.CATALOG_ARCHIVE_1_0: "catalog archive v1.0",
    magic.CATALOG_ARCHIVE_1_1: "catalog archive v1.1",
}
OBSOLETE = {
    magic.CHUNK_ARCHIVE_1_0: "chunk archive v1.0",
    magic.SNAPSHOT_ARCHIVE_1_0: "snapshot archive v1.0",
}


@dataclasses.dataclass(frozen=True)
class ContentHeader:
    content_magic: bytes
    uuid: uuidlib.UUID
    ctime: int
    size: int
    part_number: int = 0

    @property
    def content_name(self) -> str:
        return CONTENT_NAMES.get(self.content_magic, f"unknown content {self.content_magic.hex()}")

    def build(self) -> bytes:
        return CONTENT_HEADER.build(
            {
                "magic": magic.CONTENT_HEADER,
                "content_magic": self.content_magic,
                "uuid": self.uuid.bytes,
                "ctime": self.ctime,
                "size": self.size,
                "part_number": self.part_number,
                "reserved": bytes(3),
            }
        )


def pretty_json(value: dict, sort_keys: bool = False) -> bytes:
    """serde_json's pretty printing: 2-space indent, ": " separators, UTF-8, no final newline;
    `sort_keys` at every level, as a serde_json Value prints (code point order is UTF-8 byte order)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=sort_keys).encode()


def write_content_start(
    writer: BlockedWriter,
    content_magic: bytes,
    header_data: bytes,
    content_uuid: uuidlib.UUID | None = None,
    ctime: int | None = None,
    part_number: int = 0,
) -> ContentHeader:
    """Write the content header and its JSON; a fresh content UUID unless one is given."""
    if not 1 <= len(header_data) <= MAX_HEADER_DATA:
        raise ValueError(f"header data of {len(header_data)} bytes; 1..{MAX_HEADER_DATA} allowed")
    if not 0 <= part_number <= 255:
        raise ValueError(f"part number {part_number} outside 0..255")
    header = ContentHeader(
        content_magic,
        content_uuid or uuidlib.uuid4(),
        int(time.time()) if ctime is None else ctime,
        len(header_data),
        part_number,
    )
    writer.write(header.build())
    writer.write(header_data)
    return header


def read_exact(reader: BlockedReader, size: int, what: str) -> bytes:
    data = reader.read(size)
    if len(data) != size:
        raise TruncatedData(
            f"stream ends {size - len(data)} bytes short inside the {what}", reader.file_number, reader.block_index
        )
    return data


def read_content_start(reader: BlockedReader) -> tuple[ContentHeader, dict]:
    """The content header and its parsed JSON; obsolete v1.0 content is refused."""
    raw = CONTENT_HEADER.parse(read_exact(reader, CONTENT_HEADER_SIZE, "content header"))
    if raw.magic != magic.CONTENT_HEADER:
        raise BadMagic("not a PBS content header (wrong magic)", reader.file_number, 0)
    if raw.content_magic in OBSOLETE:
        raise UnsupportedVersion(f"unexpected {OBSOLETE[raw.content_magic]}", reader.file_number, 0)
    if not 1 <= raw.size <= MAX_HEADER_DATA:
        raise HeaderError(f"content header data size {raw.size} outside 1..{MAX_HEADER_DATA}", reader.file_number, 0)
    header = ContentHeader(raw.content_magic, uuidlib.UUID(bytes=raw.uuid), raw.ctime, raw.size, raw.part_number)
    data = read_exact(reader, raw.size, "content header data")
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HeaderError(f"{header.content_name} header data is not JSON: {error}", reader.file_number) from None
    if not isinstance(value, dict):
        raise HeaderError(f"{header.content_name} header data is not a JSON object", reader.file_number)
    return header, value
