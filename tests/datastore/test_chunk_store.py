import os
import time

import pytest

from tapefs.datastore.blob import encode_blob
from tapefs.datastore.chunk_store import ChunkStore
from tapefs.datastore.crypt_config import CryptConfig, plain_digest
from tapefs.datastore.errors import ChunkMissingError, CorruptFileError

KEY = CryptConfig(b"\x01" * 32)


@pytest.fixture
def store(tmp_path):
    # a store without the 65536 prefix dirs: insert must create the one it needs
    return ChunkStore(tmp_path)


@pytest.mark.slow
def test_create_lays_out_all_prefix_dirs(tmp_path):
    store = ChunkStore.create(tmp_path)
    names = os.listdir(store.chunk_dir)
    assert len(names) == 65536
    assert "0000" in names and "ffff" in names and "a342" in names


def test_chunk_path_uses_two_digest_bytes(store):
    digest = bytes.fromhex("a342e815" + "00" * 28)
    assert store.chunk_path(digest) == store.base / ".chunks" / "a342" / digest.hex()


def test_insert_new_then_duplicate_touches_atime(store):
    data = b"x" * 1000
    digest = plain_digest(data)
    encoded = encode_blob(data)
    assert store.insert(digest, encoded).is_duplicate is False
    path = store.chunk_path(digest)
    old = time.time_ns() - 10**12
    os.utime(path, ns=(old, old))
    result = store.insert(digest, encoded)
    assert result.is_duplicate and result.stored_size == len(encoded)
    st = path.stat()
    assert st.st_atime_ns > old and st.st_mtime_ns == old
    assert store.read_raw(digest) == encoded
    assert [name for name in os.listdir(path.parent)] == [digest.hex()]


def test_duplicate_removed_by_garbage_collection_before_its_touch_is_written_again(store, monkeypatch):
    """A collection may remove a known chunk between insert's look and its touch."""
    from tapefs.datastore import chunk_store

    data = b"z" * 1000
    digest = plain_digest(data)
    encoded = encode_blob(data)
    store.insert(digest, encoded)
    real_touch = chunk_store.touch_atime

    def removed_first(path):
        os.unlink(path)
        monkeypatch.setattr(chunk_store, "touch_atime", real_touch)
        real_touch(path)

    monkeypatch.setattr(chunk_store, "touch_atime", removed_first)
    assert store.insert(digest, encoded).is_duplicate is False
    assert store.read_raw(digest) == encoded


def test_zero_length_chunk_is_missing_and_overwritten(store):
    data = b"y" * 100
    digest = plain_digest(data)
    path = store.chunk_path(digest)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    with pytest.raises(ChunkMissingError):
        store.read_raw(digest)
    assert store.insert(digest, encode_blob(data)).is_duplicate is False
    assert store.read_raw(digest) == encode_blob(data)


def test_smaller_existing_kept_bigger_replaced(store):
    data = b"z" * 5000
    digest = plain_digest(data)
    compressed = encode_blob(data)
    uncompressed = encode_blob(data, compress=False)
    assert len(compressed) < len(uncompressed)
    store.insert(digest, compressed)
    assert store.insert(digest, uncompressed).is_duplicate
    assert store.read_raw(digest) == compressed
    other = ChunkStore(store.base / "other")
    other.insert(digest, uncompressed)
    assert other.insert(digest, compressed).is_duplicate is False
    assert other.read_raw(digest) == compressed


def test_encrypted_never_replaces_plain(store):
    data = b"secret" * 100
    digest = plain_digest(data)
    store.insert(digest, encode_blob(data))
    with pytest.raises(CorruptFileError):
        store.insert(digest, encode_blob(data, KEY, compress=False))


def test_encrypted_uncompressed_length_mismatch_refused(store):
    data = os.urandom(200)
    digest = KEY.digest(data)
    encrypted = encode_blob(data, KEY, compress=False)
    store.insert(digest, encrypted)
    with pytest.raises(CorruptFileError):
        store.insert(digest, encrypted + b"!")


def test_missing_chunk(store):
    with pytest.raises(ChunkMissingError) as info:
        store.read_raw(b"\xab" * 32)
    assert "abab" in str(info.value)


def test_iter_digests_ignores_temp_and_bad_files(store):
    digests = set()
    for i in range(5):
        data = bytes([i]) * 10
        digests.add(plain_digest(data))
        store.insert(plain_digest(data), encode_blob(data))
    some = store.chunk_path(next(iter(digests)))
    (some.parent / (some.name + ".0.bad")).write_bytes(b"bad")
    (some.parent / (some.name + ".tmp_abc")).write_bytes(b"tmp")
    assert set(store.iter_digests()) == digests


def test_a_backup_stores_again_a_known_chunk_that_garbage_collection_removed_before_its_touch(store, monkeypatch):
    """The uploader saw the chunk, then a collection removed it before the touch: the chunk is
    written again instead of the backup failing (or naming a chunk that is gone)."""
    from tapefs.datastore import chunk_store
    from tapefs.datastore.chunk_uploader import ChunkUploader

    data = b"y" * 1000
    digest = plain_digest(data)
    store.insert(digest, encode_blob(data))
    real_touch = chunk_store.touch_atime

    def removed_first(path):
        os.unlink(path)
        monkeypatch.setattr(chunk_store, "touch_atime", real_touch)
        real_touch(path)

    monkeypatch.setattr(chunk_store, "touch_atime", removed_first)
    with ChunkUploader(store) as uploader:
        assert uploader.submit(data).result() == digest
    assert uploader.stats.duplicate_count == 0 and uploader.stats.stored_size > 0
    assert store.read_raw(digest) == encode_blob(data)
