"""The tape key store, as PBS keeps it in its configuration directory (docs/keys.md).

Two files, written together under one lock:

* ``tape-encryption-keys.json``: ``[{"fingerprint": ..., "key": "<64 hex>"}]``, the raw keys, which
  the drive needs and which let ``change-passphrase --force`` re-protect a key whose password is lost;
* ``tape-encryption-key-config.json``: the same keys as password-protected KeyConfig objects, the
  form that goes into media-set labels and onto paper.

Both are mode 0600: the first holds plain keys, and we give the second no reason to differ.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from tapefs.config.atomic_file import atomic_write
from tapefs.config.paths import config_dir
from tapefs.config.private_files import make_private_dirs
from tapefs.datastore.crypt_config import KEY_SIZE, CryptConfig, format_fingerprint, parse_fingerprint
from tapefs.datastore.errors import CryptoError
from tapefs.datastore.key_config import KeyConfig
from tapefs.keys.errors import KeyExists, KeyNotFound, KeyStoreCorrupt, TapeKeyError

log = logging.getLogger(__name__)

RAW_KEYS_FILE = "tape-encryption-keys.json"
KEY_CONFIGS_FILE = "tape-encryption-key-config.json"
LOCK_FILE = ".tape-encryption-keys.lck"
KEY_FILE_MODE = 0o600
#: proxmox-tape key create limits the hint to 1..32 characters.
MAX_HINT_LENGTH = 32
#: CLI spellings of the key derivations; tape keys always have one (never "none").
KDF_NAMES = {"scrypt": "Scrypt", "pbkdf2": "PBKDF2"}


def normalize_fingerprint(text: str) -> str:
    """The full colon form of a fingerprint given in any case, with or without colons."""
    try:
        return format_fingerprint(parse_fingerprint(text.strip()))
    except CryptoError as error:
        raise TapeKeyError(str(error)) from None


def check_hint(hint: str | None) -> None:
    if hint is not None and not 1 <= len(hint) <= MAX_HINT_LENGTH:
        raise TapeKeyError(f"the password hint must have 1 to {MAX_HINT_LENGTH} characters")


def _kdf_name(kdf: str) -> str:
    try:
        return KDF_NAMES[kdf.lower()]
    except KeyError:
        raise TapeKeyError(f"tape keys need a key derivation ({' or '.join(KDF_NAMES)}), not {kdf!r}") from None


def protect_key(key: bytes, password: bytes, kdf: str = "scrypt", hint: str | None = None) -> KeyConfig:
    """A password-protected KeyConfig for ``key`` (always with its fingerprint)."""
    check_hint(hint)
    try:
        return KeyConfig.create(key, password, kdf_name=_kdf_name(kdf), hint=hint)
    except CryptoError as error:
        raise TapeKeyError(str(error)) from None


def unlock_key(key_config: KeyConfig, password: bytes) -> bytes:
    """The raw key inside a protected KeyConfig; a wrong password is a TapeKeyError."""
    if key_config.kdf is None:
        raise TapeKeyError("the key config is not password protected; tape keys must be")
    try:
        return key_config.decrypt(password).key
    except CryptoError as error:
        raise TapeKeyError(str(error)) from None


class TapeKeyStore:
    """The two key files in one configuration directory (default: tapefs's config dir)."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory is not None else config_dir()

    @property
    def raw_keys_path(self) -> Path:
        return self.directory / RAW_KEYS_FILE

    @property
    def key_configs_path(self) -> Path:
        return self.directory / KEY_CONFIGS_FILE

    # -- reading ---------------------------------------------------------------------------------

    def key_configs(self) -> list[KeyConfig]:
        """Every password-protected key, in the order they were added."""
        return list(self._load_key_configs().values())

    def key_config(self, fingerprint: str) -> KeyConfig:
        fingerprint = normalize_fingerprint(fingerprint)
        try:
            return self._load_key_configs()[fingerprint]
        except KeyError:
            raise KeyNotFound(fingerprint) from None

    def raw_key(self, fingerprint: str) -> bytes:
        """The plain key; readable only by whoever may read the root-only file."""
        fingerprint = normalize_fingerprint(fingerprint)
        try:
            return self._load_raw_keys()[fingerprint]
        except KeyError:
            raise KeyNotFound(fingerprint) from None

    def _load_raw_keys(self) -> dict[str, bytes]:
        keys: dict[str, bytes] = {}
        for entry in self._read_array(self.raw_keys_path):
            try:
                fingerprint, key = normalize_fingerprint(entry["fingerprint"]), bytes.fromhex(entry["key"])
            except (KeyError, TypeError, ValueError, TapeKeyError):
                raise KeyStoreCorrupt(f"{self.raw_keys_path}: malformed entry") from None
            if len(key) != KEY_SIZE or CryptConfig(key).fingerprint_text() != fingerprint:
                raise KeyStoreCorrupt(f"{self.raw_keys_path}: the key stored for {fingerprint} does not match it")
            if fingerprint in keys:
                raise KeyStoreCorrupt(f"{self.raw_keys_path}: duplicate key {fingerprint}")
            keys[fingerprint] = key
        return keys

    def _load_key_configs(self) -> dict[str, KeyConfig]:
        configs: dict[str, KeyConfig] = {}
        for entry in self._read_array(self.key_configs_path):
            try:
                key_config = KeyConfig.from_json(entry)
            except CryptoError as error:
                raise KeyStoreCorrupt(f"{self.key_configs_path}: {error}") from None
            if key_config.fingerprint is None:
                raise KeyStoreCorrupt(f"{self.key_configs_path}: a key config without fingerprint")
            fingerprint = format_fingerprint(key_config.fingerprint)
            if fingerprint in configs:
                raise KeyStoreCorrupt(f"{self.key_configs_path}: duplicate key {fingerprint}")
            configs[fingerprint] = key_config
        return configs

    @staticmethod
    def _read_array(path: Path) -> list:
        try:
            value = json.loads(path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as error:
            raise KeyStoreCorrupt(f"{path}: {error}") from None
        if not isinstance(value, list):
            raise KeyStoreCorrupt(f"{path}: expected a JSON array")
        return value

    # -- changing --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        make_private_dirs(self.directory)
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, KEY_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _save(self, raw_keys: dict[str, bytes], configs: dict[str, KeyConfig]) -> None:
        # Raw keys first: a crash in between leaves a key the drive can use and a missing protected
        # copy (re-created by change-passphrase --force), never a protected copy of a lost key.
        raw = [{"fingerprint": fingerprint, "key": key.hex()} for fingerprint, key in raw_keys.items()]
        atomic_write(self.raw_keys_path, (json.dumps(raw, indent=2) + "\n").encode(), mode=KEY_FILE_MODE)
        protected = [config.to_json() for config in configs.values()]
        atomic_write(self.key_configs_path, (json.dumps(protected, indent=2) + "\n").encode(), mode=KEY_FILE_MODE)

    def insert(self, key: bytes, key_config: KeyConfig, force: bool = False) -> str:
        """Add a key and its protected copy; ``force`` replaces an existing one. Returns its fingerprint."""
        fingerprint = CryptConfig(key).fingerprint_text()
        if key_config.fingerprint is None or format_fingerprint(key_config.fingerprint) != fingerprint:
            raise TapeKeyError(f"the key config does not belong to key {fingerprint}")
        with self._locked():
            raw_keys, configs = self._load_raw_keys(), self._load_key_configs()
            if not force and (fingerprint in raw_keys or fingerprint in configs):
                raise KeyExists(fingerprint)
            raw_keys[fingerprint] = bytes(key)
            configs[fingerprint] = key_config
            self._save(raw_keys, configs)
        log.info("stored tape encryption key %s", fingerprint)
        return fingerprint

    def create(self, password: bytes, hint: str, kdf: str = "scrypt") -> str:
        """A new random key, stored; returns its fingerprint."""
        if not hint:
            raise TapeKeyError("a password hint is required")
        key = os.urandom(KEY_SIZE)
        return self.insert(key, protect_key(key, password, kdf, hint))

    def change_passphrase(
        self,
        fingerprint: str,
        new_password: bytes,
        old_password: bytes | None = None,
        hint: str | None = None,
        kdf: str = "scrypt",
        force: bool = False,
    ) -> None:
        """Protect a key with a new password. Without ``force`` the old password must open the stored
        copy; with it, the root-only raw key is used and the old password is not needed."""
        fingerprint = normalize_fingerprint(fingerprint)
        with self._locked():
            raw_keys, configs = self._load_raw_keys(), self._load_key_configs()
            if fingerprint not in configs and fingerprint not in raw_keys:
                raise KeyNotFound(fingerprint)
            if force:
                if fingerprint not in raw_keys:
                    raise TapeKeyError(f"no root-only copy of key {fingerprint}: --force cannot reset it")
                key = raw_keys[fingerprint]
            else:
                if fingerprint not in configs:
                    raise TapeKeyError(f"key {fingerprint} has no password-protected copy: use --force")
                if old_password is None:
                    raise TapeKeyError("the current password is needed (or --force)")
                key = unlock_key(configs[fingerprint], old_password)
            old_config = configs.get(fingerprint)
            new_config = protect_key(
                key, new_password, kdf, hint if hint is not None else old_config and old_config.hint
            )
            if old_config is not None:  # "modified" is now, as KeyConfig.create set it
                new_config.created = old_config.created
            raw_keys[fingerprint] = key
            configs[fingerprint] = new_config
            self._save(raw_keys, configs)
        log.info("changed the password of tape encryption key %s", fingerprint)

    def remove(self, fingerprint: str) -> None:
        fingerprint = normalize_fingerprint(fingerprint)
        with self._locked():
            raw_keys, configs = self._load_raw_keys(), self._load_key_configs()
            if fingerprint not in raw_keys and fingerprint not in configs:
                raise KeyNotFound(fingerprint)
            raw_keys.pop(fingerprint, None)
            configs.pop(fingerprint, None)
            self._save(raw_keys, configs)
        log.info("removed tape encryption key %s", fingerprint)
