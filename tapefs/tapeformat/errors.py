"""Errors of the tape format layer. Every one that comes from reading names the tape file
number and block, so a restore log line is enough to find the damage."""

from __future__ import annotations

from tapefs.errors import DataDamaged, DeviceFailure


class TapeFormatError(DataDamaged):
    """Data on tape that PBS's format does not allow."""

    def __init__(self, message: str, file_number: int | None = None, block: int | None = None):
        self.reason, self.file_number, self.block = message, file_number, block
        where = []
        if file_number is not None:
            where.append(f"tape file {file_number}")
        if block is not None:
            where.append(f"block {block}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class BadMagic(TapeFormatError):
    """A block, content header, entry or catalog starts with a magic we do not know."""


class UnsupportedVersion(TapeFormatError):
    """A v1.0 magic that PBS itself no longer reads."""


class BlockSizeError(TapeFormatError):
    """A block that is not exactly 256 KiB."""


class SequenceError(TapeFormatError):
    """A block's sequence number is not the one expected (lost or repeated block)."""


class HeaderError(TapeFormatError):
    """A block or content header with an impossible length or a JSON body that does not parse."""


class MissingEndMarker(TapeFormatError):
    """The file ended with a filemark before its END_OF_STREAM block: the writer was aborted."""


class UnexpectedEndOfData(TapeFormatError):
    """End of recorded data where a block or the closing filemark should be."""


class TruncatedData(TapeFormatError):
    """The stream ended in the middle of a header or an entry."""


class WrongContent(TapeFormatError):
    """A tape file holds another content type than the one asked for."""


class PhysicalEndOfTape(DeviceFailure):
    """The drive refused a block at the physical end of the medium; the block was not written."""


class ArchiveAborted(DeviceFailure):
    """The tape ran out in the middle of an archive. The file was closed with a filemark and no
    end marker, so readers ignore all of it; ``part`` tells what has to be written again."""

    def __init__(self, part):
        self.part = part
        super().__init__(
            f"tape file {part.file_number}: physical end of tape inside a "
            f"{part.kind} archive; part {part.part_number} must be written again"
        )


class MediaCatalogError(DataDamaged):
    """A binary media catalog (`.log`) that breaks the rules of docs/catalog-formats.md."""
