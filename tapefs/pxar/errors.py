"""Errors raised by the pxar and catalog readers, writers and the extractor."""

import logging

from tapefs.errors import DataDamaged, NotFound, TapefsError

log = logging.getLogger(__name__)


class PxarError(TapefsError):
    """A pxar or catalog operation failed; the message is meant for the operator."""


class FormatError(DataDamaged, PxarError):
    """The archive bytes are not valid pxar (or pcat1); ``offset`` is where the problem is."""

    def __init__(self, message: str, offset: int | None = None, source: str | None = None):
        self.offset = offset
        self.source = source
        where = []
        if source:
            where.append(source)
        if offset is not None:
            where.append(f"byte offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class UnsafePathError(DataDamaged, PxarError):
    """An archive name or link target would place data outside the extraction target."""


class NotFoundError(NotFound, PxarError, KeyError):
    """No entry with this path exists in the archive or catalog."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class NotADirectory(PxarError):
    """A path component that must be a directory is something else."""


class ExistingEntryError(PxarError):
    """Extraction refused to replace something that already exists in its target.

    ``path`` is the conflicting path on disk; ``needed`` is the ``extract.Overwrite`` flag that
    would allow replacing it, or None when nothing does (a directory is never replaced).
    """

    def __init__(self, message: str, path: str, needed=None):
        super().__init__(message)
        self.path = path
        self.needed = needed
