"""Every fixture decodes to its documented contents, sequentially and through the accessor."""

import stat
import struct

import pytest

from tapefs.pxar import format as fmt
from tapefs.pxar.accessor import Accessor
from tapefs.pxar.decoder import Decoder
from tapefs.pxar.entry import Kind
from tapefs.pxar.source import BytesSource
from tests.helpers.pxar_fixtures import (
    C_BIN,
    GENERATED,
    GENERATED_TREE,
    ORACLE,
    UPSTREAM,
    load_bytes,
    oracle_rows,
    row_path,
    sha256,
)

ROWS = oracle_rows()


def _open(version):
    if version == "v1":
        return load_bytes(ORACLE / "tree-v1.pxar"), None
    return load_bytes(ORACLE / "tree-v2.mpxar"), load_bytes(ORACLE / "tree-v2.ppxar")


def _generated(version):
    if version == "v1":
        return Decoder(load_bytes(GENERATED / "v1.pxar"))
    return Decoder(load_bytes(GENERATED / "v2.mpxar"), load_bytes(GENERATED / "v2.ppxar"))


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_generated_archive_decodes_to_documented_tree(version):
    decoder = _generated(version)
    entries = {entry.path: entry for entry in decoder}
    assert list(entries) == [b"", b"a.txt", b"acl.txt", b"b", b"b/c.bin", b"b/link", b"dev",
                             b"fifo", b"hl", b"sock"]
    for path, metadata in GENERATED_TREE.items():
        assert entries[path].metadata == metadata, path
    assert decoder.read_content(entries[b"a.txt"]) == b"hello\n"
    assert decoder.read_content(entries[b"acl.txt"]) == b""
    assert decoder.read_content(entries[b"b/c.bin"]) == C_BIN
    assert entries[b"b/link"].symlink_target == b"../a.txt"
    assert entries[b"dev"].device == (1, 3)
    assert entries[b"hl"].kind is Kind.HARDLINK
    assert entries[b"hl"].hardlink_target == b"a.txt"
    assert decoder.read_content(entries[b"hl"]) == b"hello\n"
    assert entries[b"fifo"].kind is Kind.FIFO and entries[b"sock"].kind is Kind.SOCKET


def test_generated_v1_offsets_match_worked_example():
    entries = {entry.path: entry for entry in _generated("v1")}
    assert (entries[b"a.txt"].filename_offset, entries[b"a.txt"].entry_offset) == (56, 78)
    assert entries[b"a.txt"].content_offset == 190
    assert entries[b"hl"].hardlink_offset == 1307
    assert entries[b"sock"].entry_offset == 1433


def test_generated_v2_has_prelude_and_payload_refs():
    decoder = _generated("v2")
    entries = {entry.path: entry for entry in decoder}
    assert decoder.version == 2
    assert decoder.prelude == b'{"exclude-patterns":"/tmp\\n"}'
    refs = [(entries[path].payload_ref_offset, entries[path].size)
            for path in (b"a.txt", b"acl.txt", b"b/c.bin")]
    assert refs == [(16, 6), (38, 0), (54, 300)]


@pytest.mark.parametrize("name, first_ref, prelude", [
    ("backup-client-pxar-data.mpxar", 16, None),
    ("backup-client-pxar-expected.mpxar", 32, b""),
])
def test_upstream_metadata_archives_list_100_files_of_1mib(name, first_ref, prelude):
    decoder = Decoder(load_bytes(UPSTREAM / name))
    entries = list(decoder)
    assert decoder.version == 2 and decoder.prelude == prelude
    root = entries[0]
    assert (stat.S_IMODE(root.mode), root.uid, root.gid, root.mtime_ns) == (0o777, 1000, 1000, 0)
    files = [entry for entry in entries if entry.kind is Kind.FILE]
    assert [entry.path for entry in files] == [
        f"folder_{d}/file_{f}".encode() for d in range(10) for f in range(10)]
    assert all(entry.size == 1048576 for entry in files)
    assert [entry.payload_ref_offset for entry in files] == [
        first_ref + k * 1048592 for k in range(100)]


def _check_row(row, entry, version, read):
    assert entry.kind.value == row["type"]
    if row["type"] != "hardlink":
        assert (entry.mode, entry.uid, entry.gid) == (row["mode"], row["uid"], row["gid"])
        assert [entry.metadata.mtime_secs, entry.metadata.mtime_nanos] == row["mtime"]
    assert [[name.hex(), value.hex()] for name, value in entry.xattrs] == row.get("xattrs", [])
    if "size" in row:
        assert entry.size == row["size"]
    if "sha256" in row:
        assert sha256(read(entry)) == row["sha256"]
    if "symlink" in row:
        assert entry.symlink_target.hex() == row["symlink"]
    if "hardlink" in row:
        assert entry.hardlink_target.hex() == row["hardlink"]
    if "device" in row:
        assert list(entry.device) == row["device"]
    filename_offset, entry_offset, entry_end, *fourth = row[version]
    assert (entry.filename_offset, entry.entry_offset) == (filename_offset, entry_offset)
    if fourth:
        if entry.kind is Kind.HARDLINK:
            assert entry.hardlink_offset == fourth[0]
        elif version == "v1":
            assert entry.content_offset == fourth[0]
        else:
            assert entry.payload_ref_offset == fourth[0]
    return entry_end


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_oracle_tree_decodes_sequentially_to_expected_listing(version):
    decoder = Decoder(*_open(version))
    entries = list(decoder)
    assert [entry.path for entry in entries] == [row_path(row) for row in ROWS]
    for row, entry in zip(ROWS, entries):
        entry_end = _check_row(row, entry, version, decoder.read_content)
        # sequentially, a directory's end is not known yet when it is yielded, and v2 goodbye
        # sizes of files include their payload
        if entry.kind is not Kind.DIRECTORY and (version == "v1" or entry.kind is not Kind.FILE):
            assert entry.entry_end == entry_end, entry.path


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_oracle_tree_every_path_found_by_accessor(version):
    accessor = Accessor(*_open(version))
    for row in ROWS:
        entry = accessor.lookup(row_path(row))
        assert entry.path == row_path(row)
        assert entry.entry_end == _check_row(row, entry, version, accessor.read)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_oracle_tree_directory_listings_match(version):
    accessor = Accessor(*_open(version))
    children: dict[bytes, list[bytes]] = {}
    for row in ROWS[1:]:
        path = row_path(row)
        children.setdefault(path.rpartition(b"/")[0], []).append(path)
    for row in ROWS:
        if row["type"] == "dir":
            path = row_path(row)
            assert [entry.path for entry in accessor.list_dir(path)] == \
                sorted(children.get(path, [])), path


def _item(htype, content):
    return fmt.pack_header(htype, len(content)) + content


def test_legacy_entry_v1_stat_is_converted():
    """Very old archives carry a 32-byte ENTRY with the mtime in nanoseconds."""
    def stat_v1(mode, mtime_ns):
        return _item(fmt.ENTRY_V1, struct.pack("<QQIIQ", mode, 0, 1000, 100, mtime_ns))

    root = stat_v1(0o40755, 1_500_000_000_123_456_789)
    child = _item(fmt.FILENAME, b"f\0") + stat_v1(0o100600, 5) + _item(fmt.PAYLOAD, b"hi")
    goodbye_start = len(root) + len(child)
    table = fmt.pack_goodbye_item(fmt.name_hash(b"f"), goodbye_start - len(root), len(child))
    table += fmt.pack_goodbye_item(fmt.GOODBYE_TAIL_MARKER, goodbye_start, 16 + 48)
    data = root + child + _item(fmt.GOODBYE, table)
    decoder = Decoder(BytesSource(data))
    root_entry, file_entry = list(decoder)
    assert (root_entry.metadata.mtime_secs, root_entry.metadata.mtime_nanos) == \
        (1_500_000_000, 123_456_789)
    assert (file_entry.path, file_entry.mode, file_entry.uid, file_entry.gid) == \
        (b"f", 0o100600, 1000, 100)
    assert decoder.read_content(file_entry) == b"hi"
    assert Accessor(BytesSource(data)).read("f") == b"hi"


@pytest.mark.parametrize("name, first_ref", [
    ("backup-client-pxar-data.mpxar", 16), ("backup-client-pxar-expected.mpxar", 32),
])
def test_upstream_metadata_archives_random_access(name, first_ref):
    accessor = Accessor(load_bytes(UPSTREAM / name))
    assert [entry.name for entry in accessor.list_dir("")] == [
        f"folder_{d}".encode() for d in range(10)]
    for k in (0, 37, 99):
        entry = accessor.lookup(f"folder_{k // 10}/file_{k % 10}")
        assert (entry.size, entry.payload_ref_offset) == (1048576, first_ref + k * 1048592)
