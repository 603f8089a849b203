"""The drive's encryption state for tape jobs (docs/keys.md, "Encrypted media sets").

Every tape loaded for a job gets the state its media set asks for, never the one the drive was
left in: the set's derived key when its media-set label names a key fingerprint, no key
otherwise (a key left over from an earlier job would otherwise encrypt a plain pool's data). The
key goes into the drive in mixed decryption mode, so the plain label files stay readable; labels
themselves are always written with the key cleared.
"""

from __future__ import annotations

import logging

from tapefs.device.drive import Drive
from tapefs.jobs.errors import JobError
from tapefs.keys.errors import KeyNotFound
from tapefs.keys.key_store import TapeKeyStore, normalize_fingerprint
from tapefs.keys.media_set_key import MediaSetEncryption, drive_key_for_reading, media_set_encryption
from tapefs.scsi.errors import ConnectionLost, ScsiError
from tapefs.tapeformat.labels import TapeLabels

log = logging.getLogger(__name__)

#: The modes a drive reports with a key loaded as PBS loads it (encrypt, decrypt mixed) and without.
KEYED_MODE = "mixed"
UNKEYED_MODE = "off"


class TapeKeyMissing(KeyNotFound):
    """The key of an encrypted tape's media set is not in the key store."""

    def __init__(self, fingerprint: str, labels: TapeLabels):
        tape = labels.media.label_text if labels.media is not None else "the tape"
        super().__init__(
            fingerprint,
            f"tape {tape} (media set {labels.media_set.uuid}) is encrypted with it; "
            "get it back with 'tapefs key restore --drive DRIVE' (from this tape, "
            "with the key's password), '--key-file FILE' or '--key PAPERKEY'",
        )


class EncryptionNotEnabled(JobError):
    """The drive did not take the key: nothing may be written or read as if it had."""

    def __init__(self, drive: Drive, fingerprint: str, reason: str):
        super().__init__(f"{drive.path}: cannot load tape encryption key {fingerprint} into the drive: {reason}")


def set_drive_key_for_set(drive: Drive, labels: TapeLabels, store: TapeKeyStore | None = None) -> str | None:
    """Prepare ``drive`` to read the tape whose labels were just read: the media set's key if its
    label names one (returns the fingerprint), else no key (returns None)."""
    media_set = labels.media_set
    fingerprint = media_set.encryption_key_fingerprint if media_set is not None else None
    if fingerprint is None:
        clear_drive_key(drive)
        return None
    fingerprint = normalize_fingerprint(fingerprint)
    try:
        drive_key = drive_key_for_reading(fingerprint, str(media_set.uuid), store)
    except KeyNotFound:
        clear_drive_key(drive)
        raise TapeKeyMissing(fingerprint, labels) from None
    _load_key(drive, drive_key, fingerprint)
    return fingerprint


def media_set_encryption_for_pool(
    pool: str, fingerprint: str | None, media_set_uuid: str, store: TapeKeyStore | None = None
) -> MediaSetEncryption | None:
    """What writing the pool's current set needs (None for a plain pool); a key missing from the
    store fails the job before any tape is touched."""
    if fingerprint is None:
        return None
    try:
        return media_set_encryption(fingerprint, media_set_uuid, store)
    except KeyNotFound as error:
        raise KeyNotFound(
            error.fingerprint,
            f"media pool {pool} encrypts with it; get it back with "
            f"'tapefs key restore', or give the pool another key with "
            f"'tapefs pool update {pool} --encrypt FINGERPRINT'",
        ) from None


def enable_encryption_for_writing(drive: Drive, encryption: MediaSetEncryption) -> None:
    """Encrypt everything written from now on with the media set's drive key."""
    _load_key(drive, encryption.drive_key, encryption.fingerprint)


def clear_drive_key(drive: Drive) -> None:
    """No key in the drive: data is written plain. A drive without encryption has none to clear."""
    try:
        drive.clear_encryption_key()
    except ConnectionLost:
        raise
    except ScsiError as error:
        log.debug("%s: encryption not cleared: %s", drive.path, error)
    try:
        mode = drive.encryption_status().mode
    except ConnectionLost:
        raise
    except ScsiError:
        return  # no encryption status: a drive that cannot encrypt
    if mode != UNKEYED_MODE:
        raise JobError(f"{drive.path}: the drive still reports encryption mode {mode!r} after its key was cleared")


def _load_key(drive: Drive, drive_key: bytes, fingerprint: str) -> None:
    # A SCSI error names the command and its sense, never the parameter data holding the key.
    try:
        drive.set_encryption_key(drive_key)
        mode = drive.encryption_status().mode
    except ConnectionLost:
        raise
    except ScsiError as error:
        raise EncryptionNotEnabled(drive, fingerprint, str(error)) from None
    if mode != KEYED_MODE:
        raise EncryptionNotEnabled(drive, fingerprint, f"with the key set, the drive reports mode {mode!r}")
    log.info("%s: tape encryption on (key %s)", drive.path, fingerprint)
