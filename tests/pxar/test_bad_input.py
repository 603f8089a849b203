"""Corrupt, truncated or hostile archives give a PxarError naming the offset, never a crash."""

import pytest

from tapefs.pxar.accessor import Accessor
from tapefs.pxar.decoder import Decoder
from tapefs.pxar.errors import FormatError, PxarError, UnsafePathError
from tapefs.pxar.source import BytesSource
from tests.helpers.pxar_fixtures import GENERATED

V1 = (GENERATED / "v1.pxar").read_bytes()
MPXAR = (GENERATED / "v2.mpxar").read_bytes()
PPXAR = (GENERATED / "v2.ppxar").read_bytes()


def _decode_all(data, payload=None):
    decoder = Decoder(BytesSource(data), BytesSource(payload) if payload is not None else None)
    for entry in decoder:
        if entry.kind.value in ("file", "hardlink"):
            decoder.read_content(entry)


def test_wrong_first_item_is_reported_with_offset():
    with pytest.raises(FormatError, match=r"unknown item type 0x0101010101010101 .*byte offset 0"):
        _decode_all(b"\x01" * 64)


def test_wrong_known_first_item_is_reported():
    with pytest.raises(FormatError, match=r"expected ENTRY, found FILENAME"):
        _decode_all(V1[56:])


def test_empty_archive_is_reported():
    with pytest.raises(FormatError, match="empty archive"):
        Decoder(BytesSource(b""))


def test_unsupported_format_version_is_reported():
    data = bytearray(MPXAR)
    data[16] = 3
    with pytest.raises(FormatError, match="unsupported pxar format version 3"):
        Decoder(BytesSource(bytes(data)))


def test_every_truncation_of_v1_is_a_format_error():
    for length in range(len(V1)):
        with pytest.raises(FormatError):
            _decode_all(V1[:length])


def test_every_truncation_of_v2_metadata_is_a_format_error():
    for length in range(len(MPXAR)):
        with pytest.raises(FormatError):
            _decode_all(MPXAR[:length], PPXAR)


def test_payload_stream_cut_inside_a_file_is_a_format_error():
    for length in range(0, 54 + 316):
        with pytest.raises(FormatError):
            _decode_all(MPXAR, PPXAR[:length])


def test_truncation_error_names_the_offset():
    with pytest.raises(FormatError) as error:
        _decode_all(V1[:1000])
    assert error.value.offset is not None and error.value.offset <= 1000
    assert "byte offset" in str(error.value)


def test_flipped_byte_never_escapes_as_another_exception():
    """Any single corrupted byte either decodes or raises PxarError (pytest fails otherwise)."""
    refused = 0
    for position in range(len(V1)):
        data = bytearray(V1)
        data[position] ^= 0x41
        try:
            _decode_all(bytes(data))
        except PxarError:
            refused += 1
        try:
            accessor = Accessor(BytesSource(bytes(data)))
            for path in ("a.txt", "b/c.bin", "hl"):
                accessor.read(path)
            accessor.lookup("sock")
        except PxarError:
            pass
    # everything but file contents, padding-free names and a few free fields is checked
    assert refused > len(V1) // 2


def test_dot_dot_name_is_refused_with_offset():
    data = V1.replace(b"acl.txt\0", b"../../x\0")
    with pytest.raises(UnsafePathError, match=r"'\.\./\.\./x'.*byte offset 196"):
        _decode_all(data)
    with pytest.raises(UnsafePathError):
        Accessor(BytesSource(data)).list_dir("")


def test_payload_ref_to_a_wrong_item_is_refused():
    payload = bytearray(PPXAR)
    payload[16] ^= 1  # the PAYLOAD header of a.txt
    with pytest.raises(FormatError, match="PAYLOAD_REF of b'a.txt' points at"):
        _decode_all(MPXAR, bytes(payload))


def test_v2_contents_need_the_payload_stream():
    decoder = Decoder(BytesSource(MPXAR))
    entry = next(entry for entry in decoder if entry.path == b"a.txt")
    with pytest.raises(FormatError, match="needs its payload stream"):
        decoder.read_content(entry)


def test_trailing_garbage_after_root_is_refused():
    with pytest.raises(FormatError, match="unexpected bytes after the root"):
        _decode_all(V1 + b"\0" * 16)
