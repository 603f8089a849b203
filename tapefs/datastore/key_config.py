"""Encryption key files as proxmox-backup-client writes them
(docs/datastore-format.md, "Digests and keys").

``{"kdf": null | {"Scrypt": {...}} | {"PBKDF2": {...}}, "created", "modified", "data",
"fingerprint", "hint"}``. With a KDF, ``data`` is IV(16) | tag(16) | AES-256-GCM(derived key, K).
"""

import base64
import datetime
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from tapefs.config.atomic_file import atomic_write
from tapefs.datastore.crypt_config import (
    IV_SIZE,
    KEY_SIZE,
    TAG_SIZE,
    CryptConfig,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    parse_fingerprint,
)
from tapefs.datastore.errors import CryptoError

log = logging.getLogger(__name__)

SCRYPT_DEFAULTS = {"n": 65536, "r": 8, "p": 1}
PBKDF2_DEFAULT_ITERATIONS = 65535
MIN_PASSPHRASE_LENGTH = 5


@dataclass
class Kdf:
    """Key derivation: ``name`` is "Scrypt" or "PBKDF2" (serde's variant names)."""

    name: str
    salt: bytes
    params: dict = field(default_factory=dict)

    def derive(self, passphrase: bytes) -> bytes:
        if self.name == "Scrypt":
            n, r, p = self.params["n"], self.params["r"], self.params["p"]
            # hashlib's default maxmem (32 MiB) is below what N=65536, r=8 needs (64 MiB)
            return hashlib.scrypt(
                passphrase, salt=self.salt, n=n, r=r, p=p, dklen=KEY_SIZE, maxmem=256 * n * r + (16 << 20)
            )
        if self.name == "PBKDF2":
            return hashlib.pbkdf2_hmac("sha256", passphrase, self.salt, self.params["iter"], KEY_SIZE)
        raise CryptoError(f"unsupported key derivation {self.name!r}")

    def to_json(self) -> dict:
        return {self.name: {**self.params, "salt": base64.b64encode(self.salt).decode("ascii")}}

    @classmethod
    def from_json(cls, value: dict) -> "Kdf":
        if not isinstance(value, dict) or len(value) != 1:
            raise CryptoError(f"malformed kdf entry {value!r}")
        ((name, params),) = value.items()
        if name not in ("Scrypt", "PBKDF2") or not isinstance(params, dict) or "salt" not in params:
            raise CryptoError(f"unsupported kdf entry {value!r}")
        params = dict(params)
        salt = base64.b64decode(params.pop("salt"))
        return cls(name, salt, params)


def _now_rfc3339() -> str:
    return datetime.datetime.now().astimezone().replace(microsecond=0).isoformat()


@dataclass
class KeyConfig:
    kdf: Kdf | None
    data: bytes
    created: str
    modified: str
    fingerprint: bytes | None = None
    hint: str | None = None

    @classmethod
    def create(
        cls, key: bytes, passphrase: bytes | None, kdf_name: str = "Scrypt", hint: str | None = None
    ) -> "KeyConfig":
        """Wrap ``key``; ``passphrase=None`` stores it in the clear (``kdf: null``)."""
        now = _now_rfc3339()
        fingerprint = CryptConfig(key).fingerprint()
        if passphrase is None:
            return cls(None, bytes(key), now, now, fingerprint, hint)
        if len(passphrase) < MIN_PASSPHRASE_LENGTH:
            raise CryptoError(f"passphrase must be at least {MIN_PASSPHRASE_LENGTH} bytes")
        salt = os.urandom(32)
        if kdf_name == "Scrypt":
            kdf = Kdf("Scrypt", salt, dict(SCRYPT_DEFAULTS))
        elif kdf_name == "PBKDF2":
            kdf = Kdf("PBKDF2", salt, {"iter": PBKDF2_DEFAULT_ITERATIONS})
        else:
            raise CryptoError(f"unsupported key derivation {kdf_name!r}")
        iv = os.urandom(IV_SIZE)
        ciphertext, tag = aes_gcm_encrypt(kdf.derive(passphrase), iv, key)
        return cls(kdf, iv + tag + ciphertext, now, now, fingerprint, hint)

    def decrypt(self, passphrase: bytes | None = None) -> CryptConfig:
        """The key as a CryptConfig; refuses a wrong passphrase or a fingerprint mismatch."""
        if self.kdf is None:
            key = self.data
        else:
            if passphrase is None:
                raise CryptoError("key file is protected by a passphrase, none given")
            if len(passphrase) < MIN_PASSPHRASE_LENGTH:
                raise CryptoError(f"passphrase must be at least {MIN_PASSPHRASE_LENGTH} bytes")
            if len(self.data) != IV_SIZE + TAG_SIZE + KEY_SIZE:
                raise CryptoError(f"key data has {len(self.data)} bytes, expected {IV_SIZE + TAG_SIZE + KEY_SIZE}")
            iv, tag, ciphertext = self.data[:16], self.data[16:32], self.data[32:]
            try:
                key = aes_gcm_decrypt(self.kdf.derive(passphrase), iv, tag, ciphertext)
            except CryptoError:
                raise CryptoError("unable to decrypt key (wrong passphrase?)") from None
        crypt_config = CryptConfig(key)
        if self.fingerprint is not None and crypt_config.fingerprint() != self.fingerprint:
            raise CryptoError("key fingerprint does not match the stored fingerprint")
        return crypt_config

    def to_json(self) -> dict:
        value = {
            "kdf": self.kdf.to_json() if self.kdf else None,
            "created": self.created,
            "modified": self.modified,
            "data": base64.b64encode(self.data).decode("ascii"),
        }
        if self.fingerprint is not None:
            value["fingerprint"] = ":".join(f"{b:02x}" for b in self.fingerprint)
        if self.hint is not None:
            value["hint"] = self.hint
        return value

    @classmethod
    def from_json(cls, value: dict) -> "KeyConfig":
        try:
            kdf = Kdf.from_json(value["kdf"]) if value.get("kdf") is not None else None
            fingerprint = parse_fingerprint(value["fingerprint"]) if value.get("fingerprint") else None
            return cls(
                kdf,
                base64.b64decode(value["data"], validate=True),
                value["created"],
                value["modified"],
                fingerprint,
                value.get("hint"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CryptoError(f"malformed key file: {exc}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "KeyConfig":
        try:
            value = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise CryptoError(f"{path}: cannot read key file: {exc}") from None
        try:
            return cls.from_json(value)
        except CryptoError as exc:
            raise CryptoError(f"{path}: {exc}") from None

    def save(self, path: str | os.PathLike) -> None:
        atomic_write(path, (json.dumps(self.to_json(), indent=2) + "\n").encode(), mode=0o600)
