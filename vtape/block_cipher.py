"""The drive's data encryption: AES-256-GCM per block, as LTO-4 and later drives do.

Only the drive holds the key (set by SECURITY PROTOCOL OUT); the cartridge
stores the sealed block and an 8-byte key id, so a read can tell "no key",
"wrong key" and "not encrypted" apart without trying to decrypt.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import sense
from .cartridge import FLAG_ENCRYPTED, Entry
from .sense import CheckCondition

NONCE_SIZE = 12

ENCRYPT_DISABLE, ENCRYPT_EXTERNAL, ENCRYPT_ON = 0, 1, 2
DECRYPT_DISABLE, DECRYPT_RAW, DECRYPT_ON, DECRYPT_MIXED = 0, 1, 2, 3


def key_id(key: bytes) -> int:
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little")


class BlockCipher:
    """Encryption and decryption modes plus the key, as SECURITY PROTOCOL OUT set them."""

    def __init__(self):
        self.encryption_mode = ENCRYPT_DISABLE
        self.decryption_mode = DECRYPT_DISABLE
        self.algorithm_index = 1
        self.key_instance_counter = 0
        self.kad = b""
        self._key: bytes | None = None
        self._aead: AESGCM | None = None
        self.key_id = 0

    @property
    def has_key(self) -> bool:
        return self._key is not None

    def set(self, encryption_mode: int, decryption_mode: int, key: bytes | None, kad: bytes = b"") -> None:
        self.encryption_mode, self.decryption_mode, self.kad = encryption_mode, decryption_mode, kad
        self._key = key
        self._aead = AESGCM(key) if key else None
        self.key_id = key_id(key) if key else 0
        self.key_instance_counter += 1

    def seal(self, data: bytes | memoryview) -> tuple[bytes | memoryview, int, int]:
        """(stored bytes, entry flags, key id) for a block the host writes."""
        if self.encryption_mode != ENCRYPT_ON or self._aead is None:
            return data, 0, 0
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, bytes(data), None), FLAG_ENCRYPTED, self.key_id

    def require_plain_allowed(self) -> None:
        if self.decryption_mode == DECRYPT_ON:
            raise CheckCondition(sense.DATA_PROTECT, 0x74, 0x02)  # unencrypted data in DECRYPT mode

    def open(self, entry: Entry, stored: bytes) -> bytes:
        """The plain block, or the DATA PROTECT sense SSC prescribes."""
        if not entry.encrypted:
            self.require_plain_allowed()
            return stored
        if self.decryption_mode == DECRYPT_RAW:
            return stored
        if self.decryption_mode == DECRYPT_DISABLE:
            raise CheckCondition(sense.DATA_PROTECT, 0x74, 0x01)  # unable to decrypt
        if self._aead is None or entry.key_id != self.key_id:
            raise CheckCondition(sense.DATA_PROTECT, 0x74, 0x03)  # incorrect key
        try:
            return self._aead.decrypt(stored[:NONCE_SIZE], stored[NONCE_SIZE:], None)
        except InvalidTag:
            raise CheckCondition(sense.MEDIUM_ERROR, 0x11, 0x00) from None  # the sealed block is damaged
