"""DataBlob: the container of every chunk and of the ``*.blob`` files of a snapshot
(docs/datastore-format.md, "DataBlob").

Layout: magic (8) | CRC-32 of everything after the header (4) | [IV (16) | GCM tag (16)] | payload.
The payload is the data, or one zstd frame of it (compression is kept only if it shrinks the
data), and for encrypted blobs the AES-256-GCM ciphertext of that.
"""

import enum
import hashlib
import logging
import os
import threading
import zlib
from dataclasses import dataclass

import construct
import zstandard

from tapefs.datastore.crypt_config import IV_SIZE, TAG_SIZE, CryptConfig
from tapefs.datastore.errors import CorruptFileError, CryptoError

log = logging.getLogger(__name__)


def _magic(text: str) -> bytes:
    return hashlib.sha256(text.encode("ascii")).digest()[:8]


class BlobKind(enum.Enum):
    UNCOMPRESSED = _magic("Proxmox Backup uncompressed blob v1.0")
    COMPRESSED = _magic("Proxmox Backup zstd compressed blob v1.0")
    ENCRYPTED = _magic("Proxmox Backup encrypted blob v1.0")
    ENCRYPTED_COMPRESSED = _magic("Proxmox Backup zstd compressed encrypted blob v1.0")

    @property
    def encrypted(self) -> bool:
        return self in (BlobKind.ENCRYPTED, BlobKind.ENCRYPTED_COMPRESSED)

    @property
    def compressed(self) -> bool:
        return self in (BlobKind.COMPRESSED, BlobKind.ENCRYPTED_COMPRESSED)

    @property
    def header_size(self) -> int:
        return ENCRYPTED_HEADER.sizeof() if self.encrypted else PLAIN_HEADER.sizeof()


_KIND_BY_MAGIC = {kind.value: kind for kind in BlobKind}

PLAIN_HEADER = construct.Struct("magic" / construct.Bytes(8), "crc" / construct.Int32ul).compile()
ENCRYPTED_HEADER = construct.Struct(
    "magic" / construct.Bytes(8),
    "crc" / construct.Int32ul,
    "iv" / construct.Bytes(IV_SIZE),
    "tag" / construct.Bytes(TAG_SIZE),
).compile()

#: DataBlob::encode refuses more than this; chunks are far smaller (16 MiB at most)
MAX_BLOB_DATA_SIZE = 128 << 20

ZSTD_LEVEL = 1

_codecs = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    # zstandard objects must not be shared between threads that use them at the same time
    compressor = getattr(_codecs, "compressor", None)
    if compressor is None:
        compressor = _codecs.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    decompressor = getattr(_codecs, "decompressor", None)
    if decompressor is None:
        decompressor = _codecs.decompressor = zstandard.ZstdDecompressor()
    return decompressor


@dataclass(frozen=True)
class BlobInfo:
    kind: BlobKind
    crc: int
    header_size: int


def encode_blob(
    data: bytes, crypt_config: CryptConfig | None = None, compress: bool = True, iv: bytes | None = None
) -> bytes:
    """Encode ``data``; ``iv`` is only for reproducing reference vectors (default: random)."""
    if len(data) > MAX_BLOB_DATA_SIZE:
        raise ValueError(f"blob data too large ({len(data)} bytes, limit {MAX_BLOB_DATA_SIZE})")
    payload = data
    compressed = False
    if compress and data:
        candidate = _compressor().compress(data)
        if len(candidate) < len(data):
            payload, compressed = candidate, True
    if crypt_config is None:
        kind = BlobKind.COMPRESSED if compressed else BlobKind.UNCOMPRESSED
        return PLAIN_HEADER.build({"magic": kind.value, "crc": zlib.crc32(payload)}) + payload
    kind = BlobKind.ENCRYPTED_COMPRESSED if compressed else BlobKind.ENCRYPTED
    iv = os.urandom(IV_SIZE) if iv is None else iv
    ciphertext, tag = crypt_config.encrypt(iv, payload)
    header = ENCRYPTED_HEADER.build({"magic": kind.value, "crc": zlib.crc32(ciphertext), "iv": iv, "tag": tag})
    return header + ciphertext


def blob_kind(raw: bytes) -> BlobKind | None:
    """The kind named by the magic, without any check of the rest."""
    return _KIND_BY_MAGIC.get(bytes(raw[:8]))


def _split(raw: bytes, source: str) -> tuple[BlobKind, bytes, memoryview]:
    """Magic and length checks; returns the kind, the header and a view of the payload."""
    if len(raw) < PLAIN_HEADER.sizeof():
        raise CorruptFileError(source, len(raw), f"truncated blob: {len(raw)} bytes, header needs 12")
    kind = _KIND_BY_MAGIC.get(bytes(raw[:8]))
    if kind is None:
        raise CorruptFileError(source, 0, f"unknown blob magic {bytes(raw[:8]).hex()}")
    if len(raw) < kind.header_size:
        raise CorruptFileError(
            source, len(raw), f"truncated encrypted blob: {len(raw)} bytes, header needs {kind.header_size}"
        )
    return kind, bytes(raw[: kind.header_size]), memoryview(raw)[kind.header_size :]


def _check_crc(kind: BlobKind, header: bytes, payload, source: str) -> BlobInfo:
    stored_crc = PLAIN_HEADER.parse(header[:12]).crc
    actual_crc = zlib.crc32(payload)
    if stored_crc != actual_crc:
        if kind is BlobKind.COMPRESSED and _zstd_frame_cut_short(payload):
            raise CorruptFileError(
                source,
                len(header) + len(payload),
                "truncated blob: the compressed data ends before its zstd frame does",
            )
        raise CorruptFileError(source, 8, f"blob CRC mismatch: stored {stored_crc:08x}, computed {actual_crc:08x}")
    return BlobInfo(kind, stored_crc, kind.header_size)


def _zstd_frame_cut_short(payload) -> bool:
    """True if the payload is the start of a valid zstd frame that ends early: a truncated
    file rather than changed bytes (only asked once the CRC failed)."""
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    try:
        decompressor.decompress(bytes(payload))
    except zstandard.ZstdError:
        return False
    return not decompressor.eof


def inspect_blob(raw: bytes, source: str = "<blob>") -> BlobInfo:
    """Check magic, length and CRC without decrypting or decompressing."""
    kind, header, payload = _split(raw, source)
    return _check_crc(kind, header, payload, source)


def chunk_digest_matches(raw: bytes, digest: bytes, source: str = "<blob>") -> bool:
    """Check a chunk's blob (magic, length, CRC: CorruptFileError if bad) and whether its data
    hashes to `digest`; an encrypted chunk's digest is keyed, so only its CRC is checked. Each
    byte is read once for the CRC and once for the SHA-256, and never copied: at tape speed a
    second CRC pass and a 4 MiB copy per chunk cost as much as the drive's share."""
    kind, header, payload = _split(raw, source)
    _check_crc(kind, header, payload, source)
    if kind.encrypted:
        return True
    data = _decompress(payload, source, kind.header_size) if kind.compressed else payload
    return hashlib.sha256(data).digest() == digest


def decode_blob(raw: bytes, crypt_config: CryptConfig | None = None, source: str = "<blob>") -> bytes:
    """Return the data of a blob, checking its CRC (and GCM tag when encrypted)."""
    kind, header, payload = _split(raw, source)
    return _decode(kind, header, payload, crypt_config, source)


def decode_blob_parts(
    header: bytes,
    payload: bytes,
    crypt_config: CryptConfig | None = None,
    source: str = "<blob>",
    check_crc: bool = True,
) -> bytes:
    """``decode_blob`` for a blob read as header and payload separately: an uncompressed
    payload is returned as is, without copying it out of a larger buffer. A caller that checks
    the plain data against its digest next may skip the CRC (`check_crc=False`): the digest
    covers every byte the CRC does, and zstd checks its own frames."""
    if len(header) < PLAIN_HEADER.sizeof() or blob_kind(header) is None or len(header) != blob_kind(header).header_size:
        # let the whole-blob checks name the problem and its offset
        return decode_blob(header + payload, crypt_config, source)
    return _decode(blob_kind(header), header, payload, crypt_config, source, check_crc)


def _decode(
    kind: BlobKind, header: bytes, payload, crypt_config: CryptConfig | None, source: str, check_crc: bool = True
) -> bytes:
    if check_crc or kind.encrypted:
        _check_crc(kind, header, payload, source)
    if kind.encrypted:
        if crypt_config is None:
            raise CryptoError(f"{source}: blob is encrypted, no key given")
        fields = ENCRYPTED_HEADER.parse(header)
        try:
            payload = crypt_config.decrypt(fields.iv, fields.tag, bytes(payload))
        except CryptoError as exc:
            raise CryptoError(f"{source}: {exc}") from None
    if not kind.compressed:
        return payload if type(payload) is bytes else bytes(payload)
    return _decompress(payload, source, kind.header_size)


def _decompress(payload, source: str, offset: int) -> bytes:
    try:
        # PBS <= 3.x streams frames without a content size, and several frames are allowed
        return _decompressor().decompressobj(read_across_frames=True).decompress(payload)
    except zstandard.ZstdError as exc:
        raise CorruptFileError(source, offset, f"zstd decompression failed: {exc}") from None
