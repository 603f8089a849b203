"""The tape key store: both files, their modes and checks, passwords and --force (docs/keys.md)."""
import base64
import json
import logging
import stat

import pytest

from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.key_config import KeyConfig
from tapefs.keys.errors import KeyExists, KeyNotFound, KeyStoreCorrupt, TapeKeyError
from tapefs.keys.key_store import KEY_CONFIGS_FILE, RAW_KEYS_FILE, TapeKeyStore, protect_key, unlock_key
from tapefs.keys.media_set_key import media_set_encryption

log = logging.getLogger(__name__)

KEY = bytes(range(32))
FINGERPRINT = CryptConfig(KEY).fingerprint_text()


@pytest.fixture
def store(tmp_path):
    return TapeKeyStore(tmp_path / "config")


def fast_config(key=KEY, password=b"password", hint="the usual"):
    # PBKDF2 keeps these unit tests quick; scrypt runs in the tests that create keys.
    return protect_key(key, password, kdf="pbkdf2", hint=hint)


def test_create_stores_both_copies_with_mode_0600(store):
    fingerprint = store.create(b"secret password", hint="the usual")
    for path in (store.raw_keys_path, store.key_configs_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (raw,) = json.loads(store.raw_keys_path.read_text())
    assert raw["fingerprint"] == fingerprint and CryptConfig(bytes.fromhex(raw["key"])).fingerprint_text() == fingerprint
    (protected,) = store.key_configs()
    assert "Scrypt" in protected.to_json()["kdf"] and protected.hint == "the usual"
    assert unlock_key(protected, b"secret password") == bytes.fromhex(raw["key"])


def test_pbkdf2_round_trip_and_wrong_password(store):
    store.insert(KEY, fast_config())
    assert unlock_key(store.key_config(FINGERPRINT), b"password") == KEY
    with pytest.raises(TapeKeyError, match="wrong passphrase"):
        unlock_key(store.key_config(FINGERPRINT), b"Password")


def test_short_password_missing_hint_long_hint_and_no_kdf_are_refused(store):
    with pytest.raises(TapeKeyError, match="at least 5"):
        store.create(b"1234", hint="h")
    with pytest.raises(TapeKeyError, match="hint is required"):
        store.create(b"password", hint="")
    with pytest.raises(TapeKeyError, match="1 to 32"):
        store.create(b"password", hint="x" * 33)
    with pytest.raises(TapeKeyError, match="key derivation"):
        protect_key(KEY, b"password", kdf="none")
    assert not store.raw_keys_path.exists()


def test_unprotected_key_config_is_refused():
    with pytest.raises(TapeKeyError, match="not password protected"):
        unlock_key(KeyConfig.create(KEY, None), b"password")


def test_decrypt_checks_the_stored_fingerprint():
    # PBS's pbs-key-config test: a wrong stored fingerprint fails, none at all succeeds.
    config = fast_config()
    config.fingerprint = bytes(32)
    with pytest.raises(TapeKeyError, match="fingerprint does not match"):
        unlock_key(config, b"password")
    config.fingerprint = None
    assert unlock_key(config, b"password") == KEY


def test_insert_twice_needs_force(store):
    store.insert(KEY, fast_config())
    with pytest.raises(KeyExists, match=FINGERPRINT):
        store.insert(KEY, fast_config(hint="other"))
    store.insert(KEY, fast_config(hint="other"), force=True)
    assert [c.hint for c in store.key_configs()] == ["other"]


def test_insert_refuses_a_config_of_another_key(store):
    with pytest.raises(TapeKeyError, match="does not belong"):
        store.insert(KEY, fast_config(key=bytes(32)))


def test_change_passphrase_with_the_old_password_keeps_key_created_and_hint(store):
    store.insert(KEY, fast_config())
    before = store.key_config(FINGERPRINT)
    store.change_passphrase(FINGERPRINT, b"new password", old_password=b"password", kdf="pbkdf2")
    after = store.key_config(FINGERPRINT)
    assert unlock_key(after, b"new password") == KEY
    assert (after.created, after.hint) == (before.created, before.hint)
    with pytest.raises(TapeKeyError):
        unlock_key(after, b"password")


def test_change_passphrase_with_a_wrong_password_changes_nothing(store):
    store.insert(KEY, fast_config())
    before = (store.raw_keys_path.read_bytes(), store.key_configs_path.read_bytes())
    with pytest.raises(TapeKeyError, match="wrong passphrase"):
        store.change_passphrase(FINGERPRINT, b"new password", old_password=b"guessed", kdf="pbkdf2")
    with pytest.raises(TapeKeyError, match="current password is needed"):
        store.change_passphrase(FINGERPRINT, b"new password", kdf="pbkdf2")
    assert (store.raw_keys_path.read_bytes(), store.key_configs_path.read_bytes()) == before


def test_change_passphrase_force_uses_the_raw_copy_when_the_password_is_lost(store):
    store.insert(KEY, fast_config())
    store.change_passphrase(FINGERPRINT, b"new password", hint="new hint", kdf="pbkdf2", force=True)
    assert unlock_key(store.key_config(FINGERPRINT), b"new password") == KEY
    assert store.key_config(FINGERPRINT).hint == "new hint"


def test_force_without_a_raw_copy_is_refused(store):
    store.insert(KEY, fast_config())
    store.raw_keys_path.write_text("[]")
    with pytest.raises(TapeKeyError, match="no root-only copy"):
        store.change_passphrase(FINGERPRINT, b"new password", kdf="pbkdf2", force=True)


def test_remove_drops_both_copies(store):
    store.insert(KEY, fast_config())
    store.remove(FINGERPRINT.replace(":", ""))
    assert store.key_configs() == []
    with pytest.raises(KeyNotFound):
        store.raw_key(FINGERPRINT)
    with pytest.raises(KeyNotFound, match=FINGERPRINT):
        store.remove(FINGERPRINT)


def test_raw_key_file_with_a_wrong_fingerprint_is_refused(store):
    store.insert(KEY, fast_config())
    entries = json.loads(store.raw_keys_path.read_text())
    entries[0]["key"] = bytes(32).hex()
    store.raw_keys_path.write_text(json.dumps(entries))
    with pytest.raises(KeyStoreCorrupt, match="does not match"):
        store.raw_key(FINGERPRINT)


@pytest.mark.parametrize("file_name, read", [(RAW_KEYS_FILE, lambda store: store.raw_key(FINGERPRINT)),
                                             (KEY_CONFIGS_FILE, lambda store: store.key_configs())])
def test_duplicate_entries_are_refused(store, file_name, read):
    store.insert(KEY, fast_config())
    path = store.directory / file_name
    path.write_text(json.dumps(json.loads(path.read_text()) * 2))
    with pytest.raises(KeyStoreCorrupt, match="duplicate"):
        read(store)


def test_store_files_have_pbs_names_in_the_config_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TAPEFS_CONFIG_DIR", str(tmp_path / "cfg"))
    store = TapeKeyStore()
    store.insert(KEY, fast_config())
    assert sorted(p.name for p in (tmp_path / "cfg").iterdir() if not p.name.startswith(".")) == sorted(
        [RAW_KEYS_FILE, KEY_CONFIGS_FILE])


def test_key_operations_log_fingerprints_but_never_key_bytes(store, caplog):
    caplog.set_level("DEBUG")
    store.insert(KEY, fast_config())
    store.change_passphrase(FINGERPRINT, b"new password", old_password=b"password", kdf="pbkdf2")
    encryption = media_set_encryption(FINGERPRINT, "00000000-0000-0000-0000-000000000001", store)
    log.debug("job would log %s", encryption)
    store.remove(FINGERPRINT)
    assert FINGERPRINT in caplog.text
    for secret in (KEY, encryption.drive_key):
        assert secret.hex() not in caplog.text and base64.b64encode(secret).decode().rstrip("=") not in caplog.text
