"""Encode and insert chunks on worker threads.

Hashing, zstd and AES release the GIL, so two workers keep both cores busy while the caller
keeps chunking. Callers get a future for each chunk's digest and must consume them in order
(see ``ChunkingWriter`` and the image backup).
"""

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from tapefs.datastore.blob import encode_blob
from tapefs.datastore.chunk_store import ChunkStore
from tapefs.datastore.crypt_config import CryptConfig, plain_digest
from tapefs.progress import ProgressMeter

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 2


@dataclass
class UploadStats:
    chunk_count: int = 0
    #: chunks that were already in the store (only touched)
    duplicate_count: int = 0
    #: plaintext bytes of all chunks
    size: int = 0
    #: encoded bytes written for new chunks
    stored_size: int = 0


class ChunkUploader:
    def __init__(
        self,
        chunk_store: ChunkStore,
        crypt_config: CryptConfig | None = None,
        compress: bool = True,
        workers: int = DEFAULT_WORKERS,
        progress: ProgressMeter | None = None,
    ):
        self.chunk_store = chunk_store
        self.progress = progress
        self.crypt_config = crypt_config
        self.compress = compress
        self.stats = UploadStats()
        self._stats_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chunk-upload")
        #: how many futures a caller may leave outstanding before it waits for the oldest
        self.max_pending = workers * 2

    def digest(self, data: bytes) -> bytes:
        if self.crypt_config is not None:
            return self.crypt_config.digest(data)
        return plain_digest(data)

    def submit(self, data: bytes) -> "Future[bytes]":
        if self.progress is not None:
            self.progress.add(len(data))
        return self._pool.submit(self._store, data)

    def _store(self, data: bytes) -> bytes:
        digest = self.digest(data)
        known = self.chunk_store.is_known(digest)
        if known:
            # a known chunk is only touched, as the PBS client skips uploading known chunks
            try:
                self.chunk_store.touch(digest)
            except FileNotFoundError:
                known = False  # garbage collection took it since the stat: store it again
        if known:
            stored = 0
            duplicate = True
        else:
            result = self.chunk_store.insert(digest, encode_blob(data, self.crypt_config, self.compress))
            duplicate = result.is_duplicate
            stored = 0 if duplicate else result.stored_size
        with self._stats_lock:
            self.stats.chunk_count += 1
            self.stats.duplicate_count += duplicate
            self.stats.size += len(data)
            self.stats.stored_size += stored
        return digest

    def count_known_chunk(self, size: int) -> None:
        """Account for a chunk reused from an earlier index without being read or stored."""
        with self._stats_lock:
            self.stats.chunk_count += 1
            self.stats.duplicate_count += 1
            self.stats.size += size

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
