"""The snapshot manifest ``index.json.blob`` (docs/datastore-format.md, "Manifest").

A DataBlob holding pretty-printed JSON: backup type, id and time, the list of files with crypt
mode, size and checksum, a free-form ``unprotected`` object and an optional HMAC signature over
the canonical JSON of everything else.
"""

import hmac
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from tapefs.config.atomic_file import atomic_write
from tapefs.config.private_files import PRIVATE_FILE_MODE
from tapefs.datastore.blob import decode_blob, encode_blob
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.errors import CorruptFileError, CryptoError

log = logging.getLogger(__name__)

MANIFEST_BLOB_NAME = "index.json.blob"
CRYPT_MODES = ("none", "encrypt", "sign-only")


@dataclass
class FileInfo:
    filename: str
    crypt_mode: str
    size: int
    csum: bytes

    def to_json(self) -> dict:
        return {"filename": self.filename, "crypt-mode": self.crypt_mode, "size": self.size, "csum": self.csum.hex()}


def _reject_null(value, where="manifest"):
    if value is None:
        raise CryptoError(f"{where}: null values cannot be signed")
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_null(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _reject_null(item, f"{where}[{index}]")


def canonical_json(value) -> bytes:
    """Sorted keys, no whitespace, raw UTF-8: what PBS signs."""
    _reject_null(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class Manifest:
    backup_type: str
    backup_id: str
    backup_time: int
    files: list[FileInfo] = field(default_factory=list)
    unprotected: dict = field(default_factory=dict)
    signature: bytes | None = None

    def add_file(self, filename: str, size: int, csum: bytes, crypt_mode: str = "none") -> None:
        if crypt_mode not in CRYPT_MODES:
            raise ValueError(f"invalid crypt mode {crypt_mode!r}")
        if any(f.filename == filename for f in self.files):
            raise ValueError(f"{filename} is already in the manifest")
        self.files.append(FileInfo(filename, crypt_mode, size, csum))

    def lookup(self, filename: str) -> FileInfo | None:
        for info in self.files:
            if info.filename == filename:
                return info
        return None

    def _signed_part(self) -> dict:
        return {
            "backup-type": self.backup_type,
            "backup-id": self.backup_id,
            "backup-time": self.backup_time,
            "files": [f.to_json() for f in self.files],
        }

    def compute_signature(self, crypt_config: CryptConfig) -> bytes:
        return crypt_config.sign(canonical_json(self._signed_part()))

    def sign(self, crypt_config: CryptConfig) -> None:
        self.unprotected["key-fingerprint"] = crypt_config.fingerprint_text()
        self.signature = self.compute_signature(crypt_config)

    @property
    def key_fingerprint(self) -> str | None:
        """Fingerprint of the key the snapshot was written with, if it recorded one."""
        return self.unprotected.get("key-fingerprint")

    def key_mismatch(self, crypt_config: CryptConfig | None) -> str | None:
        """Why ``crypt_config`` is not the snapshot's key; None if it is, or if either is unknown."""
        fingerprint = self.key_fingerprint
        if crypt_config is None or fingerprint is None or fingerprint == crypt_config.fingerprint_text():
            return None
        return f"manifest was written with key {fingerprint}, not {crypt_config.fingerprint_text()}"

    def verify_signature(self, crypt_config: CryptConfig | None) -> None:
        """Unsigned manifests pass; a signed one needs a matching key fingerprint and HMAC."""
        if crypt_config is None or self.signature is None:
            return
        mismatch = self.key_mismatch(crypt_config)
        if mismatch is not None:
            raise CryptoError(mismatch)
        if not hmac.compare_digest(self.compute_signature(crypt_config), self.signature):
            raise CryptoError("manifest signature mismatch")

    def to_json(self) -> dict:
        value = self._signed_part()
        value["unprotected"] = self.unprotected
        value["signature"] = self.signature.hex() if self.signature is not None else None
        return value

    def encode(self) -> bytes:
        """The blob bytes; never encrypted, the server must be able to read it."""
        return encode_blob(json.dumps(self.to_json(), indent=2, ensure_ascii=False).encode("utf-8"))

    @classmethod
    def from_json(cls, value: dict, source: str = MANIFEST_BLOB_NAME) -> "Manifest":
        try:
            files = [
                FileInfo(f["filename"], f.get("crypt-mode", "none"), int(f["size"]), bytes.fromhex(f["csum"]))
                for f in value["files"]
            ]
            signature = value.get("signature")
            return cls(
                value["backup-type"],
                value["backup-id"],
                int(value["backup-time"]),
                files,
                value.get("unprotected") or {},
                bytes.fromhex(signature) if signature else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptFileError(source, 12, f"malformed manifest: {exc!r}") from None

    @classmethod
    def decode(cls, raw: bytes, source: str = MANIFEST_BLOB_NAME) -> "Manifest":
        data = decode_blob(raw, None, source)
        try:
            value = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptFileError(source, 12, f"manifest is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise CorruptFileError(source, 12, "manifest is not a JSON object")
        return cls.from_json(value, source)

    @classmethod
    def load(cls, snapshot_dir: str | os.PathLike) -> "Manifest":
        path = Path(snapshot_dir) / MANIFEST_BLOB_NAME
        return cls.decode(path.read_bytes(), str(path))

    def save(self, snapshot_dir: str | os.PathLike) -> None:
        atomic_write(Path(snapshot_dir) / MANIFEST_BLOB_NAME, self.encode(), mode=PRIVATE_FILE_MODE)
