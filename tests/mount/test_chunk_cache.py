"""The mount's chunk cache: LRU on disk and in memory, kept across restarts, never returns bad data."""
import errno
import hashlib
import logging
import os
import threading

import pytest

from tapefs.mount.chunk_cache import ChunkCache


def chunk(size: int = 1000, seed: bytes | None = None) -> tuple[bytes, bytes]:
    data = os.urandom(size) if seed is None else (seed * size)[:size]
    return hashlib.sha256(data).digest(), data


def test_put_then_get_from_memory_and_from_disk(tmp_path):
    cache = ChunkCache(tmp_path / "c", max_bytes=10_000, memory_bytes=0)
    digest, data = chunk()
    assert cache.get(digest) is None
    cache.put(digest, data)
    assert (tmp_path / "c" / digest.hex()).read_bytes() == data
    assert cache.get(digest) == data
    assert digest in cache
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["memory_hits"], stats["chunks"], stats["bytes"]) == (1, 1, 0, 1, 1000)
    warm = ChunkCache(tmp_path / "w", max_bytes=10_000)
    warm.put(digest, data)
    assert warm.get(digest) == data and warm.stats()["memory_hits"] == 1


def test_least_recently_used_chunks_are_evicted_first(tmp_path):
    cache = ChunkCache(tmp_path, max_bytes=3000, memory_bytes=0)
    chunks = [chunk() for _ in range(3)]
    for digest, data in chunks:
        cache.put(digest, data)
    assert cache.get(chunks[0][0]) == chunks[0][1]  # now the most recently used
    newest = chunk()
    cache.put(*newest)
    assert cache.get(chunks[1][0]) is None
    assert not (tmp_path / chunks[1][0].hex()).exists()
    assert all(cache.get(d) == data for d, data in (chunks[0], chunks[2], newest))
    assert cache.stats()["bytes"] == 3000 and cache.stats()["evicted"] == 1


def test_the_memory_lru_is_bounded(tmp_path):
    cache = ChunkCache(tmp_path, max_bytes=100_000, memory_bytes=2500)
    chunks = [chunk() for _ in range(4)]
    for digest, data in chunks:
        cache.put(digest, data)
    stats = cache.stats()
    assert stats["memory_chunks"] == 2 and stats["memory_bytes"] == 2000 and stats["chunks"] == 4


def test_a_restart_finds_the_chunks_and_keeps_their_order(tmp_path):
    cache = ChunkCache(tmp_path, max_bytes=3000, memory_bytes=0)
    chunks = [chunk() for _ in range(3)]
    for n, (digest, data) in enumerate(chunks):
        cache.put(digest, data)
        os.utime(tmp_path / digest.hex(), ns=(n * 10**9, n * 10**9))
    (tmp_path / "0123.part").write_bytes(b"half a write")
    again = ChunkCache(tmp_path, max_bytes=2000, memory_bytes=0)  # smaller now: the oldest goes
    assert not (tmp_path / "0123.part").exists()
    assert again.get(chunks[0][0]) is None
    assert again.get(chunks[1][0]) == chunks[1][1] and again.get(chunks[2][0]) == chunks[2][1]


@pytest.mark.parametrize("damage", ["flipped", "truncated", "empty"])
def test_a_damaged_cache_file_is_dropped_not_returned(tmp_path, damage):
    cache = ChunkCache(tmp_path, max_bytes=10_000, memory_bytes=0)
    digest, data = chunk()
    cache.put(digest, data)
    path = tmp_path / digest.hex()
    broken = {"flipped": bytes([data[0] ^ 1]) + data[1:], "truncated": data[:500], "empty": b""}[damage]
    path.write_bytes(broken)
    assert cache.get(digest) is None
    assert not path.exists()
    assert cache.stats()["dropped"] == 1 and cache.stats()["bytes"] == 0
    cache.put(digest, data)
    assert cache.get(digest) == data


def test_a_chunk_larger_than_the_cache_is_not_written(tmp_path):
    cache = ChunkCache(tmp_path, max_bytes=100, memory_bytes=0)
    digest, data = chunk(1000)
    cache.put(digest, data)
    assert list(tmp_path.iterdir()) == [] and cache.get(digest) is None


def test_concurrent_puts_and_gets_stay_within_the_limit(tmp_path):
    cache = ChunkCache(tmp_path, max_bytes=20_000, memory_bytes=5_000)
    chunks = [chunk(1000) for _ in range(60)]
    errors = []

    def work(offset: int) -> None:
        try:
            for n in range(200):
                digest, data = chunks[(n + offset) % len(chunks)]
                got = cache.get(digest)
                if got is None:
                    cache.put(digest, data)
                elif got != data:
                    errors.append(digest)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n * 7,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stats = cache.stats()
    assert stats["bytes"] <= 20_000
    on_disk = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert on_disk == stats["bytes"] and len(list(tmp_path.iterdir())) == stats["chunks"]


def test_a_chunk_is_found_while_its_file_is_still_being_written(tmp_path, monkeypatch):
    # The memory part lets a chunk go before its disk write ends (here it keeps nothing): the
    # mount must still find it, not read it from tape a second time.
    cache = ChunkCache(tmp_path, max_bytes=10_000, memory_bytes=0)
    digest, data = chunk()
    renaming, release = threading.Event(), threading.Event()
    replace = os.replace

    def slow_replace(source, target):
        renaming.set()
        assert release.wait(timeout=30)
        replace(source, target)

    monkeypatch.setattr("tapefs.mount.chunk_cache.os.replace", slow_replace)
    writer = threading.Thread(target=cache.put, args=(digest, data))
    writer.start()
    try:
        assert renaming.wait(timeout=30)
        assert digest in cache and cache.get(digest) == data
    finally:
        release.set()
        writer.join()
    assert (tmp_path / digest.hex()).read_bytes() == data and cache.get(digest) == data


def test_negative_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="must not be negative"):
        ChunkCache(tmp_path, max_bytes=-1)


def test_a_cache_file_removed_by_hand_is_a_miss(tmp_path):
    cache = ChunkCache(tmp_path, max_bytes=10_000, memory_bytes=0)
    digest, data = chunk()
    cache.put(digest, data)
    (tmp_path / digest.hex()).unlink()
    assert cache.get(digest) is None
    assert cache.stats()["bytes"] == 0 and digest not in cache


@pytest.mark.parametrize("size", [1, 4095, 4096, 4 * 1024 * 1024 + 17])
def test_chunks_of_any_size_are_written_whole_and_found_after_a_restart(tmp_path, size):
    cache = ChunkCache(tmp_path, max_bytes=1 << 30, memory_bytes=0)
    digest, data = chunk(size)
    cache.put(digest, data)
    # O_DIRECT writes whole blocks: the padding must not stay in the file
    assert (tmp_path / digest.hex()).stat().st_size == size
    assert ChunkCache(tmp_path, max_bytes=1 << 30, memory_bytes=0).get(digest) == data


@pytest.mark.parametrize("refused_at", ["open", "write"])
def test_a_file_system_refusing_direct_writes_gets_buffered_ones(tmp_path, monkeypatch, caplog, refused_at):
    # tmpfs before Linux 6.6 refuses O_DIRECT at open, some file systems only at the write
    cache = ChunkCache(tmp_path, max_bytes=1 << 30, memory_bytes=0)
    open_file, write = os.open, os.write
    direct_fds = set()

    def refusing_open(path, flags, *args, **kwargs):
        if flags & os.O_DIRECT and refused_at == "open":
            raise OSError(errno.EINVAL, "Invalid argument")
        fd = open_file(path, flags, *args, **kwargs)
        if flags & os.O_DIRECT:
            direct_fds.add(fd)
        return fd

    def refusing_write(fd, data):
        if fd in direct_fds:
            raise OSError(errno.EINVAL, "Invalid argument")
        return write(fd, data)

    monkeypatch.setattr(os, "open", refusing_open)
    monkeypatch.setattr(os, "write", refusing_write)
    with caplog.at_level(logging.INFO, logger="tapefs.mount.chunk_cache"):
        for _ in range(2):
            digest, data = chunk(10_000)
            cache.put(digest, data)
            assert (tmp_path / digest.hex()).read_bytes() == data
    assert caplog.text.count("buffered writes") == 1  # found out once, not tried again
    assert not list(tmp_path.glob("*.part"))
