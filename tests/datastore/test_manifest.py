import hashlib
import json

import pytest

from tapefs.datastore.blob import decode_blob, encode_blob
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.errors import CorruptFileError, CryptoError
from tapefs.datastore.manifest import Manifest, canonical_json


@pytest.fixture(scope="module")
def upstream_key():
    return CryptConfig(hashlib.scrypt(b"test", salt=b"", n=65536, r=8, p=1, dklen=32, maxmem=128 << 20))


def upstream_manifest() -> Manifest:
    manifest = Manifest("host", "elsa", 1593179765)
    manifest.add_file("test1.img.fidx", 200, b"\x01" * 32, "encrypt")
    manifest.add_file("abc.blob", 200, b"\x02" * 32, "none")
    return manifest


def test_upstream_signature_vector(upstream_key):
    assert upstream_key.key.hex() == "28cdb1a3bef39396c3860e00d448fe7a0efd8244486ab6feb30457681d31597e"
    manifest = upstream_manifest()
    assert canonical_json(manifest._signed_part()) == (
        '{"backup-id":"elsa","backup-time":1593179765,"backup-type":"host","files":['
        '{"crypt-mode":"encrypt","csum":"' + "01" * 32 + '","filename":"test1.img.fidx","size":200},'
        '{"crypt-mode":"none","csum":"' + "02" * 32 + '","filename":"abc.blob","size":200}]}'
    ).encode()
    assert manifest.compute_signature(upstream_key).hex() == "d7b446fb7db081662081d4b40fedd858a1d6307a5aff4ecff7d5bf4fd35679e9"


def test_signed_round_trip(tmp_path, upstream_key):
    manifest = upstream_manifest()
    manifest.sign(upstream_key)
    manifest.unprotected["notes"] = "not covered by the signature"
    manifest.save(tmp_path)
    loaded = Manifest.load(tmp_path)
    assert loaded.signature == manifest.signature
    assert loaded.unprotected["key-fingerprint"] == upstream_key.fingerprint_text()
    loaded.verify_signature(upstream_key)
    assert [f.filename for f in loaded.files] == ["test1.img.fidx", "abc.blob"]
    document = json.loads(decode_blob((tmp_path / "index.json.blob").read_bytes()))
    assert document["signature"] == manifest.signature.hex()


def test_tampered_manifest_fails_signature(upstream_key):
    manifest = upstream_manifest()
    manifest.sign(upstream_key)
    manifest.files[0].size = 201
    with pytest.raises(CryptoError, match="signature"):
        manifest.verify_signature(upstream_key)


def test_other_key_refused_by_fingerprint(upstream_key):
    manifest = upstream_manifest()
    manifest.sign(upstream_key)
    with pytest.raises(CryptoError, match="written with key"):
        manifest.verify_signature(CryptConfig(b"\x09" * 32))


def test_unsigned_manifest_has_null_signature():
    manifest = Manifest("host", "a", 0)
    assert json.loads(decode_blob(manifest.encode()))["signature"] is None
    manifest.verify_signature(CryptConfig(b"\x01" * 32))


def test_null_cannot_be_signed():
    with pytest.raises(CryptoError):
        canonical_json({"a": [1, None]})


def test_missing_crypt_mode_means_none():
    document = {"backup-type": "vm", "backup-id": "100", "backup-time": 5,
                "files": [{"filename": "a.blob", "size": 1, "csum": "00" * 32}]}
    manifest = Manifest.decode(encode_blob(json.dumps(document).encode()))
    assert manifest.files[0].crypt_mode == "none"


def test_malformed_manifest_names_file():
    with pytest.raises(CorruptFileError, match="m.blob: at byte 12"):
        Manifest.decode(encode_blob(b"{not json"), "m.blob")
    with pytest.raises(CorruptFileError, match="malformed manifest"):
        Manifest.decode(encode_blob(b'{"files": []}'), "m.blob")
