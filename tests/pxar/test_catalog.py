import io

import pytest

from tapefs.pxar.catalog import (
    CatalogReader,
    CatalogWriter,
    decode_svarint,
    decode_varint,
    encode_svarint,
    encode_varint,
)
from tapefs.pxar.errors import FormatError, NotFoundError
from tests.helpers.pxar_fixtures import GENERATED

TEST_PCAT1 = (GENERATED / "test.pcat1").read_bytes()


def _write_test_catalog():
    out = io.BytesIO()
    writer = CatalogWriter(out)
    writer.start_directory(b"root.pxar.didx")
    writer.add_file(b"a.txt", 6, 1700000000)
    writer.add_file(b"acl.txt", 0, -1)
    writer.start_directory(b"b")
    writer.add_file(b"c.bin", 300, 1700000000)
    writer.add_symlink(b"link")
    writer.end_directory()
    writer.add_char_device(b"dev")
    writer.add_fifo(b"fifo")
    writer.add_hardlink(b"hl")
    writer.add_socket(b"sock")
    writer.add_block_device(b"sda")
    writer.end_directory()
    writer.finish()
    return out.getvalue()


def test_writer_reproduces_reference_catalog_byte_for_byte():
    assert _write_test_catalog() == TEST_PCAT1


def test_reader_lists_reference_catalog():
    reader = CatalogReader(TEST_PCAT1)
    listing = [(path, entry.kind, entry.size, entry.mtime) for path, entry in reader.walk()]
    assert listing == [
        (b"root.pxar.didx", b"d", None, None),
        (b"root.pxar.didx/a.txt", b"f", 6, 1700000000),
        (b"root.pxar.didx/acl.txt", b"f", 0, -1),
        (b"root.pxar.didx/b", b"d", None, None),
        (b"root.pxar.didx/b/c.bin", b"f", 300, 1700000000),
        (b"root.pxar.didx/b/link", b"l", None, None),
        (b"root.pxar.didx/dev", b"c", None, None),
        (b"root.pxar.didx/fifo", b"p", None, None),
        (b"root.pxar.didx/hl", b"h", None, None),
        (b"root.pxar.didx/sock", b"s", None, None),
        (b"root.pxar.didx/sda", b"b", None, None),
    ]
    assert reader.lookup("root.pxar.didx/b/c.bin").size == 300
    assert [entry.name for entry in reader.list_dir("/root.pxar.didx/b")] == [b"c.bin", b"link"]
    assert [path for path, _ in reader.find("*.txt")] == [b"root.pxar.didx/a.txt",
                                                         b"root.pxar.didx/acl.txt"]
    with pytest.raises(NotFoundError):
        reader.lookup("root.pxar.didx/nope")


@pytest.mark.parametrize("value, encoded", [
    (0, "00"), (1, "01"), (300, "ac02"), (1700000000, "80e2cfaa06"), (-1, "8100"),
])
def test_svarint_examples(value, encoded):
    assert encode_svarint(value).hex() == encoded
    assert decode_svarint(bytes.fromhex(encoded), 0) == (value, len(encoded) // 2)


@pytest.mark.parametrize("value", [0, 126, 2**12 - 1, 2**20 - 1, 2**50 - 1, 2**64 - 1])
def test_varint_round_trips(value):
    encoded = encode_varint(value)
    assert decode_varint(encoded, 0) == (value, len(encoded))


@pytest.mark.parametrize("value", [0, 126, -126, -(2**12) - 1, 2**63 - 1, -(2**63), -1])
def test_svarint_round_trips(value):
    encoded = encode_svarint(value)
    assert decode_svarint(encoded, 0) == (value, len(encoded))


def test_wrong_magic_is_refused():
    with pytest.raises(FormatError, match="wrong magic"):
        CatalogReader(b"\0" * 8 + TEST_PCAT1[8:])


def test_every_truncated_catalog_is_a_format_error():
    for length in range(len(TEST_PCAT1)):
        with pytest.raises(FormatError):
            list(CatalogReader(TEST_PCAT1[:length]).walk())


def test_block_with_leftover_bytes_is_refused():
    data = bytearray(TEST_PCAT1)
    data[8] += 1  # block "b" claims one byte more than its entries use
    with pytest.raises(FormatError, match="left over|bad"):
        list(CatalogReader(bytes(data)).walk())


def test_writer_refuses_unbalanced_directories_and_bad_names():
    writer = CatalogWriter(io.BytesIO())
    with pytest.raises(ValueError):
        writer.end_directory()
    with pytest.raises(ValueError):
        writer.add_file(b"a/b", 1, 0)
    writer.start_directory(b"x")
    with pytest.raises(ValueError, match="still open"):
        writer.finish()
