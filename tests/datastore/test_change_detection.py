"""Change-detection mode ``metadata``: unchanged files reuse the previous snapshot's payload
chunks unread, changed ones are read, PBS's padding rule decides between the two for a run."""

import io
import os
import random
import shutil

import pytest

from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.chunk_uploader import ChunkUploader
from tapefs.datastore.chunker import PXAR_AVERAGE_CHUNK_SIZE
from tapefs.datastore.chunking_writer import ChunkingWriter
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.manifest import Manifest
from tapefs.datastore.naming import BackupGroup, BackupSnapshot
from tapefs.datastore.restore import restore
from tapefs.datastore.snapshot_reader import SnapshotReader
from tapefs.datastore.verify import verify_datastore
from tapefs.pxar import reuse
from tapefs.pxar.decoder import Decoder
from tapefs.pxar.encoder import encode_entries
from tapefs.pxar.source import BytesSource
from tests.helpers.commands import isolated_env, tapefs
from tests.helpers.pbs_reference import FIXTURES
from tests.helpers.trees import same_tree

GROUP = BackupGroup.parse("host/box")
MIB = 1 << 20
UPSTREAM = FIXTURES / "upstream"


@pytest.fixture
def datastore(tmp_path):
    return Datastore.create(tmp_path / "store", prefix_dirs=False)


@pytest.fixture
def tree(tmp_path):
    """Files of 1.5 MiB, small files, a symlink, a hardlink."""
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    generator = random.Random(5)
    for name in ("a.bin", "b.bin", "sub/c.bin"):
        (root / name).write_bytes(generator.randbytes(3 * MIB // 2))
    for i in range(12):
        (root / "sub" / "deeper" / f"small{i:02d}").write_bytes(generator.randbytes(generator.randrange(0, 3000)))
    (root / "sub" / "deeper" / "empty").write_bytes(b"")
    os.symlink("../a.bin", root / "sub" / "link")
    (root / "sub" / "hardlink").write_bytes(b"two names\n")  # the last payload
    os.link(root / "sub" / "hardlink", root / "zz-link")
    os.utime(root / "a.bin", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    return root


def metadata_backup(datastore, tree, crypt_config=None):
    return backup(
        datastore, GROUP, parse_sources([str(tree)]), crypt_config, sync=False, change_detection_mode="metadata"
    )


def restored(datastore, result, tmp_path, crypt_config=None):
    target = tmp_path / f"restored-{result.snapshot.backup_time}"
    restore(datastore, result.snapshot, "root.pxar", target, crypt_config)
    return target


def keep_mtime_rewrite(path, data: bytes) -> None:
    """New contents of the same size, with size and mtime as they were: metadata unchanged."""
    st = path.stat()
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_second_backup_reads_no_unchanged_file_and_restores_identical(datastore, tree, tmp_path):
    first = metadata_backup(datastore, tree)
    assert first.notes == ["root.mpxar.didx: host/box has no previous snapshot; reading every file (as mode data)"]
    assert first.change_detection == {}

    second = metadata_backup(datastore, tree)
    stats = second.change_detection["root.mpxar.didx"]
    assert second.notes == []
    # files with a second name are always read (PBS's cache does not reuse them either way here)
    assert (stats.files_reused, stats.files_read, stats.bytes_read) == (16, 1, len(b"two names\n"))
    # the start marker, the hardlinked file and the tail marker ride along in the first and last chunk
    assert stats.bytes_appended == stats.bytes_reused + 16 + 26 + 16
    assert [f.filename for f in second.manifest.files] == ["root.ppxar.didx", "root.mpxar.didx"]
    same_tree(tree, restored(datastore, second, tmp_path))
    report = verify_datastore(datastore)
    assert report.snapshot_count == 2 and not report.bad_chunks and not report.snapshot_errors

    # proof that unchanged files are not read: new contents behind unchanged metadata go unseen
    keep_mtime_rewrite(tree / "b.bin", bytes(3 * MIB // 2))
    third = metadata_backup(datastore, tree)
    assert third.change_detection["root.mpxar.didx"].bytes_read == len(b"two names\n")
    out = restored(datastore, third, tmp_path)
    assert (out / "b.bin").read_bytes() == (restored(datastore, second, tmp_path / "again") / "b.bin").read_bytes()
    assert (out / "b.bin").read_bytes() != bytes(3 * MIB // 2)


def test_changed_and_new_files_are_read(datastore, tree, tmp_path):
    metadata_backup(datastore, tree)
    (tree / "b.bin").write_bytes(random.Random(9).randbytes(MIB + 7))
    (tree / "sub" / "new").write_text("new file\n")
    os.chmod(tree / "sub" / "c.bin", 0o600)  # metadata only: read again all the same
    (tree / "a.bin").unlink()
    result = metadata_backup(datastore, tree)
    stats = result.change_detection["root.mpxar.didx"]
    assert stats.bytes_read >= (MIB + 7) + (3 * MIB // 2) + len("new file\n")
    assert stats.files_reused == 13  # the small files
    assert stats.files_read == 4  # b.bin, c.bin, the hardlinked file, new
    same_tree(tree, restored(datastore, result, tmp_path))
    report = verify_datastore(datastore)
    assert not report.bad_chunks and not report.snapshot_errors


def test_mtime_nanoseconds_alone_make_a_file_changed(datastore, tree, tmp_path):
    metadata_backup(datastore, tree)
    last = tree / "sub" / "deeper" / "small11"
    st = last.stat()
    os.utime(last, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    stats = metadata_backup(datastore, tree).change_detection["root.mpxar.didx"]
    assert (stats.files_reused, stats.bytes_read) == (15, st.st_size + len(b"two names\n"))


def test_padding_above_a_tenth_reads_the_run_instead(datastore, tmp_path):
    """Twenty small files share one payload chunk; with the middle one changed, the runs around
    it would each drag about half of the chunk along as padding: PBS reads them instead."""
    source = tmp_path / "small"
    source.mkdir()
    generator = random.Random(3)
    for i in range(20):
        (source / f"f{i:02d}").write_bytes(generator.randbytes(10000))
    metadata_backup(datastore, source)
    (source / "f10").write_bytes(b"changed")
    result = metadata_backup(datastore, source)
    stats = result.change_detection["root.mpxar.didx"]
    assert (stats.files_reused, stats.files_read, stats.chunks_appended) == (0, 20, 0)
    same_tree(source, restored(datastore, result, tmp_path))


def test_falls_back_to_data_mode_without_a_split_previous_snapshot(datastore, tree, tmp_path):
    backup(datastore, GROUP, parse_sources([str(tree)]), sync=False)  # legacy: pxar v1
    result = metadata_backup(datastore, tree)
    assert len(result.notes) == 1 and "has no split archive root.mpxar.didx; reading every file" in result.notes[0]
    assert [f.filename for f in result.manifest.files] == ["root.ppxar.didx", "root.mpxar.didx"]
    same_tree(tree, restored(datastore, result, tmp_path))


def test_encrypted_backups_reuse_only_with_the_same_crypt_mode(datastore, tree, tmp_path):
    key = CryptConfig(b"\x42" * 32)
    metadata_backup(datastore, tree, key)
    second = metadata_backup(datastore, tree, key)
    assert second.change_detection["root.mpxar.didx"].files_reused == 16
    same_tree(tree, restored(datastore, second, tmp_path, key))
    plain = metadata_backup(datastore, tree)
    assert "another crypt mode" in plain.notes[0] and plain.change_detection == {}


@pytest.mark.slow
def test_cli_metadata_mode(tmp_path, tree):
    env = isolated_env(tmp_path)
    Datastore.create(tmp_path / "store", prefix_dirs=False)
    tapefs("datastore", "add", "main", tmp_path / "store", env=env)
    first = tapefs("datastore", "backup", "main", "host/web", tree, "--change-detection-mode", "metadata", env=env)
    assert "note: root.mpxar.didx: host/web has no previous snapshot; reading every file (as mode data)" in first.stdout
    (tree / "sub" / "new").write_text("new file\n")
    second = tapefs("datastore", "backup", "main", "host/web", tree, "--change-detection-mode", "metadata", env=env)
    assert "root.mpxar.didx: 16 unchanged files reused (4.5 MiB), 2 read (19 B)" in second.stdout, second.stdout
    snapshot = second.stdout.splitlines()[0].removeprefix("snapshot ")
    tapefs("datastore", "restore", "main", snapshot, "root.pxar", tmp_path / "restored", env=env)
    same_tree(tree, tmp_path / "restored")
    assert tapefs("datastore", "verify", "main", env=env).stdout.strip().endswith(": ok")


def upstream_snapshot(datastore) -> None:
    """A snapshot as PBS wrote it: the upstream metadata archive and the upstream payload index
    as they are, the payload chunks (100 files of 1 MiB zeros) stored with their digests."""
    metadata = (UPSTREAM / "backup-client-pxar-data.mpxar").read_bytes()
    snapshot = BackupSnapshot(GROUP, 1_700_000_000)
    with datastore.writing_snapshot(snapshot) as snapshot_dir, ChunkUploader(datastore.chunk_store) as uploader:
        with ChunkingWriter(uploader, snapshot_dir / "root.mpxar.didx", PXAR_AVERAGE_CHUNK_SIZE, sync=False) as out:
            out.write(metadata)
            metadata_result = out.finish()
        scratch = snapshot_dir.parent / "scratch.didx"
        with ChunkingWriter(uploader, scratch, PXAR_AVERAGE_CHUNK_SIZE, sync=False) as payload:
            encode_entries(
                io.BytesIO(),
                Decoder(BytesSource(metadata)),
                lambda entry: bytes(entry.size),
                payload_out=payload,
                payload_boundary=payload.suggest_boundary,
            )
            payload.finish()
        scratch.unlink()
        shutil.copy(UPSTREAM / "backup-client-pxar-data.ppxar.didx", snapshot_dir / "root.ppxar.didx")
        payload_index = DynamicIndex.load(snapshot_dir / "root.ppxar.didx")
        manifest = Manifest(GROUP.backup_type, GROUP.backup_id, snapshot.backup_time)
        manifest.add_file("root.ppxar.didx", payload_index.size, payload_index.index_csum)
        manifest.add_file("root.mpxar.didx", metadata_result.size, metadata_result.index_csum)
        manifest.save(snapshot_dir)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="the upstream tree belongs to uid 1000")
def test_a_snapshot_made_by_pbs_serves_as_the_reference(datastore, tmp_path):
    upstream_snapshot(datastore)
    root = tmp_path / "upstream-tree"
    root.mkdir()
    for d in range(10):
        (root / f"folder_{d}").mkdir()
        for f in range(10):
            path = root / f"folder_{d}" / f"file_{f}"
            path.write_bytes(bytes(MIB))
            os.chmod(path, 0o777)
            os.chown(path, 1000, 1000)
            os.utime(path, ns=(0, 0))
        os.chmod(root / f"folder_{d}", 0o777)
        os.chown(root / f"folder_{d}", 1000, 1000)
        os.utime(root / f"folder_{d}", ns=(0, 0))
    os.chmod(root, 0o777)
    os.chown(root, 1000, 1000)
    os.utime(root, ns=(0, 0))

    result = metadata_backup(datastore, root)
    stats = result.change_detection["root.mpxar.didx"]
    assert (stats.files_reused, stats.files_read, stats.bytes_read) == (100, 0, 0)
    # PBS's own metadata-mode result: the same entries, and payload references from 32 on, as
    # the reused first chunk starts with the previous stream's start marker
    reader = SnapshotReader(datastore, result.snapshot)
    with reader.open_archive("root.mpxar.didx") as archive:
        ours = [(e.path, e.metadata, e.size, e.payload_ref_offset) for e in Decoder(archive)]
    expected = Decoder(BytesSource((UPSTREAM / "backup-client-pxar-expected.mpxar").read_bytes()))
    assert ours == [(e.path, e.metadata, e.size, e.payload_ref_offset) for e in expected]
    upstream = DynamicIndex.load(UPSTREAM / "backup-client-pxar-data.ppxar.didx")
    payload = reader.open_index("root.ppxar.didx")
    # our start marker, PBS's 100 chunks (its old markers inside), our tail marker
    assert payload.digests[1:-1] == upstream.digests
    assert (payload.ends[0], payload.size) == (16, 16 + upstream.size + 16)

    target = tmp_path / "restored"
    restore(datastore, result.snapshot, "root.pxar", target)
    same_tree(root, target)


def test_a_long_run_settled_early_is_still_reused(datastore, tree, monkeypatch):
    """Entries waiting for a run are written out every so often (each waiting file keeps a
    descriptor open); the part of the last chunk the run has not reached yet is no padding."""
    monkeypatch.setattr(reuse, "MAX_WAITING_ENTRIES", 4)
    metadata_backup(datastore, tree)
    stats = metadata_backup(datastore, tree).change_detection["root.mpxar.didx"]
    assert (stats.files_reused, stats.files_read) == (16, 1)
