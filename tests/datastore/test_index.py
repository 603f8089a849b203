import hashlib
import os

import pytest

from tapefs.datastore.dynamic_index import DynamicIndex, DynamicIndexWriter
from tapefs.datastore.errors import CorruptFileError
from tapefs.datastore.fixed_index import FixedIndex, FixedIndexWriter
from tapefs.datastore.index_file import temp_index_path
from tests.helpers.pbs_reference import FIXTURES

PPXAR_DIDX = FIXTURES / "upstream" / "backup-client-pxar-data.ppxar.didx"


def test_upstream_didx_fixture():
    index = DynamicIndex.load(PPXAR_DIDX)
    assert index.chunk_count == 100
    assert index.ends[0] == 1048608
    # every payload chunk is one 1 MiB file plus its 16-byte header; the last also holds the tail marker
    assert all(b - a == 1048592 for a, b in zip(index.ends, index.ends[1:-1]))
    assert index.size == 104859232
    assert len(set(index.digests)) == 3
    assert index.index_csum.hex().startswith("e13b71c1") and index.index_csum.hex().endswith("cbd20")
    assert index.uuid.hex() == "f0ef7665555e417ea6eba00a375ceee0"
    assert index.ctime == 1715091951  # 2024-05-07T14:25:51Z


def test_didx_writer_reproduces_fixture(tmp_path):
    source = DynamicIndex.load(PPXAR_DIDX)
    target = tmp_path / "root.ppxar.didx"
    with DynamicIndexWriter(target) as writer:
        for end, digest in zip(source.ends, source.digests):
            writer.add_chunk(end, digest)
        csum = writer.close(ctime=source.ctime, uuid_bytes=source.uuid)
    assert csum == source.index_csum
    assert target.read_bytes() == PPXAR_DIDX.read_bytes()
    assert os.listdir(tmp_path) == ["root.ppxar.didx"]


def test_didx_lookup():
    index = DynamicIndex.load(PPXAR_DIDX)
    assert index.find_chunk(0) == 0
    assert index.find_chunk(1048607) == 0
    assert index.find_chunk(1048608) == 1
    assert index.chunk_range(1) == (1048608, 1048608 + 1048592)
    assert index.find_chunk(index.size - 1) == 99


def test_temp_names_follow_pbs():
    assert temp_index_path("/x/drive.img.fidx").name == "drive.img.tmp_fidx"
    assert temp_index_path("/x/root.pxar.didx").name == "root.pxar.tmp_didx"


def test_writer_exception_leaves_nothing(tmp_path):
    target = tmp_path / "root.pxar.didx"
    with pytest.raises(RuntimeError):
        with DynamicIndexWriter(target) as writer:
            writer.add_chunk(10, b"\x01" * 32)
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_didx_writer_rejects_non_increasing_end(tmp_path):
    with DynamicIndexWriter(tmp_path / "a.pxar.didx") as writer:
        writer.add_chunk(10, b"\x01" * 32)
        with pytest.raises(ValueError):
            writer.add_chunk(10, b"\x02" * 32)
        writer.abort()


def corrupt(path, offset, value=None, truncate=None):
    raw = bytearray(path.read_bytes())
    if truncate is not None:
        del raw[truncate:]
    else:
        raw[offset] ^= 0xFF if value is None else value
    path.write_bytes(bytes(raw))


def test_didx_corruptions(tmp_path):
    path = tmp_path / "x.didx"
    for mutate, offset, fragment in [
        (lambda p: corrupt(p, 0), 0, "not a dynamic index"),
        (lambda p: corrupt(p, None, truncate=4096 + 39), 4096 + 39, "truncated"),
        (lambda p: corrupt(p, None, truncate=100), 100, "truncated"),
        (lambda p: corrupt(p, 4096 + 45), 32, "checksum"),
    ]:
        path.write_bytes(PPXAR_DIDX.read_bytes())
        mutate(path)
        with pytest.raises(CorruptFileError) as info:
            DynamicIndex.load(path)
        assert info.value.offset == offset
        assert fragment in str(info.value) and str(path) in str(info.value)


def test_didx_non_increasing_entry_named(tmp_path):
    path = tmp_path / "x.didx"
    raw = bytearray(PPXAR_DIDX.read_bytes())
    raw[4096 + 40 : 4096 + 48] = (5).to_bytes(8, "little")  # entry 1 ends before entry 0
    raw[32:64] = hashlib.sha256(raw[4096:]).digest()
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError) as info:
        DynamicIndex.load(path)
    assert info.value.offset == 4096 + 40


def digests(n):
    return [hashlib.sha256(bytes([i])).digest() for i in range(n)]


def test_fidx_round_trip(tmp_path):
    path = tmp_path / "drive.img.fidx"
    size = 3 * 65536 + 100
    with FixedIndexWriter(path, 65536) as writer:
        for digest in digests(4):
            writer.add_digest(digest)
        csum = writer.close(size, ctime=1700000000, uuid_bytes=b"\x05" * 16)
    raw = path.read_bytes()
    assert len(raw) == 4096 + 4 * 32
    assert raw[64:72] == size.to_bytes(8, "little") and raw[72:80] == (65536).to_bytes(8, "little")
    assert csum == hashlib.sha256(b"".join(digests(4))).digest() == raw[32:64]
    index = FixedIndex.load(path)
    assert (index.size, index.chunk_size, index.ctime, index.uuid) == (size, 65536, 1700000000, b"\x05" * 16)
    assert index.digests == digests(4)
    assert index.chunk_range(3) == (3 * 65536, size)
    assert index.find_chunk(65536) == 1


def test_fidx_count_must_cover_size(tmp_path):
    with FixedIndexWriter(tmp_path / "a.img.fidx", 65536) as writer:
        writer.add_digest(digests(1)[0])
        with pytest.raises(ValueError):
            writer.close(65537)
        writer.abort()
    assert os.listdir(tmp_path) == []


def test_fidx_corruptions(tmp_path):
    path = tmp_path / "a.img.fidx"
    with FixedIndexWriter(path, 65536) as writer:
        for digest in digests(2):
            writer.add_digest(digest)
        writer.close(100000)
    good = path.read_bytes()
    for mutate, offset, fragment in [
        (lambda raw: raw[:4100], 4100, "expected 4160"),
        (lambda raw: raw[:72] + (1000).to_bytes(8, "little") + raw[80:], 72, "power of two"),
        (lambda raw: raw[:4096] + bytes(32) + raw[4128:], 32, "checksum"),
        (lambda raw: b"\0" * 8 + raw[8:], 0, "not a fixed index"),
    ]:
        path.write_bytes(mutate(good))
        with pytest.raises(CorruptFileError) as info:
            FixedIndex.load(path)
        assert info.value.offset == offset, str(info.value)
        assert fragment in str(info.value)
