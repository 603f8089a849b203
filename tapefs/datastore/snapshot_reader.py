"""Open the archives of one finished snapshot, checked against its manifest."""

import logging

from tapefs.datastore.archive_reader import ArchiveReader
from tapefs.datastore.chunk_reader import ChunkReader
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.errors import CorruptFileError, CryptoError, DatastoreError
from tapefs.datastore.fixed_index import FixedIndex
from tapefs.datastore.manifest import FileInfo, Manifest
from tapefs.datastore.naming import BackupSnapshot, check_archive_name

log = logging.getLogger(__name__)

INDEX_EXTENSIONS = {"pxar": "didx", "mpxar": "didx", "ppxar": "didx", "pcat1": "didx", "img": "fidx"}


def server_archive_name(name: str) -> str:
    """``root.pxar`` -> ``root.pxar.didx``, ``disk.img`` -> ``disk.img.fidx``; full names pass."""
    if name.endswith((".didx", ".fidx", ".blob")):
        return check_archive_name(name)
    kind = name.rsplit(".", 1)[-1]
    if kind not in INDEX_EXTENSIONS:
        raise DatastoreError(f"archive {name!r}: unknown kind (expected .pxar, .img or a file name ending .didx/.fidx)")
    return check_archive_name(f"{name}.{INDEX_EXTENSIONS[kind]}")


def load_index(path, filename: str) -> DynamicIndex | FixedIndex:
    if filename.endswith(".didx"):
        return DynamicIndex.load(path)
    if filename.endswith(".fidx"):
        return FixedIndex.load(path)
    raise DatastoreError(f"{filename} is not an index")


def check_index_against_manifest(index: DynamicIndex | FixedIndex, info: FileInfo) -> None:
    """An index must be the one the manifest recorded (docs/datastore-format.md, "Manifest")."""
    if index.index_csum != info.csum:
        raise CorruptFileError(
            index.path, 32, f"index checksum {index.index_csum.hex()} differs from the manifest's {info.csum.hex()}"
        )
    if index.size != info.size:
        raise CorruptFileError(index.path, 0, f"archive size {index.size} differs from the manifest's {info.size}")


class SnapshotReader:
    def __init__(self, datastore: Datastore, snapshot: BackupSnapshot, crypt_config: CryptConfig | None = None):
        self.datastore = datastore
        self.snapshot = snapshot
        self.crypt_config = crypt_config
        self.path = datastore.snapshot_path(snapshot)
        self.manifest: Manifest = datastore.load_manifest(snapshot)
        self.manifest.verify_signature(crypt_config)

    def file_info(self, archive_name: str) -> FileInfo:
        filename = server_archive_name(archive_name)
        info = self.manifest.lookup(filename)
        if info is None:
            available = ", ".join(f.filename for f in self.manifest.files) or "none"
            raise DatastoreError(f"snapshot {self.snapshot} has no archive {filename} (archives: {available})")
        return info

    def open_index(self, archive_name: str) -> DynamicIndex | FixedIndex:
        info = self.file_info(archive_name)
        if info.crypt_mode == "encrypt" and self.crypt_config is None:
            raise CryptoError(f"{info.filename} in {self.snapshot} is encrypted; a key is needed")
        index = load_index(self.path / info.filename, info.filename)
        check_index_against_manifest(index, info)
        return index

    def open_archive(self, archive_name: str, **reader_options) -> ArchiveReader:
        """A random-access reader (``size``, ``read_at``) over one index of this snapshot."""
        index = self.open_index(archive_name)
        return ArchiveReader(index, ChunkReader(self.datastore.chunk_store, self.crypt_config), **reader_options)
