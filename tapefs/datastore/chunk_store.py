"""The ``.chunks/`` directory: content-addressed DataBlobs (docs/datastore-format.md).

A chunk lives at ``.chunks/<first 4 hex digits>/<64 hex digits>``; its name is the digest of
the plaintext, never of the file bytes, so two writers may store different bytes for one
digest. Inserts follow PBS's rules for which copy wins.
"""

import ctypes
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tapefs.config.private_files import make_private_dir, make_private_dirs, restrict_file
from tapefs.datastore.blob import blob_kind
from tapefs.datastore.errors import ChunkMissingError, CorruptFileError

log = logging.getLogger(__name__)

CHUNK_DIR_NAME = ".chunks"
PREFIX_DIR_COUNT = 1 << 16
CHUNK_FILE_NAME = re.compile(r"[0-9a-f]{64}")
MAX_BAD_COPIES = 10
#: a chunk removed under a duplicate insert is written again; more misses mean a deeper problem
INSERT_ATTEMPTS = 3

_libc = ctypes.CDLL(None, use_errno=True)
SYNC_FILE_RANGE_WRITE = 2
AT_FDCWD = -100
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


#: utimensat() times: atime now, mtime untouched (one syscall, no stat needed)
_ATIME_NOW = (_Timespec * 2)(_Timespec(0, UTIME_NOW), _Timespec(0, UTIME_OMIT))


def touch_atime(path: str | os.PathLike) -> None:
    """Set a file's atime to now and leave its mtime, as PBS does with utimensat(): an explicit
    update, which relatime and noatime mounts do not suppress."""
    if _libc.utimensat(AT_FDCWD, os.fsencode(path), _ATIME_NOW, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), str(path))


@dataclass(frozen=True)
class InsertResult:
    is_duplicate: bool
    #: bytes of the chunk file as it now stands in the store
    stored_size: int


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) == length:
        return data
    parts = [data]
    done = len(data)
    while done < length:
        more = os.pread(fd, length - done, offset + done)
        if not more:
            break  # the file shrank under us; decoding reports the short blob
        parts.append(more)
        done += len(more)
    return b"".join(parts)


class ChunkStore:
    def __init__(self, base: str | os.PathLike):
        self.base = Path(base)
        self.chunk_dir = self.base / CHUNK_DIR_NAME

    @classmethod
    def create(cls, base: str | os.PathLike, prefix_dirs: bool = True) -> "ChunkStore":
        """Create ``.chunks`` with all 65536 prefix directories, as PBS does (PBS's writer
        expects them). ``prefix_dirs=False`` leaves them to be made on first use, which only
        tapefs tolerates; it saves seconds where a store is thrown away soon (tests)."""
        store = cls(base)
        make_private_dirs(store.chunk_dir)
        if prefix_dirs:
            chunk_dir_fd = os.open(store.chunk_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                for prefix in range(PREFIX_DIR_COUNT):
                    make_private_dir(f"{prefix:04x}", dir_fd=chunk_dir_fd, exist_ok=True)
            finally:
                os.close(chunk_dir_fd)
        return store

    def exists(self) -> bool:
        return self.chunk_dir.is_dir()

    def chunk_path(self, digest: bytes) -> Path:
        hex_digest = digest.hex()
        return self.chunk_dir / hex_digest[:4] / hex_digest

    def read_raw(self, digest: bytes) -> bytes:
        """Encoded bytes of a chunk; a 0-byte file (S3 cache marker) counts as missing."""
        path = self.chunk_path(digest)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ChunkMissingError(digest, path) from None
        if not raw:
            raise ChunkMissingError(digest, path)
        return raw

    def read_blob_parts(self, digest: bytes) -> tuple[bytes, bytes]:
        """A chunk as (header, payload), read separately so the payload needs no copy.

        An unknown magic or a short file comes back whole as the "header"; decoding then
        reports it with the right offset."""
        path = self.chunk_path(digest)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ChunkMissingError(digest, path) from None
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                raise ChunkMissingError(digest, path)
            kind = blob_kind(os.pread(fd, 8, 0))
            if kind is None or size < kind.header_size:
                return _pread_all(fd, size, 0), b""
            return _pread_all(fd, kind.header_size, 0), _pread_all(fd, size - kind.header_size, kind.header_size)
        finally:
            os.close(fd)

    def is_known(self, digest: bytes) -> bool:
        """Whether a backup may skip the chunk: stored here with content."""
        try:
            return self.chunk_path(digest).stat().st_size > 0
        except FileNotFoundError:
            return False

    def verification_view(self) -> "ChunkStore":
        """The chunks verify reads: the store itself (an S3 store answers with its bucket)."""
        return self

    def touch(self, digest: bytes) -> None:
        """Set atime to now (mtime untouched), so garbage collection keeps the chunk."""
        touch_atime(self.chunk_path(digest))

    def insert(self, digest: bytes, encoded: bytes, sync: bool = False) -> InsertResult:
        """Store an encoded chunk unless an acceptable copy is already there (docs/datastore-format.md).

        A known chunk gets its atime touched, so a garbage collection running meanwhile keeps
        it; if that collection removed it between our look and our touch, it is written anew."""
        for _ in range(INSERT_ATTEMPTS - 1):
            try:
                return self._insert(digest, encoded, sync)
            except FileNotFoundError:
                continue
        return self._insert(digest, encoded, sync)

    def _insert(self, digest: bytes, encoded: bytes, sync: bool) -> InsertResult:
        path = self.chunk_path(digest)
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._write(path, encoded, sync)
            return InsertResult(False, len(encoded))
        existing_size = stat.st_size
        if existing_size == 0:
            self._write(path, encoded, sync)
            return InsertResult(False, len(encoded))
        if existing_size == len(encoded):
            touch_atime(path)
            return InsertResult(True, existing_size)
        new_kind = blob_kind(encoded)
        with open(path, "rb") as existing:
            old_kind = blob_kind(existing.read(8))
        if new_kind is not None and new_kind.encrypted:
            if old_kind is None or not old_kind.encrypted:
                raise CorruptFileError(path, 0, "refusing to replace an unencrypted chunk with an encrypted one")
            if not new_kind.compressed and not old_kind.compressed:
                raise CorruptFileError(path, 0, "encrypted chunk of the same digest with a different length")
            touch_atime(path)
            return InsertResult(True, existing_size)
        if existing_size < len(encoded):
            touch_atime(path)
            return InsertResult(True, existing_size)
        self._write(path, encoded, sync)
        return InsertResult(False, len(encoded))

    @staticmethod
    def _write(path: Path, encoded: bytes, sync: bool) -> None:
        try:
            fd, temp_name = tempfile.mkstemp(prefix=path.name + ".tmp_", dir=path.parent)
        except FileNotFoundError:  # a store made without its prefix directories
            make_private_dirs(path.parent)
            fd, temp_name = tempfile.mkstemp(prefix=path.name + ".tmp_", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as temp:
                restrict_file(temp.fileno())
                temp.write(encoded)
                temp.flush()
                if sync:
                    os.fsync(temp.fileno())
                else:
                    # start writeback now, without waiting: the disk works while we chunk on,
                    # and the syncfs() before the index is published finds little left to do
                    _libc.sync_file_range(temp.fileno(), ctypes.c_int64(0), ctypes.c_int64(0), SYNC_FILE_RANGE_WRITE)
            os.rename(temp_name, path)
        except BaseException:
            try:
                os.unlink(temp_name)
            except FileNotFoundError:
                pass
            raise

    def sync(self) -> None:
        """Make every chunk written so far durable, before an index that names them appears.

        One syncfs() of the datastore's file system is far cheaper than an fsync per chunk;
        PBS's default sync level ("filesystem") does the same."""
        fd = os.open(self.chunk_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if _libc.syncfs(fd) != 0:
                error = ctypes.get_errno()
                raise OSError(error, os.strerror(error), str(self.chunk_dir))
        finally:
            os.close(fd)

    def iter_digests(self):
        """Every chunk digest in the store (files named by exactly 64 hex digits)."""
        if not self.chunk_dir.is_dir():
            return
        for prefix in sorted(os.listdir(self.chunk_dir)):
            prefix_dir = self.chunk_dir / prefix
            try:
                names = os.listdir(prefix_dir)
            except (NotADirectoryError, FileNotFoundError):
                continue
            for name in sorted(names):
                if CHUNK_FILE_NAME.fullmatch(name):
                    yield bytes.fromhex(name)

    def mark_bad(self, digest: bytes) -> Path | None:
        """Rename a corrupt chunk to ``<digest>.<n>.bad`` like PBS verify; None if all n are used."""
        path = self.chunk_path(digest)
        for number in range(MAX_BAD_COPIES):
            bad_path = path.with_name(f"{path.name}.{number}.bad")
            if not bad_path.exists():
                os.rename(path, bad_path)
                return bad_path
        return None
