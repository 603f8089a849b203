"""Exceptions of the datastore layer. Each message is one line a user can act on."""

import logging
import os

from tapefs.errors import DataDamaged, InvalidInput, NotFound, TapefsError

log = logging.getLogger(__name__)


class DatastoreError(TapefsError):
    """Base class: anything wrong with a datastore, its files or its configuration."""


class UnknownNameError(NotFound, DatastoreError):
    """A datastore, snapshot or archive that does not exist."""


class SnapshotExistsError(DatastoreError):
    """A snapshot directory that is already there: never written into or replaced."""


class CorruptFileError(DataDamaged, DatastoreError):
    """A blob, index or manifest whose bytes are wrong; names the file and the byte offset."""

    def __init__(self, path: str | os.PathLike, offset: int, message: str):
        self.path = str(path)
        self.offset = offset
        self.reason = message
        super().__init__(f"{self.path}: at byte {offset}: {message}")


class ChunkMissingError(DataDamaged, DatastoreError):
    def __init__(self, digest: bytes, path: str | os.PathLike):
        self.digest = digest
        self.path = str(path)
        super().__init__(f"chunk {digest.hex()} missing ({self.path})")


class CryptoError(DataDamaged, DatastoreError):
    """Wrong key, missing key, failed authentication or signature."""


class NamingError(InvalidInput, DatastoreError, ValueError):
    """An invalid backup type, id, time, namespace or archive name."""


class DatastoreOptionError(InvalidInput, DatastoreError):
    """A datastore property that is malformed or does not apply to the datastore (an S3 option
    on a datastore without an S3 backend)."""
