"""Random access reads little, handles hash collisions and refuses bad goodbye tables."""

import io
import stat

import pytest

from tapefs.pxar import format as fmt
from tapefs.pxar.accessor import Accessor
from tapefs.pxar.decoder import Decoder
from tapefs.pxar.encoder import Encoder
from tapefs.pxar.entry import Kind, Metadata
from tapefs.pxar.errors import FormatError, NotADirectory, NotFoundError
from tapefs.pxar.source import BytesSource
from tests.helpers.pxar_fixtures import GENERATED, ORACLE, CountingSource, load_bytes, sha256


def test_lookup_in_large_directory_reads_only_its_goodbye_table_and_a_few_items():
    source = CountingSource(load_bytes(ORACLE / "tree-v1.pxar"))
    accessor = Accessor(source)
    entry = accessor.lookup("big/e0500")
    assert entry.kind is Kind.FILE
    table_bytes = 1201 * 24 + 16
    assert source.bytes_read < table_bytes + 8192
    assert source.bytes_read < source.size / 100
    assert source.calls <= 10


def test_deep_lookup_costs_a_few_small_reads_per_component():
    source = CountingSource(load_bytes(ORACLE / "tree-v1.pxar"))
    path = "tree/d2a/d3a/d4a/d5a/d6a/d7a/d8b-ü/f1"
    assert Accessor(source).lookup(path).kind is Kind.FILE
    components = path.count("/") + 1
    assert source.calls <= 4 * components
    assert source.bytes_read <= 2048 * components


def test_reading_a_range_of_a_big_file_reads_only_that_range():
    source = CountingSource(load_bytes(ORACLE / "tree-v1.pxar"))
    accessor = Accessor(source)
    entry = accessor.lookup(b"sizes/random-5MiB")
    before = source.bytes_read
    data = accessor.read(entry, 4 << 20, 100)
    assert len(data) == 100
    assert source.bytes_read - before <= 100 + 512
    assert source.bytes_read < 16384


def test_v2_range_read_touches_only_the_payload_header_and_the_range():
    metadata = CountingSource(load_bytes(ORACLE / "tree-v2.mpxar"))
    payload = CountingSource(load_bytes(ORACLE / "tree-v2.ppxar"))
    accessor = Accessor(metadata, payload)
    whole = Accessor(load_bytes(ORACLE / "tree-v2.mpxar"), load_bytes(ORACLE / "tree-v2.ppxar"))
    entry = accessor.lookup(b"sizes/size-1048579")
    assert payload.bytes_read == 0
    data = accessor.read(entry, 1000, 5000)
    assert data == whole.read(b"sizes/size-1048579")[1000:6000]
    assert data == bytes((1000 + i) % 251 for i in range(5000))
    assert payload.bytes_read == 16 + 5000
    assert metadata.bytes_read < 16384


def test_read_is_clipped_to_the_file_size():
    accessor = Accessor(load_bytes(GENERATED / "v1.pxar"))
    assert accessor.read("a.txt", 4, 100) == b"o\n"
    assert accessor.read("a.txt", 10, 5) == b""


def test_hardlink_lookup_resolves_to_target_contents():
    accessor = Accessor(load_bytes(ORACLE / "tree-v1.pxar"))
    link = accessor.lookup(b"links/b/second.bin")
    assert link.kind is Kind.HARDLINK
    target = accessor.resolve_hardlink(link)
    assert target.path == b"links/a/first.bin" and target.size == 1000
    assert accessor.read(link) == bytes(i % 251 for i in range(1000))
    assert accessor.lookup(b"links/b/second.bin", follow_hardlinks=True).kind is Kind.FILE


def test_missing_names_and_paths_through_files_are_reported():
    accessor = Accessor(load_bytes(GENERATED / "v1.pxar"))
    with pytest.raises(NotFoundError):
        accessor.lookup("b/missing")
    with pytest.raises(NotADirectory):
        accessor.lookup("a.txt/x")
    with pytest.raises(NotADirectory):
        accessor.list_dir("a.txt")
    assert accessor.lookup("/").kind is Kind.DIRECTORY
    assert [entry.name for entry in accessor.list_dir("/")] == [
        b"a.txt", b"acl.txt", b"b", b"dev", b"fifo", b"hl", b"sock"]


def _encode_flat(names):
    out = io.BytesIO()
    encoder = Encoder(out, Metadata(mode=stat.S_IFDIR | 0o755))
    for name in names:
        encoder.add_file(name, Metadata(mode=stat.S_IFREG | 0o644), len(name), name)
    encoder.finish()
    return out.getvalue()


def test_lookup_survives_goodbye_hash_collisions(monkeypatch):
    real_hash = fmt.name_hash
    monkeypatch.setattr(fmt, "name_hash", lambda name: real_hash(name) % 3)
    names = [f"file-{index:03d}".encode() for index in range(40)]
    accessor = Accessor(BytesSource(_encode_flat(names)))
    for name in names:
        assert accessor.read(name) == name
    with pytest.raises(NotFoundError):
        accessor.lookup(b"file-999")
    assert [entry.name for entry in accessor.list_dir(b"")] == names
    assert [entry.path for entry in Decoder(BytesSource(_encode_flat(names)))][1:] == names


def _root_goodbye_offset(data):
    return len(data) - int.from_bytes(data[-8:], "little")


def test_corrupt_goodbye_hash_is_refused_by_decoder_and_misses_in_accessor():
    data = bytearray((GENERATED / "v1.pxar").read_bytes())
    first_item = _root_goodbye_offset(data) + 16
    data[first_item] ^= 0xFF  # the hash of "sock"
    with pytest.raises(FormatError, match="GOODBYE item 0 does not match"):
        list(Decoder(BytesSource(bytes(data))))
    with pytest.raises(NotFoundError):
        Accessor(BytesSource(bytes(data))).lookup("sock")


@pytest.mark.parametrize("field, value, message", [
    (0, 0x1234, "no goodbye tail marker"),
    (16, 184, "goodbye tail points at"),
    (8, 1 << 40, "impossible size"),
])
def test_corrupt_goodbye_tail_is_refused_with_offset(field, value, message):
    data = bytearray((GENERATED / "v1.pxar").read_bytes())
    data[-24 + field:-24 + field + 8 or None] = value.to_bytes(8, "little")
    with pytest.raises(FormatError, match=message) as error:
        Accessor(BytesSource(bytes(data))).lookup("a.txt")
    assert error.value.offset is not None
    assert "byte offset" in str(error.value)


def test_every_v1_file_in_oracle_reads_the_same_through_accessor_and_decoder():
    decoder = Decoder(load_bytes(ORACLE / "tree-v1.pxar"))
    accessor = Accessor(load_bytes(ORACLE / "tree-v1.pxar"))
    for entry in decoder:
        if entry.kind is Kind.FILE and entry.path.startswith(b"tree/d0a"):
            assert sha256(accessor.read(entry.path)) == sha256(decoder.read_content(entry))


def test_subdirectory_range_pointing_at_another_table_is_refused():
    data = bytearray((GENERATED / "v1.pxar").read_bytes())
    # the root's goodbye item for "b" (slot 3): grow b's size so its range ends at the root's
    # own table, whose tail points at the root entry, not at b's
    root_goodbye = _root_goodbye_offset(data)
    slot = root_goodbye + 16 + 3 * 24
    assert int.from_bytes(data[slot:slot + 8], "little") == fmt.name_hash(b"b")
    filename_offset = root_goodbye - int.from_bytes(data[slot + 8:slot + 16], "little")
    data[slot + 16:slot + 24] = (len(data) - filename_offset).to_bytes(8, "little")
    with pytest.raises(FormatError, match="belongs to the entry at 0, not 398"):
        Accessor(BytesSource(bytes(data))).lookup("b/c.bin")
