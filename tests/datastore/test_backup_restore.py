import os
import random
import shutil
import zlib

import pytest

from tapefs.datastore.backup import CATALOG_NAME, BackupSource, backup, parse_sources
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.errors import CorruptFileError, CryptoError, DatastoreError
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.datastore.restore import restore
from tapefs.datastore.snapshot_reader import SnapshotReader
from tapefs.datastore.verify import verify_datastore
from tapefs.pxar.catalog import CatalogReader
from tapefs.pxar.errors import ExistingEntryError
from tapefs.pxar.extract import Overwrite
from tests.helpers.trees import same_tree


@pytest.fixture
def datastore(tmp_path):
    return Datastore.create(tmp_path / "store", prefix_dirs=False)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("hello\n")
    (root / "sub" / "big.bin").write_bytes(random.Random(3).randbytes(3 << 20))
    (root / "sub" / "deeper" / "empty").write_bytes(b"")
    os.symlink("../a.txt", root / "sub" / "link")
    os.link(root / "a.txt", root / "hardlink")
    os.utime(root / "a.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    os.chmod(root / "sub" / "big.bin", 0o640)
    return root


def test_directory_backup_and_restore(datastore, tree, tmp_path):
    group = BackupGroup.parse("host/box")
    result = backup(datastore, group, parse_sources([str(tree)]))
    snapshot_dir = datastore.snapshot_path(result.snapshot)
    assert sorted(os.listdir(snapshot_dir)) == ["catalog.pcat1.didx", "index.json.blob", "root.pxar.didx"]
    assert [f.filename for f in result.manifest.files] == ["root.pxar.didx", CATALOG_NAME]
    assert result.manifest.signature is None

    target = tmp_path / "restored"
    restored = restore(datastore, result.snapshot, "root.pxar", target)
    assert restored.size == result.manifest.files[0].size
    same_tree(tree, target)

    reader = SnapshotReader(datastore, result.snapshot)
    with reader.open_archive(CATALOG_NAME) as catalog_source:
        catalog = CatalogReader(catalog_source)
        names = sorted(path for path, _ in catalog.walk())
    assert b"root.pxar.didx/sub/big.bin" in names
    assert verify_datastore(datastore).ok


def test_image_backup_and_sparse_restore(datastore, tmp_path):
    image = tmp_path / "disk.raw"
    content = random.Random(5).randbytes(1 << 20) + bytes(9 << 20) + b"tail"
    image.write_bytes(content)
    result = backup(datastore, BackupGroup.parse("vm/100"), parse_sources([str(image)]))
    assert [f.filename for f in result.manifest.files] == ["disk.img.fidx"]
    assert result.manifest.files[0].size == len(content)
    target = tmp_path / "out.raw"
    restore(datastore, result.snapshot, "disk.img.fidx", target)
    assert target.read_bytes() == content
    assert target.stat().st_blocks * 512 < len(content)  # the all-zero chunk stayed a hole
    with pytest.raises(DatastoreError, match="already exists"):
        restore(datastore, result.snapshot, "disk.img", target)
    target.write_bytes(b"IMPORTANT-DATA")
    with pytest.raises(DatastoreError, match="already exists"):
        restore(datastore, result.snapshot, "disk.img", target, overwrite=Overwrite.SYMLINKS)
    assert target.read_bytes() == b"IMPORTANT-DATA"
    restore(datastore, result.snapshot, "disk.img", target, overwrite=Overwrite.FILES)
    assert target.read_bytes() == content


def test_namespace_and_encryption(datastore, tree, tmp_path):
    key = CryptConfig(b"\x42" * 32)
    group = BackupGroup(BackupNamespace.parse("site/a"), "host", "box")
    result = backup(datastore, group, parse_sources([str(tree)]), crypt_config=key)
    assert (datastore.root / "ns" / "site" / "ns" / "a" / "host" / "box").is_dir()
    assert {f.crypt_mode for f in result.manifest.files} == {"encrypt"}
    assert result.manifest.unprotected["key-fingerprint"] == key.fingerprint_text()
    with pytest.raises(CryptoError, match="key is needed"):
        restore(datastore, result.snapshot, "root.pxar", tmp_path / "x")
    with pytest.raises(CryptoError):
        restore(datastore, result.snapshot, "root.pxar", tmp_path / "x", CryptConfig(b"\x43" * 32))
    restore(datastore, result.snapshot, "root.pxar", tmp_path / "ok", key)
    same_tree(tree, tmp_path / "ok")
    report = verify_datastore(datastore)
    assert report.ok and report.crc_only_count == report.chunk_count
    assert verify_datastore(datastore, key).crc_only_count == 0


def test_consecutive_backups_get_later_times_and_dedup(datastore, tree):
    group = BackupGroup.parse("host/box")
    first = backup(datastore, group, parse_sources([str(tree)]))
    second = backup(datastore, group, parse_sources([str(tree)]))
    assert second.snapshot.backup_time > first.snapshot.backup_time
    assert second.stats.stored_size == 0
    assert [str(s.snapshot) for s in datastore.list_snapshots(group)] == [str(first.snapshot), str(second.snapshot)]


def test_failed_backup_leaves_no_snapshot(datastore, tmp_path):
    sources = [BackupSource("root", "pxar", tmp_path / "missing")]
    with pytest.raises(OSError):
        backup(datastore, BackupGroup.parse("host/x"), sources)
    # the group (with its owner file) may stay, as in PBS; the snapshot must not
    assert os.listdir(datastore.root / "host" / "x") == ["owner"]
    assert datastore.list_snapshots(BackupGroup.parse("host/x"), include_unfinished=True) == []


def test_source_naming(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "disk.qcow.raw").write_bytes(b"x")
    sources = parse_sources([str(tmp_path / "d"), str(tmp_path / "disk.qcow.raw"), f"etc.pxar:{tmp_path / 'd'}"])
    assert [s.filename for s in sources] == ["root.pxar.didx", "disk_qcow.img.fidx", "etc.pxar.didx"]
    with pytest.raises(DatastoreError, match="both be named"):
        parse_sources([str(tmp_path / "d"), str(tmp_path / "d")])
    with pytest.raises(DatastoreError, match="No such file"):
        parse_sources([str(tmp_path / "nope")])


def test_verify_reports_bad_chunk_and_its_snapshots(datastore, tree):
    group = BackupGroup.parse("host/box")
    result = backup(datastore, group, parse_sources([str(tree)]))
    index = DynamicIndex.load(datastore.snapshot_path(result.snapshot) / "root.pxar.didx")
    bad_digest = index.digests[0]
    chunk_path = datastore.chunk_store.chunk_path(bad_digest)
    raw = bytearray(chunk_path.read_bytes())
    raw[20] ^= 0x55
    chunk_path.write_bytes(bytes(raw))
    report = verify_datastore(datastore)
    assert list(report.bad_chunks) == [bad_digest]
    assert "CRC" in report.bad_chunks[bad_digest]
    assert report.affected_snapshots() == {str(result.snapshot)}
    verify_datastore(datastore, mark_bad=True)
    assert not chunk_path.exists() and chunk_path.with_name(chunk_path.name + ".0.bad").exists()
    assert verify_datastore(datastore).bad_chunks == {bad_digest: "missing"}


def test_restore_detects_swapped_index(datastore, tree, tmp_path):
    result = backup(datastore, BackupGroup.parse("host/box"), parse_sources([str(tree)]))
    snapshot_dir = datastore.snapshot_path(result.snapshot)
    os.replace(snapshot_dir / "catalog.pcat1.didx", snapshot_dir / "root.pxar.didx")
    with pytest.raises(CorruptFileError, match="differs from the manifest"):
        restore(datastore, result.snapshot, "root.pxar", tmp_path / "out")


@pytest.mark.slow
def test_python_stdlib_round_trip(datastore, tmp_path):
    # the standard library without site-packages (third-party code, most of the bytes)
    stdlib = os.path.dirname(os.__file__)
    source = tmp_path / "stdlib"
    shutil.copytree(stdlib, source, symlinks=True, ignore=shutil.ignore_patterns("site-packages"))
    result = backup(datastore, BackupGroup.parse("host/stdlib"), parse_sources([str(source)]))
    restore(datastore, result.snapshot, "root.pxar", tmp_path / "restored")
    same_tree(source, tmp_path / "restored")


def test_backup_removes_its_groups_abandoned_snapshots_only(tmp_path):
    datastore = Datastore.create(tmp_path / "store", prefix_dirs=False)
    image = tmp_path / "disk.raw"
    image.write_bytes(b"x" * 10000)
    group = BackupGroup.parse("host/x")
    abandoned = BackupSnapshot(group, 1_600_000_000)
    running = BackupSnapshot(group, 1_600_000_100)
    other_group = BackupSnapshot(BackupGroup.parse("host/y"), 1_600_000_000)
    for snapshot in (abandoned, other_group):
        datastore.create_snapshot_dir(snapshot)
        (datastore.snapshot_path(snapshot) / "disk.img.tmp_fidx").write_bytes(b"\0" * 4096)
    with datastore.writing_snapshot(running):
        result = backup(datastore, group, parse_sources([str(image)]), sync=False)
        assert result.removed_leftovers == [abandoned]
        assert datastore.snapshot_path(running).is_dir()
    assert not datastore.snapshot_path(abandoned).exists()
    assert datastore.snapshot_path(other_group).is_dir()
    assert [str(s.snapshot) for s in datastore.list_snapshots(group)] == [str(result.snapshot)]


@pytest.mark.parametrize("mode", ["legacy", "data"])
def test_restore_into_existing_directory_keeps_existing_data(datastore, tree, tmp_path, mode):
    result = backup(datastore, BackupGroup.parse("host/box"), parse_sources([str(tree)]),
                    change_detection_mode=mode)
    target = tmp_path / "target"
    (target / "sub").mkdir(parents=True)
    (target / "sub" / "big.bin").write_bytes(b"IMPORTANT-DATA")
    with pytest.raises(ExistingEntryError) as error:
        restore(datastore, result.snapshot, "root.pxar", target)
    assert error.value.path == f"{target}/sub/big.bin" and error.value.needed is Overwrite.FILES
    assert os.listdir(target) == ["sub"] and os.listdir(target / "sub") == ["big.bin"]
    assert (target / "sub" / "big.bin").read_bytes() == b"IMPORTANT-DATA"
    restore(datastore, result.snapshot, "root.pxar", target, overwrite=Overwrite.FILES)
    assert (target / "sub" / "big.bin").read_bytes() == (tree / "sub" / "big.bin").read_bytes()
    # sub existed before: merged into, its mode and times left as they were
    restore(datastore, result.snapshot, "root.pxar", target, overwrite=Overwrite.ALL)
    same_tree(tree, target)


def _flip_ciphertext_keep_crc(path):
    """Damage an encrypted chunk so that only decryption can tell: the CRC still matches."""
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    raw[8:12] = zlib.crc32(bytes(raw[44:])).to_bytes(4, "little")
    path.write_bytes(bytes(raw))


def test_verify_uses_a_key_only_on_snapshots_written_with_it(datastore, tree, tmp_path):
    key_a, key_b = CryptConfig(b"\x42" * 32), CryptConfig(b"\x43" * 32)
    first = backup(datastore, BackupGroup.parse("host/a"), parse_sources([str(tree)]), crypt_config=key_a)
    second = backup(datastore, BackupGroup.parse("host/b"), parse_sources([str(tree)]), crypt_config=key_b)
    chunks_of = lambda result: set(DynamicIndex.load(datastore.snapshot_path(result.snapshot) / "root.pxar.didx").digests)
    report = verify_datastore(datastore, key_a, mark_bad=True)
    assert report.ok, report.bad_chunks
    assert report.key_mismatches == {str(second.snapshot): f"manifest was written with key {key_b.fingerprint_text()}, "
                                                           f"not {key_a.fingerprint_text()}"}
    assert report.crc_only_count >= len(chunks_of(second))
    # nothing was renamed: both snapshots still restore
    restore(datastore, first.snapshot, "root.pxar", tmp_path / "a", key_a)
    restore(datastore, second.snapshot, "root.pxar", tmp_path / "b", key_b)
    same_tree(tree, tmp_path / "b")

    # with its own key a snapshot's chunks are still decrypted: damage only GCM can see is found
    damaged = sorted(chunks_of(first))[0]
    _flip_ciphertext_keep_crc(datastore.chunk_store.chunk_path(damaged))
    assert list(verify_datastore(datastore, key_b).bad_chunks) == []
    report = verify_datastore(datastore, key_a, mark_bad=True)
    assert list(report.bad_chunks) == [damaged] and "authentication failed" in report.bad_chunks[damaged]
    assert not datastore.chunk_store.chunk_path(damaged).exists()
