"""The key a drive gets for one media set (docs/keys.md, "Encrypted media sets").

PBS never hands a tape key to the drive as it is: each media set gets
``PBKDF2-HMAC-SHA256(key, salt=media-set UUID bytes, 10 iterations, 32 bytes)``, so two sets written
with the same tape key are encrypted differently. The set label carries the password-protected
KeyConfig, so a tape can give its key back to whoever knows the password (``key restore``).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field

from tapefs.datastore.crypt_config import KEY_SIZE
from tapefs.keys.errors import KeyNotFound, TapeKeyError
from tapefs.keys.key_store import TapeKeyStore, normalize_fingerprint

log = logging.getLogger(__name__)

DRIVE_KEY_ITERATIONS = 10


def derive_drive_key(key: bytes, media_set_uuid: str) -> bytes:
    """The 32-byte AES-GCM key the drive uses for the media set ``media_set_uuid``."""
    try:
        salt = uuid.UUID(media_set_uuid).bytes
    except (ValueError, AttributeError, TypeError):
        raise TapeKeyError(f"malformed media-set UUID {media_set_uuid!r}") from None
    return hashlib.pbkdf2_hmac("sha256", key, salt, DRIVE_KEY_ITERATIONS, KEY_SIZE)


@dataclass(frozen=True)
class MediaSetEncryption:
    """What writing an encrypted media set needs: the fingerprint and the protected key config for
    the media-set label (``encryption_key_fingerprint`` and ``key-config``), and the drive key for
    SECURITY PROTOCOL OUT. The drive key is left out of repr so it cannot end up in a log."""

    fingerprint: str
    key_config: dict
    drive_key: bytes = field(repr=False)


def media_set_encryption(
    fingerprint: str, media_set_uuid: str, store: TapeKeyStore | None = None
) -> MediaSetEncryption:
    """For a pool with ``encrypt = fingerprint`` starting the media set ``media_set_uuid``."""
    store = store or TapeKeyStore()
    fingerprint = normalize_fingerprint(fingerprint)
    key = store.raw_key(fingerprint)
    key_config = store.key_config(fingerprint)
    return MediaSetEncryption(fingerprint, key_config.to_json(), derive_drive_key(key, media_set_uuid))


def drive_key_for_reading(fingerprint: str, media_set_uuid: str, store: TapeKeyStore | None = None) -> bytes:
    """The drive key to read a set whose label names ``fingerprint``; a key missing from the store
    is an error naming the fingerprint and how to get the key back."""
    store = store or TapeKeyStore()
    try:
        key = store.raw_key(fingerprint)
    except KeyNotFound as error:
        raise KeyNotFound(
            error.fingerprint,
            "restore it with 'tapefs key restore' (from the tape with its password, or from a paper key)",
        ) from None
    return derive_drive_key(key, media_set_uuid)
