"""Fingerprints and the per-media-set drive key against known vectors (docs/keys.md)."""
import hashlib

import pytest

from tapefs.datastore.crypt_config import CryptConfig
from tapefs.keys.errors import KeyNotFound, TapeKeyError
from tapefs.keys.key_store import TapeKeyStore, normalize_fingerprint, protect_key
from tapefs.keys.media_set_key import derive_drive_key, drive_key_for_reading, media_set_encryption

KEY_0_TO_31 = bytes(range(32))
FINGERPRINT_0_TO_31 = "0e:ab:d4:46:0b:6e:b9:ca:34:50:23:de:e2:b7:78:c7:90:e5:4a:16:83:b9:65:9c:0a:57:ae:19:90:90:15:9b"
SET_UUID_1 = "00000000-0000-0000-0000-000000000001"
DRIVE_KEY_0_TO_31_SET_1 = "58786826343a6026c25c540b2caf8625513c049c2e28728c05f93bf6a9af7168"


def test_fingerprint_matches_the_pbs_test_vector():
    assert CryptConfig(KEY_0_TO_31).fingerprint_text() == FINGERPRINT_0_TO_31


def test_fingerprint_follows_its_definition_for_a_random_key():
    key = hashlib.sha256(b"another key").digest()
    id_key = hashlib.pbkdf2_hmac("sha256", key, b"_id_key", 10, 32)
    prefix = bytes.fromhex("6ed0ef77471fff4d55c7a8fe4a9db62161407f134c725ddf30992d25ec45ed26")  # fingerprint text hash
    assert CryptConfig(key).fingerprint() == hashlib.sha256(prefix + id_key).digest()


def test_fingerprint_accepted_in_any_case_with_or_without_colons():
    assert normalize_fingerprint(FINGERPRINT_0_TO_31.upper()) == FINGERPRINT_0_TO_31
    assert normalize_fingerprint(FINGERPRINT_0_TO_31.replace(":", "")) == FINGERPRINT_0_TO_31
    with pytest.raises(TapeKeyError, match="malformed key fingerprint"):
        normalize_fingerprint(FINGERPRINT_0_TO_31[:-3])


def test_drive_key_matches_the_spec_example():
    assert derive_drive_key(KEY_0_TO_31, SET_UUID_1).hex() == DRIVE_KEY_0_TO_31_SET_1


def test_drive_key_differs_per_media_set_and_is_not_the_tape_key():
    first = derive_drive_key(KEY_0_TO_31, SET_UUID_1)
    second = derive_drive_key(KEY_0_TO_31, "00000000-0000-0000-0000-000000000002")
    assert len({first, second, KEY_0_TO_31}) == 3


def test_drive_key_refuses_a_malformed_uuid():
    with pytest.raises(TapeKeyError, match="malformed media-set UUID"):
        derive_drive_key(KEY_0_TO_31, "not-a-uuid")


def test_media_set_encryption_gives_label_config_and_drive_key_but_never_shows_the_key(tmp_path):
    store = TapeKeyStore(tmp_path)
    store.insert(KEY_0_TO_31, protect_key(KEY_0_TO_31, b"password", kdf="pbkdf2", hint="h"))
    encryption = media_set_encryption(FINGERPRINT_0_TO_31.upper(), SET_UUID_1, store)
    assert encryption.fingerprint == FINGERPRINT_0_TO_31
    assert encryption.drive_key.hex() == DRIVE_KEY_0_TO_31_SET_1
    assert encryption.key_config == store.key_config(FINGERPRINT_0_TO_31).to_json()
    assert "PBKDF2" in encryption.key_config["kdf"]  # the protected form, not the raw key
    assert DRIVE_KEY_0_TO_31_SET_1 not in repr(encryption) and encryption.drive_key.hex() not in str(encryption)


def test_reading_with_a_missing_key_names_the_fingerprint_and_the_way_back(tmp_path):
    with pytest.raises(KeyNotFound, match=f"{FINGERPRINT_0_TO_31} not found: restore it with 'tapefs key restore'"):
        drive_key_for_reading(FINGERPRINT_0_TO_31, SET_UUID_1, TapeKeyStore(tmp_path))


def test_reading_with_a_known_key_gives_the_same_drive_key_as_writing(tmp_path):
    store = TapeKeyStore(tmp_path)
    store.insert(KEY_0_TO_31, protect_key(KEY_0_TO_31, b"password", kdf="pbkdf2", hint="h"))
    assert drive_key_for_reading(FINGERPRINT_0_TO_31, SET_UUID_1, store).hex() == DRIVE_KEY_0_TO_31_SET_1
