"""Load a chunk from the store and prove it is the chunk the index asked for
(docs/datastore-format.md, "DataBlob")."""

import logging

from tapefs.datastore.blob import blob_kind, decode_blob_parts, inspect_blob
from tapefs.datastore.chunk_store import ChunkStore
from tapefs.datastore.crypt_config import CryptConfig, plain_digest
from tapefs.datastore.errors import CorruptFileError, CryptoError

log = logging.getLogger(__name__)


class ChunkReader:
    def __init__(self, chunk_store: ChunkStore, crypt_config: CryptConfig | None = None):
        self.chunk_store = chunk_store
        self.crypt_config = crypt_config

    def read_chunk(self, digest: bytes, expected_size: int | None = None) -> bytes:
        """Decoded chunk data; checks CRC, GCM tag, digest and (if given) the length."""
        header, payload = self.chunk_store.read_blob_parts(digest)
        source = str(self.chunk_store.chunk_path(digest))
        data = decode_blob_parts(header, payload, self.crypt_config, source)
        if blob_kind(header).encrypted:
            actual = self.crypt_config.digest(data)
        else:
            actual = plain_digest(data)
        if actual != digest:
            raise CorruptFileError(source, 0, f"chunk digest mismatch: content hashes to {actual.hex()}")
        if expected_size is not None and len(data) != expected_size:
            raise CorruptFileError(source, 0, f"chunk has {len(data)} bytes, the index expects {expected_size}")
        return data

    def check_chunk(self, digest: bytes) -> int | None:
        """What verify can prove about one chunk; returns its decoded size, or None if it is
        encrypted and no key is loaded (then only the CRC was checked)."""
        raw = self.chunk_store.read_raw(digest)
        source = str(self.chunk_store.chunk_path(digest))
        kind = inspect_blob(raw, source).kind
        if kind.encrypted and self.crypt_config is None:
            return None
        try:
            return len(self.read_chunk(digest))
        except CryptoError as exc:
            raise CorruptFileError(source, 28, str(exc)) from None
