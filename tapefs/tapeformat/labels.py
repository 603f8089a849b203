"""Media label (file 0) and media-set label (file 1): docs/tape-format.md, "Labels" and
"What readers do".

Both are plaintext files whose content is only the header JSON. The set label may embed the
password-protected key config; this layer carries it as an opaque JSON object.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid as uuidlib

from tapefs.tapeformat import magic
from tapefs.tapeformat.block import BlockedWriter, open_next_file
from tapefs.tapeformat.block_device import BlockDevice, Mark
from tapefs.tapeformat.content_header import pretty_json, read_content_start, write_content_start
from tapefs.tapeformat.errors import HeaderError, TapeFormatError, WrongContent

log = logging.getLogger(__name__)

#: The all-zero set UUID of old PBS versions: an empty tape reserved for a pool.
UNASSIGNED_SET_UUID = uuidlib.UUID(int=0)


@dataclasses.dataclass(frozen=True)
class MediaLabel:
    uuid: uuidlib.UUID
    label_text: str
    ctime: int
    pool: str | None = None

    def to_json(self) -> dict:
        value = {"ctime": self.ctime, "label_text": self.label_text, "uuid": str(self.uuid)}
        if self.pool is not None:
            value["pool"] = self.pool
        return value

    @classmethod
    def from_json(cls, value: dict) -> MediaLabel:
        return cls(uuidlib.UUID(value["uuid"]), value["label_text"], int(value["ctime"]), value.get("pool"))


@dataclasses.dataclass(frozen=True)
class MediaSetLabel:
    pool: str
    uuid: uuidlib.UUID
    seq_nr: int
    ctime: int
    encryption_key_fingerprint: str | None = None
    #: The password-protected KeyConfig JSON object, written as `key-config` when encrypted.
    key_config: dict | None = None

    @property
    def is_unassigned(self) -> bool:
        return self.uuid == UNASSIGNED_SET_UUID

    def to_json(self) -> dict:
        value = {"ctime": self.ctime, "pool": self.pool, "seq_nr": self.seq_nr, "uuid": str(self.uuid)}
        if self.encryption_key_fingerprint is not None:
            value["encryption_key_fingerprint"] = self.encryption_key_fingerprint
        if self.key_config is not None:
            value["key-config"] = self.key_config
        return value

    @classmethod
    def from_json(cls, value: dict) -> MediaSetLabel:
        # Unknown keys are ignored, as PBS does.
        return cls(
            value["pool"],
            uuidlib.UUID(value["uuid"]),
            int(value["seq_nr"]),
            int(value["ctime"]),
            value.get("encryption_key_fingerprint"),
            value.get("key-config"),
        )


@dataclasses.dataclass(frozen=True)
class TapeLabels:
    """What `read_labels` found; both None on an empty tape."""

    media: MediaLabel | None
    media_set: MediaSetLabel | None


def _write_label_file(device: BlockDevice, content_magic: bytes, value: dict) -> None:
    # PBS prints labels through a generic JSON value, whose objects keep their keys sorted at
    # every level: the key config inside a set label (and its kdf) too.
    writer = BlockedWriter(device)
    write_content_start(writer, content_magic, pretty_json(value, sort_keys=True))
    writer.finish()
    device.sync()


def write_media_label(device: BlockDevice, label: MediaLabel) -> None:
    """Write file 0 at the beginning of tape; whatever the tape held is gone afterwards."""
    device.rewind()
    _write_label_file(device, magic.MEDIA_LABEL, label.to_json())
    log.info("wrote media label %s (%s)", label.label_text, label.uuid)


def write_media_set_label(device: BlockDevice, label: MediaSetLabel) -> None:
    """Write file 1; every later file of the tape is gone afterwards."""
    device.locate_file(1)
    _write_label_file(device, magic.MEDIA_SET_LABEL, label.to_json())
    log.info("wrote media-set label %s seq %d (pool %s)", label.uuid, label.seq_nr, label.pool)


def _read_label_file(device: BlockDevice, content_magic: bytes, what: str, label_class):
    """The label of the file at the position, or None at end of data."""
    reader = open_next_file(device)
    if reader is Mark.END_OF_DATA:
        return None
    if reader is Mark.FILEMARK:
        raise TapeFormatError(f"filemark where the {what} should be", device.position().file_number - 1)
    header, value = read_content_start(reader)
    if header.content_magic != content_magic:
        raise WrongContent(f"expected a {what}, found a {header.content_name}", reader.file_number)
    # Reading on also checks the end marker: MissingEndMarker if the label was never finished.
    if reader.read(1):
        raise HeaderError(f"unexpected data after the {what}", reader.file_number, reader.block_index)
    try:
        return label_class.from_json(value)
    except KeyError as error:
        raise HeaderError(f"{what} JSON lacks {error}", reader.file_number) from None
    except (ValueError, TypeError) as error:
        raise HeaderError(f"{what} JSON: {error}", reader.file_number) from None


def read_labels(device: BlockDevice) -> TapeLabels:
    """Rewind and read files 0 and 1; afterwards the tape stands at file 2."""
    device.rewind()
    media = _read_label_file(device, magic.MEDIA_LABEL, "media label", MediaLabel)
    if media is None:
        return TapeLabels(None, None)
    return TapeLabels(media, _read_label_file(device, magic.MEDIA_SET_LABEL, "media-set label", MediaSetLabel))
