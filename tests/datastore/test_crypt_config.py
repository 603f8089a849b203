import json

import pytest

from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.errors import CryptoError
from tapefs.datastore.key_config import Kdf, KeyConfig


def test_upstream_fingerprint_vector():
    assert CryptConfig(bytes(range(32))).fingerprint_text() == (
        "0e:ab:d4:46:0b:6e:b9:ca:34:50:23:de:e2:b7:78:c7:90:e5:4a:16:83:b9:65:9c:0a:57:ae:19:90:90:15:9b"
    )


def test_id_key_and_fingerprint_for_key_of_ones():
    config = CryptConfig(b"\x01" * 32)
    assert config.id_key.hex() == "421679d8d439d1cbf2a915904a91d1ba20b7e641f9c846378b899864189ff304"
    assert config.fingerprint().hex() == "4cf7c7a931866a0d33d8b2588a099d41a570e0cdcde2f52c5c07beb3138e153d"


def test_key_length_checked():
    with pytest.raises(CryptoError):
        CryptConfig(b"short")


@pytest.mark.parametrize("kdf_name", ["Scrypt", "PBKDF2"])
def test_key_file_round_trip(tmp_path, kdf_name):
    key = bytes(range(32))
    config = KeyConfig.create(key, b"correct horse", kdf_name, hint="horse")
    path = tmp_path / "key.json"
    config.save(path)
    stored = json.loads(path.read_text())
    assert list(stored["kdf"]) == [kdf_name]
    assert stored["fingerprint"] == CryptConfig(key).fingerprint_text()
    assert stored["hint"] == "horse"
    assert (path.stat().st_mode & 0o777) == 0o600
    loaded = KeyConfig.load(path)
    assert loaded.decrypt(b"correct horse").key == key
    with pytest.raises(CryptoError, match="wrong passphrase"):
        loaded.decrypt(b"wrong horse")
    with pytest.raises(CryptoError):
        loaded.decrypt(None)


def test_plain_key_file(tmp_path):
    key = b"\x07" * 32
    path = tmp_path / "plain.json"
    KeyConfig.create(key, None).save(path)
    assert json.loads(path.read_text())["kdf"] is None
    assert KeyConfig.load(path).decrypt().key == key


def test_pbkdf2_file_written_by_hand():
    # a key file built independently of KeyConfig.create: PBKDF2 with 1000 iterations
    import base64
    import hashlib

    from tapefs.datastore.crypt_config import aes_gcm_encrypt

    key, salt, iv = b"\x11" * 32, b"\x22" * 32, b"\x33" * 16
    derived = hashlib.pbkdf2_hmac("sha256", b"passphrase", salt, 1000, 32)
    ciphertext, tag = aes_gcm_encrypt(derived, iv, key)
    document = {
        "kdf": {"PBKDF2": {"iter": 1000, "salt": base64.b64encode(salt).decode()}},
        "created": "2021-04-07T10:11:12+02:00",
        "modified": "2021-04-07T10:11:12+02:00",
        "data": base64.b64encode(iv + tag + ciphertext).decode(),
    }
    assert KeyConfig.from_json(document).decrypt(b"passphrase").key == key


def test_fingerprint_mismatch_refused():
    config = KeyConfig.create(b"\x01" * 32, None)
    config.fingerprint = b"\x00" * 32
    with pytest.raises(CryptoError, match="fingerprint"):
        config.decrypt()


def test_short_passphrase_refused():
    with pytest.raises(CryptoError):
        KeyConfig.create(b"\x01" * 32, b"abc")


def test_malformed_key_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"kdf": {"Argon": {}}, "data": ""}')
    with pytest.raises(CryptoError, match=str(path)):
        KeyConfig.load(path)
    with pytest.raises(CryptoError):
        Kdf.from_json({"Scrypt": {"n": 1}})
