"""Datastores whose chunks and contents live in an S3 bucket, with the datastore directory as
a local cache (PBS 4.x's S3 backend, same bucket layout, so one bucket serves PBS and tapefs).

Bucket keys, all below ``<datastore name>/``:

- ``.chunks/<4 hex>/<digest>``: the chunk file as it is on disk, uploaded once with
  ``If-None-Match: *`` (412 means another upload stored it first);
- ``.cnt/<snapshot or group path>/<file>``: indexes, blobs, manifest, owner, notes,
  ``.protected``: everything else of the datastore directory;
- ``.in-use``: ``{"hostname": ...}`` of the host that operates the datastore.

The cache directory is an ordinary datastore directory holding all contents and a bounded set of
chunks; a chunk that is in the bucket but not in the cache is a 0-byte file (PBS's marker), which
the local code already treats as missing. A chunk file appears in the cache only after its upload
succeeded, and downloads are written to a temporary file and renamed, so a crash never leaves a
chunk that looks valid but is not in the bucket. A snapshot's files go up after its chunks and its
manifest last, so a snapshot without manifest is never taken for a finished one.
"""

import json
import logging
import os
import socket
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from tapefs.config import paths
from tapefs.config.sizes import parse_size
from tapefs.datastore.chunk_store import CHUNK_DIR_NAME, CHUNK_FILE_NAME, MAX_BAD_COPIES, ChunkStore, InsertResult
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.errors import ChunkMissingError, DatastoreError
from tapefs.datastore.manifest import MANIFEST_BLOB_NAME
from tapefs.datastore.naming import BackupSnapshot
from tapefs.s3.endpoint_config import EndpointRegistry, check_bucket_name
from tapefs.s3.errors import S3ConfigError, S3InUse
from tapefs.s3.telemetry import RequestCounters, TelemetryFile

if TYPE_CHECKING:
    from tapefs.s3.client import S3Client

log = logging.getLogger(__name__)

CONTENT_PREFIX = ".cnt"
IN_USE_MARKER = ".in-use"
#: PBS counts the cache in chunks of this size
CACHE_CHUNK_SIZE = 16 << 20
TELEMETRY_DIR = "s3-statistics"
#: files of the datastore directory that stay local (lock files, state)
LOCAL_ONLY_NAMES = (".lock", ".gc-status", ".verify-status")


class BackendConfig:
    """The ``backend`` property of a datastore.cfg section: ``type=s3,client=ID,bucket=B[,max-cache-size=SIZE]``."""

    def __init__(self, client: str, bucket: str, max_cache_size: int | None = None):
        self.client = client
        self.bucket = check_bucket_name(bucket)
        self.max_cache_size = max_cache_size

    def format(self) -> str:
        text = f"bucket={self.bucket},client={self.client},type=s3"
        if self.max_cache_size is not None:
            text += f",max-cache-size={self.max_cache_size}"
        return text

    @classmethod
    def parse(cls, text: str) -> "BackendConfig | None":
        """None for a filesystem datastore."""
        if not text.strip():
            return None
        values = {}
        for part in text.split(","):
            key, _, value = part.partition("=")
            if not value:
                key, value = "type", key
            values[key.strip()] = value.strip()
        if values.get("type", "filesystem") == "filesystem":
            return None
        if values["type"] != "s3":
            raise S3ConfigError(f"unknown datastore backend type {values['type']!r}")
        if "client" not in values or "bucket" not in values:
            raise S3ConfigError(f"backend {text!r}: an S3 backend needs client= and bucket=")
        size = values.get("max-cache-size")
        try:
            max_cache = parse_size(size) if size else None
        except ValueError as exc:
            raise S3ConfigError(str(exc)) from None
        return cls(values["client"], values["bucket"], max_cache)


def chunk_key(digest: bytes) -> str:
    hex_digest = digest.hex()
    return f"{CHUNK_DIR_NAME}/{hex_digest[:4]}/{hex_digest}"


def telemetry_path(endpoint_id: str, bucket: str, store: str) -> Path:
    return paths.state_dir() / TELEMETRY_DIR / f"{endpoint_id}-{bucket}-{store}.json"


class S3ChunkStore(ChunkStore):
    """The cache's ``.chunks`` in front of the bucket's."""

    def __init__(self, base: str | os.PathLike, client: "S3Client", max_cache_size: int | None = None):
        super().__init__(base)
        self.client = client
        self.capacity = max(1, max_cache_size // CACHE_CHUNK_SIZE) if max_cache_size else None
        self._cached: int | None = None
        self._evict_lock = threading.Lock()

    def is_known(self, digest: bytes) -> bool:
        # a 0-byte marker: in the bucket, evicted from the cache
        return self.chunk_path(digest).exists()

    def insert(self, digest: bytes, encoded: bytes, sync: bool = False) -> InsertResult:
        stored = self.client.put_object(chunk_key(digest), encoded, replace=False)
        result = super().insert(digest, encoded, sync)
        if not result.is_duplicate:
            self._note_cached()
        return InsertResult(not stored, result.stored_size)

    def fetch(self, digest: bytes) -> bytes:
        """The chunk's bytes from the bucket, kept in the cache."""
        raw = self.client.get_object(chunk_key(digest), f"chunk {digest.hex()}")
        if raw is None or not raw:
            raise ChunkMissingError(digest, f"s3://{self.client.bucket}/{self.client.key(chunk_key(digest))}")
        self._write(self.chunk_path(digest), raw, sync=False)
        self._note_cached()
        return raw

    def read_raw(self, digest: bytes) -> bytes:
        try:
            return super().read_raw(digest)
        except ChunkMissingError:
            return self.fetch(digest)

    def read_blob_parts(self, digest: bytes) -> tuple[bytes, bytes]:
        try:
            return super().read_blob_parts(digest)
        except ChunkMissingError:
            self.fetch(digest)
            return super().read_blob_parts(digest)

    def _note_cached(self) -> None:
        if self.capacity is None:
            return
        with self._evict_lock:
            if self._cached is None:
                self._cached = sum(1 for _ in self._cached_files())
            else:
                self._cached += 1
            if self._cached > self.capacity:
                self._evict()

    def _cached_files(self):
        for prefix in os.scandir(self.chunk_dir):
            if prefix.is_dir():
                for entry in os.scandir(prefix.path):
                    if CHUNK_FILE_NAME.fullmatch(entry.name):
                        info = entry.stat()
                        if info.st_size:
                            yield info.st_atime_ns, entry.path

    def _evict(self) -> None:
        """Least recently used chunks become 0-byte markers until a tenth of the cache is free."""
        files = sorted(self._cached_files())
        keep = self.capacity - max(1, self.capacity // 10)
        for _, path in files[: max(0, len(files) - keep)]:
            os.truncate(path, 0)
        self._cached = min(len(files), keep)

    def verification_view(self) -> ChunkStore:
        return BucketChunks(self)


class BucketChunks(ChunkStore):
    """The chunks as the bucket holds them, bypassing the cache: what verify reads."""

    def __init__(self, store: S3ChunkStore):
        super().__init__(store.base)
        self.store = store
        self.client = store.client

    def object_url(self, digest: bytes) -> str:
        return f"s3://{self.client.bucket}/{self.client.key(chunk_key(digest))}"

    def read_raw(self, digest: bytes) -> bytes:
        raw = self.client.get_object(chunk_key(digest))
        if not raw:
            raise ChunkMissingError(digest, self.object_url(digest))
        return raw

    def read_blob_parts(self, digest: bytes) -> tuple[bytes, bytes]:
        return self.read_raw(digest), b""

    def iter_digests(self):
        for listed in self.client.list_objects(f"{CHUNK_DIR_NAME}/"):
            name = listed.key.rsplit("/", 1)[-1]
            if CHUNK_FILE_NAME.fullmatch(name):
                yield bytes.fromhex(name)

    def mark_bad(self, digest: bytes) -> Path | None:
        """Copy to ``<digest>.<n>.bad`` and delete the original, as PBS; drop the cached copy."""
        key = chunk_key(digest)
        for number in range(MAX_BAD_COPIES):
            bad_key = f"{key}.{number}.bad"
            if self.client.head_object(bad_key) is None:
                self.client.copy_object(key, bad_key)
                self.client.delete_object(key)
                self.store.chunk_path(digest).unlink(missing_ok=True)
                return Path(bad_key)
        return None


class S3Datastore(Datastore):
    #: uploads wait on the network, not the CPU
    upload_concurrency = 8

    def __init__(self, root: str | os.PathLike, name: str, backend: BackendConfig, endpoints: EndpointRegistry | None):
        super().__init__(root, name)
        self.backend = backend
        endpoint = (endpoints or EndpointRegistry()).get(backend.client)
        self.counters = RequestCounters()
        self.telemetry = TelemetryFile(telemetry_path(endpoint.id, backend.bucket, name))
        # boto3 takes a third of a second to import: only commands that open an S3 datastore pay it
        from tapefs.s3.client import S3Client

        self.client = S3Client(endpoint, backend.bucket, name, self.counters)
        self.chunk_store = S3ChunkStore(self.root, self.client, backend.max_cache_size)
        # what is still counted goes to the file when the datastore is dropped or the process ends
        weakref.finalize(self, self.telemetry.add, self.counters)

    def flush_telemetry(self) -> None:
        self.telemetry.add(self.counters)

    # --- the in-use marker -------------------------------------------------------------------

    def in_use_by(self) -> str | None:
        raw = self.client.get_object(IN_USE_MARKER)
        if raw is None:
            return None
        try:
            return str(json.loads(raw)["hostname"])
        except (ValueError, KeyError, TypeError):
            return "an unknown host"

    def claim(self, overwrite_in_use: bool = False) -> None:
        """Write the ``.in-use`` marker with this host's name; refused if another host's is there."""
        holder = self.in_use_by()
        host = socket.gethostname()
        if holder is not None and holder != host and not overwrite_in_use:
            raise S3InUse(
                f"bucket {self.backend.bucket} already holds datastore {self.name} in use by host {holder} "
                "(--overwrite-in-use takes it over; the other host must stop using it)"
            )
        self.client.put_object(IN_USE_MARKER, json.dumps({"hostname": host}).encode())

    # --- contents ----------------------------------------------------------------------------

    def content_key(self, path: Path) -> str:
        return f"{CONTENT_PREFIX}/{path.relative_to(self.root).as_posix()}"

    def upload_content(self, path: Path) -> None:
        self.client.put_object(self.content_key(path), path.read_bytes())

    def delete_content(self, path: Path) -> None:
        """Remove a file, or everything below a directory, from the bucket."""
        key = self.content_key(path)
        keys = [listed.key for listed in self.client.list_objects(f"{key}/")]
        if self.client.head_object(key) is not None:
            keys.append(key)
        failed = self.client.delete_objects(keys)
        if failed:
            raise DatastoreError(
                f"could not delete {len(failed)} objects of {key} from bucket {self.backend.bucket} "
                f"(object lock?): first {failed[0][0]}: {failed[0][1]}"
            )

    def publish_snapshot(self, snapshot: BackupSnapshot, directory: Path | None = None) -> None:
        """Upload the group's owner, the snapshot's files, and its manifest last."""
        path = self.snapshot_path(snapshot)
        source = directory or path
        owner = path.parent / "owner"
        if owner.exists():
            self.upload_content(owner)
        names = sorted(p.name for p in source.iterdir() if p.is_file() and p.name != MANIFEST_BLOB_NAME)
        for name in [*names, MANIFEST_BLOB_NAME]:
            self.client.put_object(self.content_key(path / name), (source / name).read_bytes())
        self.flush_telemetry()

    def sweep_backend_chunks(self, cutoff: float) -> tuple[int, int, list[str]]:
        """Delete chunk objects whose cache marker is gone or older than ``cutoff``; objects
        uploaded since the cut-off stay (a running backup may not have written its marker yet)."""
        doomed: dict[str, int] = {}
        for listed in self.client.list_objects(f"{CHUNK_DIR_NAME}/"):
            name = listed.key.rsplit("/", 1)[-1]
            if not CHUNK_FILE_NAME.fullmatch(name) or listed.last_modified >= cutoff:
                continue
            try:
                used = self.chunk_store.chunk_path(bytes.fromhex(name)).stat().st_atime >= cutoff
            except FileNotFoundError:
                used = False
            if not used:
                doomed[listed.key] = listed.size
        locked = [key for key, _ in self.client.delete_objects(list(doomed))]
        removed = [key for key in doomed if key not in set(locked)]
        self.flush_telemetry()
        return len(removed), sum(doomed[key] for key in removed), locked

    def refresh(self) -> tuple[int, int]:
        """Rebuild the cache's contents from the bucket (PBS's "s3 refresh"): every content
        object downloaded, a 0-byte marker for every chunk; (content files, chunks)."""
        contents = chunks = 0
        stored_objects = stored_bytes = 0
        for listed in self.client.list_objects(""):
            stored_objects += 1
            stored_bytes += listed.size
            if listed.key.startswith(f"{CONTENT_PREFIX}/"):
                relative = listed.key[len(CONTENT_PREFIX) + 1 :]
                target = self.root / relative
                if ".." in Path(relative).parts:
                    continue
                raw = self.client.get_object(listed.key) or b""
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
                ChunkStore._write(target, raw, sync=False)
                contents += 1
            elif listed.key.startswith(f"{CHUNK_DIR_NAME}/"):
                name = listed.key.rsplit("/", 1)[-1]
                if CHUNK_FILE_NAME.fullmatch(name):
                    marker = self.chunk_store.chunk_path(bytes.fromhex(name))
                    if not marker.exists():
                        marker.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
                        marker.touch(mode=0o640)
                    chunks += 1
        self.telemetry.set_stored(stored_objects, stored_bytes)
        self.flush_telemetry()
        return contents, chunks
