"""The mount's chunk cache: decoded chunk data read from tape, kept on local disk so a second read
of the same bytes loads no tape.

One file per chunk, named by the hex digest, holding the decoded data; the data of an unencrypted
chunk hashes to its digest, so every file read from disk is checked with one SHA-256 (about 2 ms
per 4 MiB chunk) and a corrupt or truncated file is dropped instead of returned. Files are written
to a temporary name and renamed, so a crash leaves whole files or none. The least recently used
files go first once the total size passes `max_bytes`; their modification times keep that order
across a restart, when the directory is scanned again. A small LRU in memory in front holds the
hot chunks (a `cp` reads each 4 MiB chunk in 32 pieces of 128 KiB).

Files are written with O_DIRECT where the file system takes it: a buffered write costs the CPU a
copy of every chunk into the page cache (about 1.7 CPU seconds per GiB here, a third of a cold
read through the mount), a direct one about 0.3, the disk moving the bytes itself.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import mmap
import os
import threading
import uuid
from collections import OrderedDict
from pathlib import Path

from tapefs.config.private_files import make_private_dirs, open_private_file

log = logging.getLogger(__name__)

MiB = 1024 * 1024
_TEMP_SUFFIX = ".part"
#: O_DIRECT wants buffer address, length and file offset aligned to the logical block size
#: (512 or 4096 bytes): page-aligned mmap buffers, lengths rounded up to this.
_DIRECT_ALIGNMENT = 4096


def _is_digest_name(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


class ChunkCache:
    """Thread-safe; `get` never returns data that does not hash to the digest asked for."""

    def __init__(self, directory: str | os.PathLike, max_bytes: int, memory_bytes: int = 64 * MiB):
        if max_bytes < 0 or memory_bytes < 0:
            raise ValueError("cache sizes must not be negative")
        self.directory = Path(directory)
        make_private_dirs(self.directory.parent)
        self.directory.mkdir(exist_ok=True, mode=0o700)
        self.max_bytes = max_bytes
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()
        #: digest → file size, least recently used first.
        self._files: OrderedDict[bytes, int] = OrderedDict()
        self._disk_bytes = 0
        #: chunks a `put` is writing now, still found while the memory part may have let them go
        #: (else the mount reads them from tape again); a second writer of the same chunk could
        #: otherwise rename its file into place after the first one's was registered and evicted.
        self._writing: dict[bytes, bytes] = {}
        self._memory: OrderedDict[bytes, bytes] = OrderedDict()
        self._memory_used = 0
        self._counts = {"hits": 0, "memory_hits": 0, "misses": 0, "dropped": 0, "evicted": 0}
        #: False once the file system refused O_DIRECT (tmpfs does): buffered writes from then on.
        self._direct = hasattr(os, "O_DIRECT")
        #: Aligned buffers for O_DIRECT not in use: as many as writes ever ran at once (a buffer
        #: per thread stayed with every worker thread that ever wrote, hundreds of MB in all).
        self._buffers: list[mmap.mmap] = []
        self._scan()

    def _scan(self) -> None:
        found = []
        for entry in os.scandir(self.directory):
            if entry.name.endswith(_TEMP_SUFFIX):
                os.unlink(entry.path)  # a write a crash interrupted
            elif entry.is_file() and _is_digest_name(entry.name):
                stat = entry.stat()
                found.append((stat.st_mtime_ns, bytes.fromhex(entry.name), stat.st_size))
        for _, digest, size in sorted(found):
            self._files[digest] = size
            self._disk_bytes += size
        with self._lock:
            self._evict()
        if found:
            log.info("chunk cache %s: %d chunks, %d bytes", self.directory, len(self._files), self._disk_bytes)

    def _path(self, digest: bytes) -> Path:
        return self.directory / digest.hex()

    def __contains__(self, digest: bytes) -> bool:
        with self._lock:
            return digest in self._memory or digest in self._files or digest in self._writing

    def describe(self, digest: bytes) -> str:
        """Where the cache holds `digest`, or why not: for a log line."""
        with self._lock:
            if digest in self._writing:
                return "being written to the cache"
            if digest in self._memory:
                return "in the cache's memory"
            if digest in self._files:
                return "in the cache's files"
            return (
                f"not in the cache: {self._counts['evicted']} chunks evicted, {self._counts['dropped']} dropped so far"
            )

    def get(self, digest: bytes) -> bytes | None:
        with self._lock:
            data = self._memory.get(digest)
            if data is not None:
                self._memory.move_to_end(digest)
            else:
                data = self._writing.get(digest)
            if data is not None:
                self._counts["hits"] += 1
                self._counts["memory_hits"] += 1
                return data
            if digest not in self._files:
                self._counts["misses"] += 1
                return None
            self._files.move_to_end(digest)
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # evicted meanwhile, or removed by hand
            with self._lock:
                if digest in self._files and not path.exists():
                    self._disk_bytes -= self._files.pop(digest)
                self._counts["misses"] += 1
            return None
        if hashlib.sha256(data).digest() != digest:
            log.warning("chunk cache: %s does not match its digest (%d bytes): dropped", path, len(data))
            with self._lock:
                self._drop(digest)
                self._counts["misses"] += 1
            return None
        try:
            os.utime(path)  # the LRU order survives a restart
        except FileNotFoundError:
            pass
        with self._lock:
            self._counts["hits"] += 1
            self._remember(digest, data)
        return data

    def put(self, digest: bytes, data: bytes) -> None:
        """Keep `data`, the decoded chunk whose SHA-256 is `digest` (checked by the caller)."""
        data = bytes(data)
        with self._lock:
            self._remember(digest, data)
            if digest in self._files or digest in self._writing or len(data) > self.max_bytes:
                return
            self._writing[digest] = data
        path = self._path(digest)
        temp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}{_TEMP_SUFFIX}")
        try:
            if not (self._direct and self._write_direct(temp, data)):
                with os.fdopen(open_private_file(temp, os.O_WRONLY | os.O_TRUNC), "wb") as file:
                    file.write(data)
            os.replace(temp, path)
        except OSError as error:
            log.warning("chunk cache: cannot write %s: %s", path, error)
            temp.unlink(missing_ok=True)
            with self._lock:
                del self._writing[digest]
            return
        with self._lock:
            del self._writing[digest]
            self._files[digest] = len(data)
            self._disk_bytes += len(data)
            self._evict()

    def _write_direct(self, temp: Path, data: bytes) -> bool:
        """Write `data` to the new file `temp` with O_DIRECT; False (nothing written) when the
        file system does not take it."""
        try:
            fd = open_private_file(temp, os.O_WRONLY | os.O_TRUNC | os.O_DIRECT)
        except OSError as error:
            if error.errno != errno.EINVAL:
                raise
            log.info("chunk cache %s: no O_DIRECT on this file system, buffered writes", self.directory)
            self._direct = False
            return False
        try:
            padded = -(-len(data) // _DIRECT_ALIGNMENT) * _DIRECT_ALIGNMENT
            with self._lock:
                buffer = self._buffers.pop() if self._buffers else None
            if buffer is None or len(buffer) < padded:
                buffer = mmap.mmap(-1, max(padded, 4 * MiB))
            try:
                buffer[: len(data)] = data
                view = memoryview(buffer)[:padded]
                try:
                    written = 0
                    while written < padded:
                        written += os.write(fd, view[written:])
                except OSError as error:
                    if error.errno != errno.EINVAL:
                        raise
                    log.info("chunk cache %s: O_DIRECT writes refused, buffered writes", self.directory)
                    self._direct = False
                    return False  # the buffered write starts the file again
                finally:
                    view.release()
            finally:
                with self._lock:
                    self._buffers.append(buffer)
            os.ftruncate(fd, len(data))  # the padding of the last block goes again
        finally:
            os.close(fd)
        return True

    def _remember(self, digest: bytes, data: bytes) -> None:
        if len(data) > self.memory_bytes:
            return
        if digest in self._memory:
            self._memory.move_to_end(digest)
            return
        self._memory[digest] = data
        self._memory_used += len(data)
        while self._memory_used > self.memory_bytes:
            _, old = self._memory.popitem(last=False)
            self._memory_used -= len(old)

    def _evict(self) -> None:
        while self._disk_bytes > self.max_bytes and self._files:
            digest, size = self._files.popitem(last=False)
            self._disk_bytes -= size
            self._counts["evicted"] += 1
            self._path(digest).unlink(missing_ok=True)

    def _drop(self, digest: bytes) -> None:
        size = self._files.pop(digest, None)
        if size is not None:
            self._disk_bytes -= size
            self._counts["dropped"] += 1
        data = self._memory.pop(digest, None)
        if data is not None:
            self._memory_used -= len(data)
        self._path(digest).unlink(missing_ok=True)

    def stats(self) -> dict:
        with self._lock:
            return {
                "directory": str(self.directory),
                "chunks": len(self._files),
                "bytes": self._disk_bytes,
                "max_bytes": self.max_bytes,
                "memory_chunks": len(self._memory),
                "memory_bytes": self._memory_used,
                **self._counts,
            }
