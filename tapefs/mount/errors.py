"""Why a read through the mount failed: each error carries the errno the file system answers with
and a one-line message naming the tape, file number and offset (or the key) involved."""

from __future__ import annotations

import errno as errno_codes

from tapefs.errors import TapefsError


class MountReadError(TapefsError):
    """A read that cannot be answered; `errno` is what the file system returns."""

    errno = errno_codes.EIO

    def __init__(self, message: str):
        super().__init__(message)


class MediaUnavailable(MountReadError):
    """The tape is offline, vaulted, or was not inserted before the read timeout."""

    errno = errno_codes.ENOMEDIUM


class KeyUnavailable(MountReadError):
    """The key a chunk or a media set is encrypted with is not known here."""

    errno = errno_codes.EACCES


class ChunkDamaged(MountReadError):
    """A chunk read from tape fails its CRC or digest check, or its tape file is damaged there."""


class ChunkNotOnTape(MountReadError):
    """The catalog does not say where the chunk is (or the tape does not hold it where it says)."""
