"""Everything derived from a 32-byte encryption key (docs/datastore-format.md): AES-256-GCM with 16-byte IVs,
keyed chunk digests, the key fingerprint and HMAC signatures."""

import hashlib
import hmac
import logging

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tapefs.datastore.errors import CryptoError

log = logging.getLogger(__name__)

KEY_SIZE = 32
IV_SIZE = 16
TAG_SIZE = 16

_FINGERPRINT_PREFIX = hashlib.sha256(b"Proxmox Backup Encryption Key Fingerprint").digest()


def plain_digest(data: bytes) -> bytes:
    """Digest of an unencrypted chunk (crypt modes none and sign-only)."""
    return hashlib.sha256(data).digest()


def format_fingerprint(fingerprint: bytes) -> str:
    """Colon-separated lower-case hex, as PBS prints fingerprints."""
    return ":".join(f"{b:02x}" for b in fingerprint)


def parse_fingerprint(text: str) -> bytes:
    try:
        value = bytes.fromhex(text.replace(":", ""))
    except ValueError:
        raise CryptoError(f"malformed key fingerprint {text!r}") from None
    if len(value) != 32:
        raise CryptoError(f"malformed key fingerprint {text!r}")
    return value


def aes_gcm_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    """Returns (ciphertext, tag)."""
    sealed = AESGCM(key).encrypt(iv, plaintext, None)
    return sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]


def aes_gcm_decrypt(key: bytes, iv: bytes, tag: bytes, ciphertext: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(iv, ciphertext + tag, None)
    except InvalidTag:
        raise CryptoError("authentication failed (wrong key or corrupt data)") from None


class CryptConfig:
    """A loaded encryption key and the values PBS derives from it."""

    def __init__(self, key: bytes):
        if len(key) != KEY_SIZE:
            raise CryptoError(f"encryption key must be {KEY_SIZE} bytes, got {len(key)}")
        self.key = bytes(key)
        self.id_key = hashlib.pbkdf2_hmac("sha256", self.key, b"_id_key", 10, 32)
        self._aes = AESGCM(self.key)

    def digest(self, data: bytes) -> bytes:
        """Digest of an encrypted chunk: SHA-256 over the data followed by id_key (not an HMAC)."""
        hasher = hashlib.sha256(data)
        hasher.update(self.id_key)
        return hasher.digest()

    def fingerprint(self) -> bytes:
        return hashlib.sha256(_FINGERPRINT_PREFIX + self.id_key).digest()

    def fingerprint_text(self) -> str:
        return format_fingerprint(self.fingerprint())

    def sign(self, message: bytes) -> bytes:
        return hmac.new(self.id_key, message, hashlib.sha256).digest()

    def encrypt(self, iv: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
        sealed = self._aes.encrypt(iv, plaintext, None)
        return sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]

    def decrypt(self, iv: bytes, tag: bytes, ciphertext: bytes) -> bytes:
        try:
            return self._aes.decrypt(iv, ciphertext + tag, None)
        except InvalidTag:
            raise CryptoError("authentication failed (wrong key or corrupt data)") from None
