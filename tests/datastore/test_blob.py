import base64
import hashlib
import zlib

import pytest

from tapefs.datastore.blob import (
    BlobKind,
    chunk_digest_matches,
    decode_blob,
    decode_blob_parts,
    encode_blob,
    inspect_blob,
)
from tapefs.datastore.crypt_config import CryptConfig, plain_digest
from tapefs.datastore.errors import CorruptFileError, CryptoError
from tests.helpers.pbs_reference import BLOBS

KEY = CryptConfig(b"\x01" * 32)
FIXED_IV = bytes(range(0xA0, 0xB0))
SMALL = b"Proxmox Backup test vector\n"

FIXTURE_KINDS = {
    "pattern-plain": BlobKind.UNCOMPRESSED,
    "pattern-zstd": BlobKind.COMPRESSED,
    "pattern-enc": BlobKind.ENCRYPTED,
    "pattern-enczstd": BlobKind.ENCRYPTED_COMPRESSED,
    "small-plain": BlobKind.UNCOMPRESSED,
    "small-zstd": BlobKind.UNCOMPRESSED,  # compression did not shrink it
    "small-enc": BlobKind.ENCRYPTED,
    "small-enczstd": BlobKind.ENCRYPTED,
}


def fixture(name: str) -> bytes:
    return (BLOBS / f"{name}.blob").read_bytes()


@pytest.mark.parametrize("name", sorted(FIXTURE_KINDS))
def test_fixture_decodes(name, pattern_data):
    raw = fixture(name)
    assert inspect_blob(raw).kind is FIXTURE_KINDS[name]
    expected = pattern_data if name.startswith("pattern") else SMALL
    assert decode_blob(raw, KEY) == expected


def test_documented_crcs_and_sizes():
    assert len(fixture("pattern-plain")) == 100012
    assert inspect_blob(fixture("pattern-plain")).crc == 0x1E2D68E3
    assert inspect_blob(fixture("pattern-zstd")).crc == 0xB6432A58
    assert inspect_blob(fixture("pattern-enc")).crc == 0x9CA6FF83
    assert inspect_blob(fixture("pattern-enczstd")).crc == 0x9261949D
    assert fixture("small-plain")[8:12] == bytes.fromhex("462c2499")


@pytest.mark.parametrize(
    "name, encrypted, compress",
    [
        ("pattern-plain", False, False),
        ("pattern-enc", True, False),
        ("pattern-enczstd", True, True),
        ("small-plain", False, True),
        ("small-zstd", False, True),
        ("small-enc", True, False),
        ("small-enczstd", True, True),
    ],
)
def test_writer_reproduces_fixture_bytes(name, encrypted, compress, pattern_data):
    data = pattern_data if name.startswith("pattern") else SMALL
    assert encode_blob(data, KEY if encrypted else None, compress, iv=FIXED_IV) == fixture(name)


def test_small_enc_matches_spec_base64():
    expected = base64.b64decode(
        "e2eFviItTPDGsITDoKGio6SlpqeoqaqrrK2ur6vAr4t6l3B8qkbqk/cYtaKph5+n3dj+jVb6eJfygj5G/ht0be+SYjeo9iY="
    )
    assert encode_blob(SMALL, KEY, compress=False, iv=FIXED_IV) == expected
    assert KEY.digest(SMALL).hex() == "4f340318d51658d1173ca7b0380b7e2ecf980d9129c24e67615d00d15089713e"


def test_streamed_zstd_frame_without_content_size_and_multiple_frames():
    # PBS <= 3.x wrote frames without content size; several frames must be accepted too
    import zstandard

    frames = b"".join(zstandard.ZstdCompressor(level=1, write_content_size=False).compress(p) for p in (b"a" * 500, b"b" * 700))
    raw = BlobKind.COMPRESSED.value + zlib.crc32(frames).to_bytes(4, "little") + frames
    assert decode_blob(raw) == b"a" * 500 + b"b" * 700


def test_empty_blob():
    raw = encode_blob(b"")
    assert raw == BlobKind.UNCOMPRESSED.value + bytes(4)
    assert decode_blob(raw) == b""


def test_round_trip_compresses_when_smaller():
    data = b"abc" * 10000
    raw = encode_blob(data)
    assert inspect_blob(raw).kind is BlobKind.COMPRESSED
    assert decode_blob(raw) == data
    encrypted = encode_blob(data, KEY)
    assert inspect_blob(encrypted).kind is BlobKind.ENCRYPTED_COMPRESSED
    assert decode_blob(encrypted, KEY) == data


def test_unknown_magic_names_offset_0():
    raw = bytearray(fixture("small-plain"))
    raw[0] ^= 0xFF
    with pytest.raises(CorruptFileError) as info:
        decode_blob(bytes(raw), source="x.blob")
    assert info.value.offset == 0 and info.value.path == "x.blob"
    assert "x.blob: at byte 0:" in str(info.value)


@pytest.mark.parametrize("length", [0, 5, 11])
def test_truncated_header(length):
    with pytest.raises(CorruptFileError) as info:
        decode_blob(fixture("small-plain")[:length], source="t.blob")
    assert info.value.offset == length


def test_truncated_encrypted_header():
    with pytest.raises(CorruptFileError) as info:
        decode_blob(fixture("small-enc")[:30], KEY, source="t.blob")
    assert info.value.offset == 30 and "encrypted" in str(info.value)


def test_bad_crc_names_crc_field():
    raw = bytearray(fixture("pattern-plain"))
    raw[5000] ^= 1
    with pytest.raises(CorruptFileError) as info:
        decode_blob(bytes(raw), source="c.blob")
    assert info.value.offset == 8 and "CRC" in str(info.value)


def test_a_caller_checking_the_digest_may_skip_the_crc_but_not_for_encrypted_blobs():
    raw = bytearray(fixture("pattern-plain"))
    raw[5000] ^= 1
    data = decode_blob_parts(bytes(raw[:12]), bytes(raw[12:]), check_crc=False)
    assert data == bytes(raw[12:]) and plain_digest(data) != plain_digest(fixture("pattern-plain")[12:])
    changed = bytearray(fixture("pattern-zstd"))
    changed[12] ^= 0xFF  # the zstd frame's magic
    with pytest.raises(CorruptFileError, match="zstd decompression failed"):
        decode_blob_parts(bytes(changed[:12]), bytes(changed[12:]), check_crc=False)
    encrypted = bytearray(fixture("small-enc"))
    encrypted[-1] ^= 1
    head = BlobKind.ENCRYPTED.header_size
    with pytest.raises(CorruptFileError, match="CRC mismatch"):
        decode_blob_parts(bytes(encrypted[:head]), bytes(encrypted[head:]), KEY, check_crc=False)


def test_truncated_compressed_payload_is_called_truncated():
    raw = fixture("pattern-zstd")
    with pytest.raises(CorruptFileError, match="truncated blob: the compressed data ends before its zstd frame does"):
        decode_blob(raw[:-10])
    changed = bytearray(raw)
    changed[-10] ^= 0xFF
    with pytest.raises(CorruptFileError, match="CRC mismatch"):
        inspect_blob(bytes(changed))


def test_truncated_uncompressed_payload_fails_crc():
    with pytest.raises(CorruptFileError, match="CRC mismatch"):
        decode_blob(fixture("pattern-plain")[:-10])


def test_encrypted_needs_key_and_right_key():
    with pytest.raises(CryptoError):
        decode_blob(fixture("small-enc"))
    with pytest.raises(CryptoError):
        decode_blob(fixture("small-enc"), CryptConfig(b"\x02" * 32))


def test_bad_zstd_payload_with_valid_crc():
    payload = b"\x28\xb5\x2f\xfd garbage"
    raw = BlobKind.COMPRESSED.value + zlib.crc32(payload).to_bytes(4, "little") + payload
    with pytest.raises(CorruptFileError) as info:
        decode_blob(raw, source="z.blob")
    assert info.value.offset == 12


def test_pattern_digests(pattern_data):
    assert plain_digest(pattern_data).hex() == "539a60c3a7cc268ecce082c9184702bc829bb106a2643dee26db3ff0bf8457ee"
    assert KEY.digest(pattern_data).hex() == "32a2bf5dff84090e7f175c27f666f5cc8268046ab6efda0e501196bceffdc675"


@pytest.mark.parametrize("crypt_config, compress", [(None, False), (None, True), (KEY, False), (KEY, True)])
def test_chunk_digest_matches_checks_crc_and_digest_of_every_kind(crypt_config, compress):
    data = b"chunk data " * 1000
    digest = hashlib.sha256(data).digest()
    raw = encode_blob(data, crypt_config, compress=compress)
    assert chunk_digest_matches(raw, digest)
    # An encrypted chunk's digest is keyed: only its CRC can be checked without the key.
    assert chunk_digest_matches(raw, bytes(32)) == (crypt_config is not None)
    damaged = bytearray(raw)
    damaged[-1] ^= 1
    with pytest.raises(CorruptFileError, match="CRC mismatch"):
        chunk_digest_matches(bytes(damaged), digest, "chunk")
