"""Restoring from a media-set label without a drive: what PBS's `key restore --drive` checks."""
import uuid

import pytest

from tapefs.datastore.crypt_config import CryptConfig
from tapefs.keys.errors import TapeKeyError
from tapefs.keys.key_restore import restore_from_media_set_label
from tapefs.keys.key_store import TapeKeyStore, protect_key
from tapefs.tapeformat.labels import MediaSetLabel

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
FINGERPRINT = CryptConfig(KEY).fingerprint_text()


def set_label(fingerprint, key_config):
    return MediaSetLabel("daily", uuid.uuid4(), 0, 1700000000, fingerprint, key_config)


def test_label_key_config_replaces_a_stored_copy_of_the_same_key(tmp_path):
    store = TapeKeyStore(tmp_path)
    store.insert(KEY, protect_key(KEY, b"local password", kdf="pbkdf2", hint="local"))
    on_tape = protect_key(KEY, b"tape password", kdf="pbkdf2", hint="tape")
    assert restore_from_media_set_label(store, set_label(FINGERPRINT, on_tape.to_json()), b"tape password") == FINGERPRINT
    assert store.key_config(FINGERPRINT).hint == "tape" and store.raw_key(FINGERPRINT) == KEY


def test_label_naming_another_key_than_it_carries_is_refused(tmp_path):
    store = TapeKeyStore(tmp_path)
    other = protect_key(OTHER_KEY, b"tape password", kdf="pbkdf2", hint="tape")
    with pytest.raises(TapeKeyError, match=f"names key {FINGERPRINT} but carries"):
        restore_from_media_set_label(store, set_label(FINGERPRINT, other.to_json()), b"tape password")
    assert store.key_configs() == []


def test_label_without_key_config_and_malformed_key_config(tmp_path):
    store = TapeKeyStore(tmp_path)
    with pytest.raises(TapeKeyError, match="media does not contain any encryption key configuration"):
        restore_from_media_set_label(store, set_label(None, None), b"tape password")
    with pytest.raises(TapeKeyError, match="malformed key config"):
        restore_from_media_set_label(store, set_label(FINGERPRINT, {"kdf": None}), b"tape password")
