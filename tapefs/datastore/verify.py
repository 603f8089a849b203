"""Verify a datastore: every snapshot's manifest and indexes, then every chunk
(docs/datastore-format.md, "Manifest").

It also counts the directories and files that other local users could read (a warning, not a
failure). Indexes must match the checksum and size the manifest recorded; each chunk must pass its CRC
and, unless it is encrypted and no key is loaded, decode to content with the right digest and
length. The report lists bad chunks with the snapshots that reference them; the outcome is
recorded in the datastore for ``tapefs datastore status``.

A key is only used on the chunks of snapshots that were written with it (their manifests
record its fingerprint): with any other key every encrypted chunk would fail authentication,
and ``mark_bad`` would then hide good chunks from the next restore. The chunks of a snapshot
written with another key, or of none, get the CRC check only.
"""

import hashlib
import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tapefs.datastore.blob import inspect_blob
from tapefs.datastore.chunk_reader import ChunkReader
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.datastore import Datastore, SnapshotInfo, UnfinishedSnapshot
from tapefs.datastore.errors import DatastoreError
from tapefs.datastore.manifest import Manifest
from tapefs.datastore.permissions import PermissionReport, fix_permissions
from tapefs.datastore.snapshot_reader import check_index_against_manifest, load_index
from tapefs.datastore.status import record_verify
from tapefs.tasks.worker import check_stop

log = logging.getLogger(__name__)

VERIFY_WORKERS = 2


@dataclass
class VerifyReport:
    snapshot_count: int = 0
    chunk_count: int = 0
    #: chunks that were only CRC-checked: encrypted, and no snapshot using them has the given key
    crc_only_count: int = 0
    #: snapshot -> why the given key is not its key (its chunks were only CRC-checked)
    key_mismatches: dict[str, str] = field(default_factory=dict)
    #: digest -> what is wrong with it
    bad_chunks: dict[bytes, str] = field(default_factory=dict)
    #: digest -> snapshots (as "ns:type/id/time" or "type/id/time") referencing it
    users: dict[bytes, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: snapshot -> problems with its manifest, blobs or indexes
    snapshot_errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    #: snapshot directories without manifest: still being written, or left by a killed backup.
    #: Reported, not failures: finished snapshots do not depend on them.
    unfinished: list[UnfinishedSnapshot] = field(default_factory=list)
    #: modes found in the datastore: ``open_directories``/``open_files`` other users can read
    permissions: PermissionReport = field(default_factory=PermissionReport)

    @property
    def ok(self) -> bool:
        return not self.bad_chunks and not self.snapshot_errors

    def failure(self) -> str:
        """What is wrong, in a few words (for a task's end and a notification); "" when ok."""
        if self.ok:
            return ""
        return f"{len(self.bad_chunks)} bad chunks, {len(self.affected_snapshots())} snapshots affected"

    def affected_snapshots(self) -> set[str]:
        affected = set(self.snapshot_errors)
        for digest in self.bad_chunks:
            affected |= self.users.get(digest, set())
        return affected


def snapshot_label(info: SnapshotInfo | UnfinishedSnapshot) -> str:
    namespace = str(info.snapshot.group.namespace)
    return f"{namespace}:{info.snapshot}" if namespace else str(info.snapshot)


def _check_snapshot(
    datastore: Datastore,
    info,
    report: VerifyReport,
    expected_sizes: dict[bytes, int],
    crypt_config: CryptConfig | None,
    keyed_digests: set[bytes],
) -> None:
    """Check one snapshot's files; its chunks go to ``keyed_digests`` if it was written with
    ``crypt_config``."""
    label = snapshot_label(info)
    try:
        manifest = Manifest.load(info.path)
    except (DatastoreError, OSError) as exc:
        report.snapshot_errors[label].append(str(exc))
        return
    mismatch = manifest.key_mismatch(crypt_config)
    if mismatch is not None:
        report.key_mismatches[label] = mismatch
    has_key = crypt_config is not None and manifest.key_fingerprint == crypt_config.fingerprint_text()
    if has_key:
        try:
            manifest.verify_signature(crypt_config)
        except DatastoreError as exc:
            report.snapshot_errors[label].append(str(exc))
    for file_info in manifest.files:
        path = info.path / file_info.filename
        try:
            if file_info.filename.endswith(".blob"):
                raw = path.read_bytes()
                inspect_blob(raw, str(path))
                if hashlib.sha256(raw).digest() != file_info.csum or len(raw) != file_info.size:
                    raise DatastoreError(f"{path}: checksum or size differs from the manifest")
                continue
            index = load_index(path, file_info.filename)
            check_index_against_manifest(index, file_info)
        except (DatastoreError, OSError) as exc:
            report.snapshot_errors[label].append(str(exc))
            continue
        if has_key:
            keyed_digests.update(index.digests)
        for i, digest in enumerate(index.digests):
            report.users[digest].add(label)
            start, end = index.chunk_range(i)
            expected_sizes.setdefault(digest, end - start)


def verify_datastore(
    datastore: Datastore, crypt_config: CryptConfig | None = None, mark_bad: bool = False
) -> VerifyReport:
    """Check everything; with ``mark_bad`` rename corrupt chunks to ``<digest>.<n>.bad`` as PBS
    does, so the next backup stores them again; a chunk is only ever decoded (and so only
    marked bad for a failed decryption) with a key one of its snapshots was written with."""
    report = VerifyReport(permissions=fix_permissions(datastore.root, check_only=True))
    expected_sizes: dict[bytes, int] = {}
    keyed_digests: set[bytes] = set()
    for namespace in datastore.list_namespaces():
        for group in datastore.list_groups(namespace):
            for info in datastore.list_snapshots(group):
                check_stop()  # verify only reads until it has looked at everything
                report.snapshot_count += 1
                _check_snapshot(datastore, info, report, expected_sizes, crypt_config, keyed_digests)

    report.unfinished = datastore.unfinished_snapshots()

    chunks = datastore.chunk_store.verification_view()
    keyed_reader = ChunkReader(chunks, crypt_config)
    keyless_reader = ChunkReader(chunks)
    stored = set(chunks.iter_digests())
    for digest in expected_sizes.keys() - stored:
        report.bad_chunks[digest] = "missing"

    def check(digest: bytes) -> tuple[bytes, str | None, bool]:
        chunk_reader = keyed_reader if digest in keyed_digests else keyless_reader
        try:
            size = chunk_reader.check_chunk(digest)
        except (DatastoreError, OSError) as exc:
            return digest, str(exc), False
        if size is None:
            return digest, None, True
        expected = expected_sizes.get(digest)
        if expected is not None and size != expected:
            return digest, f"chunk has {size} bytes, an index expects {expected}", False
        return digest, None, False

    with ThreadPoolExecutor(max_workers=VERIFY_WORKERS, thread_name_prefix="verify") as pool:
        for digest, problem, crc_only in pool.map(check, sorted(stored)):
            report.chunk_count += 1
            report.crc_only_count += crc_only
            if problem is not None:
                report.bad_chunks[digest] = problem
                log.info("bad chunk %s: %s", digest.hex(), problem)
    if mark_bad:
        for digest, problem in report.bad_chunks.items():
            if problem != "missing":
                try:
                    chunks.mark_bad(digest)
                except FileNotFoundError:
                    pass
    record_verify(
        datastore,
        report.ok,
        report.snapshot_count,
        report.chunk_count,
        len(report.bad_chunks),
        len(report.snapshot_errors),
    )
    return report
