"""Split pxar archives (PBS change-detection mode ``data``): the payload chunker's suggested
boundaries (docs/datastore-format.md), the upstream payload index reproduced, backup and restore of a tree."""

import io
import os
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.chunk_store import ChunkStore
from tapefs.datastore.chunk_uploader import ChunkUploader
from tapefs.datastore.chunker import PXAR_AVERAGE_CHUNK_SIZE, Chunker
from tapefs.datastore.chunking_writer import SCAN_BATCH_SIZE, ChunkingWriter
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.errors import CryptoError, DatastoreError
from tapefs.datastore.naming import BackupGroup
from tapefs.datastore.restore import restore
from tapefs.datastore.snapshot_reader import SnapshotReader
from tapefs.pxar.decoder import Decoder
from tapefs.pxar.encoder import encode_entries
from tapefs.pxar.entry import Kind
from tapefs.pxar.source import BytesSource
from tests.helpers.commands import isolated_env, tapefs
from tests.helpers.pbs_reference import FIXTURES
from tests.helpers.trees import same_tree

AVERAGE = 64 << 10
MINIMUM = AVERAGE // 4
UPSTREAM = FIXTURES / "upstream"


@pytest.fixture(scope="module")
def stream() -> bytes:
    return random.Random(11).randbytes(2 << 20)


def natural_cuts(data: bytes, start: int = 0) -> list[int]:
    """Cut points of a fresh chunker started at ``start`` (absolute offsets, end included)."""
    cuts = [start + cut for cut in Chunker(AVERAGE).scan(data[start:])]
    return cuts if cuts and cuts[-1] == len(data) else cuts + [len(data)]


def chunk_ends(tmp_path, data: bytes, suggestions: list[int], piece: int = 70001, suggest_early: bool = True) -> list[int]:
    """Write ``data`` through a ChunkingWriter with suggestions, either all before the first byte
    or each just before the writes reach it; the index's chunk ends."""
    directory = Path(tempfile.mkdtemp(dir=tmp_path))
    path = directory / "root.ppxar.didx"
    with ChunkUploader(ChunkStore.create(directory / "store", prefix_dirs=False)) as uploader:
        with ChunkingWriter(uploader, path, AVERAGE, sync=False) as writer:
            pending = list(suggestions)
            if suggest_early:
                for offset in pending:
                    writer.suggest_boundary(offset)
                pending = []
            for offset in range(0, len(data), piece):
                while pending and pending[0] < offset + piece:
                    writer.suggest_boundary(pending.pop(0))
                writer.write(data[offset : offset + piece])
            writer.finish()
    return DynamicIndex.load(path).ends


def expected_ends(data: bytes, suggestions: list[int]) -> list[int]:
    """The rule written out directly: from chunk start s, the chunk ends at the first suggestion
    in [s + min, natural cut of a fresh chunker from s], else at that natural cut."""
    ends, start = [], 0
    while start < len(data):
        natural = natural_cuts(data, start)[0]
        end = next((b for b in suggestions if start + MINIMUM <= b <= natural), natural)
        ends.append(end)
        start = end
    return ends


def test_cut_exactly_at_a_suggestion_and_hash_restarts_there(tmp_path, stream):
    first_cut = natural_cuts(stream)[0]
    boundary = first_cut - 1000
    assert boundary >= MINIMUM
    ends = chunk_ends(tmp_path, stream, [boundary])
    # after the suggested cut the chunker behaves like a fresh one started at the boundary
    assert ends == [boundary] + natural_cuts(stream, boundary)
    assert ends != natural_cuts(stream)


def test_suggestion_closer_than_minimum_to_the_chunk_start_is_dropped(tmp_path, stream):
    first_cut = natural_cuts(stream)[0]
    too_close = [16, MINIMUM - 1, first_cut + MINIMUM - 1]
    assert chunk_ends(tmp_path, stream, too_close) == natural_cuts(stream)


def test_hash_cuts_before_a_suggestion_still_happen(tmp_path, stream):
    natural = natural_cuts(stream)
    # a suggestion past the first two natural cuts, far enough from the second
    boundary = natural[1] + MINIMUM + 100
    assert boundary < natural[2]
    ends = chunk_ends(tmp_path, stream, [boundary])
    assert ends == natural[:2] + [boundary] + natural_cuts(stream, boundary)


def test_suggestions_at_a_hash_cut_and_beyond_the_end_change_nothing(tmp_path, stream):
    natural = natural_cuts(stream)
    assert chunk_ends(tmp_path, stream, [natural[0], len(stream), len(stream) + 5]) == natural


def test_suggestions_every_few_bytes_cut_at_the_first_one_past_minimum(tmp_path, stream):
    data = stream[: 1 << 20]
    suggestions = list(range(0, len(data), 5000))
    ends = chunk_ends(tmp_path, data, suggestions)
    assert ends == expected_ends(data, suggestions)
    # every chunk ends at the first suggestion past the minimum or at a hash cut before it
    assert all(end - start < MINIMUM + 5000 for start, end in zip([0] + ends, ends))


@pytest.mark.parametrize("piece", [1000, SCAN_BATCH_SIZE - 1, 3 << 20])
@pytest.mark.parametrize("suggest_early", [True, False])
def test_cuts_do_not_depend_on_write_sizes_or_when_suggestions_arrive(tmp_path, stream, piece, suggest_early):
    suggestions = [100, 40000, 300000, 310000, 1 << 20, (1 << 20) + 70000, 1900000]
    assert chunk_ends(tmp_path, stream, suggestions, piece, suggest_early) == expected_ends(stream, suggestions)


@given(suggestions=st.lists(st.integers(min_value=0, max_value=(1 << 20) + 10), max_size=40),
       piece=st.integers(min_value=1 << 10, max_value=1 << 20))
@settings(max_examples=25, deadline=None)
def test_any_suggestions_follow_the_rule(tmp_path_factory, stream, suggestions, piece):
    data = stream[: 1 << 20]
    suggestions = sorted(suggestions)
    ends = chunk_ends(tmp_path_factory.mktemp("s"), data, suggestions, piece, suggest_early=False)
    assert ends == expected_ends(data, suggestions)


def test_suggestion_the_scan_already_passed_is_ignored(tmp_path, stream):
    """As upstream: a boundary suggested after the chunker scanned past it cannot be cut any more."""
    path = tmp_path / "late.ppxar.didx"
    with ChunkUploader(ChunkStore.create(tmp_path / "store", prefix_dirs=False)) as uploader:
        with ChunkingWriter(uploader, path, AVERAGE, sync=False) as writer:
            writer.write(stream[:SCAN_BATCH_SIZE])  # a full batch: scanned at once
            writer.suggest_boundary(SCAN_BATCH_SIZE - MINIMUM // 2)
            writer.write(stream[SCAN_BATCH_SIZE:])
            writer.finish()
    assert DynamicIndex.load(path).ends == natural_cuts(stream)


def test_decreasing_suggestion_is_refused(tmp_path):
    with ChunkUploader(ChunkStore.create(tmp_path / "store", prefix_dirs=False)) as uploader:
        with ChunkingWriter(uploader, tmp_path / "x.ppxar.didx", AVERAGE, sync=False) as writer:
            writer.suggest_boundary(5000)
            with pytest.raises(ValueError, match="before the previous one"):
                writer.suggest_boundary(4999)
            writer.finish()


def test_upstream_payload_index_reproduced(tmp_path):
    """The upstream fixture's tree (100 files of 1 MiB zeros) re-encoded as PBS does: the payload
    index equals the upstream one in every byte except its uuid and creation time."""
    metadata = (UPSTREAM / "backup-client-pxar-data.mpxar").read_bytes()
    fixture = UPSTREAM / "backup-client-pxar-data.ppxar.didx"
    path = tmp_path / "root.ppxar.didx"
    out = io.BytesIO()
    with ChunkUploader(ChunkStore.create(tmp_path / "store", prefix_dirs=False)) as uploader:
        with ChunkingWriter(uploader, path, PXAR_AVERAGE_CHUNK_SIZE, sync=False) as payload:
            encode_entries(out, Decoder(BytesSource(metadata)), lambda entry: bytes(entry.size),
                           payload_out=payload, payload_boundary=payload.suggest_boundary)
            result = payload.finish()
    assert out.getvalue() == metadata
    expected = DynamicIndex.load(fixture)
    written = DynamicIndex.load(path)
    assert written.ends == expected.ends
    assert written.digests == expected.digests
    assert result.index_csum == expected.index_csum
    written_bytes, fixture_bytes = path.read_bytes(), fixture.read_bytes()
    # 8 bytes magic, then uuid and ctime (random and the time of writing), then all the rest
    assert written_bytes[:8] == fixture_bytes[:8] and written_bytes[32:] == fixture_bytes[32:]


@pytest.fixture
def datastore(tmp_path):
    return Datastore.create(tmp_path / "store", prefix_dirs=False)


LARGE_FILES = {"a-big.bin": 3 << 20, "b-bigger.bin": 6 << 20, "sub/c-big.bin": (2 << 20) + 12345, "sub/d-big.bin": 4 << 20}


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    generator = random.Random(21)
    for name, size in LARGE_FILES.items():
        (root / name).write_bytes(generator.randbytes(size))
    for i in range(30):
        (root / "sub" / "deeper" / f"small{i:02d}.txt").write_bytes(generator.randbytes(generator.randrange(0, 5000)))
    (root / "b-small.txt").write_text("between the big ones\n")
    (root / "sub" / "deeper" / "empty").write_bytes(b"")
    os.symlink("../a-big.bin", root / "sub" / "link")
    os.link(root / "b-small.txt", root / "hardlink")
    os.chmod(root / "b-bigger.bin", 0o600)
    os.utime(root / "b-small.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    return root


def file_ranges(datastore, snapshot) -> tuple[DynamicIndex, dict[str, tuple[int, int]]]:
    """The index holding file contents and, by path, each regular file's [header, content end)."""
    reader = SnapshotReader(datastore, snapshot)
    split = reader.manifest.lookup("root.mpxar.didx") is not None
    with reader.open_archive("root.mpxar.didx" if split else "root.pxar.didx") as archive:
        header_size = 16
        ranges = {entry.path.decode(): (entry.content_offset - header_size, entry.content_offset + entry.size)
                  for entry in Decoder(archive) if entry.kind is Kind.FILE}
        index = reader.open_index("root.ppxar.didx") if split else archive.index
    return index, ranges


def chunk_bytes_to_read(index: DynamicIndex, start: int, end: int) -> int:
    """Bytes of all chunks that cover [start, end): what a reader must load for that range."""
    first, last = index.find_chunk(start), index.find_chunk(end - 1)
    return index.chunk_range(last)[1] - index.chunk_range(first)[0]


@pytest.mark.slow
def test_split_backup_restores_identical_with_file_aligned_payload_chunks(datastore, tree, tmp_path):
    group = BackupGroup.parse("host/box")
    result = backup(datastore, group, parse_sources([str(tree)]), change_detection_mode="data", sync=False)
    snapshot_dir = datastore.snapshot_path(result.snapshot)
    assert sorted(os.listdir(snapshot_dir)) == ["index.json.blob", "root.mpxar.didx", "root.ppxar.didx"]
    # PBS's order; and no catalog: browsing uses the metadata archive itself
    assert [f.filename for f in result.manifest.files] == ["root.ppxar.didx", "root.mpxar.didx"]

    target = tmp_path / "restored"
    restored = restore(datastore, result.snapshot, "root.pxar", target)
    assert restored.size == sum(f.size for f in result.manifest.files)
    same_tree(tree, target)

    payload, ranges = file_ranges(datastore, result.snapshot)
    chunk_starts = [0] + payload.ends[:-1]
    aligned = 0
    for name in LARGE_FILES:
        header = ranges[name][0]
        if header in payload.ends:
            aligned += 1
        else:
            # a suggestion closer than the minimum chunk size to the chunk start is dropped
            start = chunk_starts[payload.find_chunk(header)]
            assert header - start < PXAR_AVERAGE_CHUNK_SIZE // 4, name
    assert aligned >= 2

    # what the mount gains: reading a large file loads little more than the file from the store
    legacy = backup(datastore, group, parse_sources([str(tree)]), sync=False)
    total = sum(LARGE_FILES.values())
    loaded = {}
    for snapshot in (result.snapshot, legacy.snapshot):
        index, ranges = file_ranges(datastore, snapshot)
        loaded[snapshot] = sum(chunk_bytes_to_read(index, *ranges[name]) for name in LARGE_FILES) / total
    assert loaded[result.snapshot] < 1.2 < loaded[legacy.snapshot]


@pytest.mark.slow
def test_legacy_backup_of_same_tree_is_v1_with_catalog(datastore, tree):
    result = backup(datastore, BackupGroup.parse("host/box"), parse_sources([str(tree)]))
    assert [f.filename for f in result.manifest.files] == ["root.pxar.didx", "catalog.pcat1.didx"]


def test_unknown_change_detection_mode_is_refused(datastore, tree):
    with pytest.raises(DatastoreError, match="unknown change detection mode 'fast'"):
        backup(datastore, BackupGroup.parse("host/box"), parse_sources([str(tree)]), change_detection_mode="fast")
    assert datastore.list_snapshots(BackupGroup.parse("host/box")) == []


def test_restore_names_a_split_archive_by_any_of_its_names(datastore, tmp_path):
    source = tmp_path / "small"
    source.mkdir()
    (source / "f").write_bytes(b"x" * 100)
    result = backup(datastore, BackupGroup.parse("host/box"), parse_sources([f"etc.pxar:{source}"]), change_detection_mode="data")
    for i, name in enumerate(["etc.pxar", "etc.pxar.didx", "etc.mpxar", "etc.ppxar.didx"]):
        restore(datastore, result.snapshot, name, tmp_path / f"out{i}")
        assert (tmp_path / f"out{i}" / "f").read_bytes() == b"x" * 100
    with pytest.raises(DatastoreError, match=r"has no archive root\.pxar\.didx \(archives: etc\.ppxar\.didx, etc\.mpxar\.didx\)"):
        restore(datastore, result.snapshot, "root.pxar", tmp_path / "none")


def test_encrypted_split_backup(datastore, tmp_path):
    source = tmp_path / "small"
    source.mkdir()
    (source / "f").write_bytes(random.Random(8).randbytes(200000))
    key = CryptConfig(b"\x42" * 32)
    result = backup(datastore, BackupGroup.parse("host/box"), parse_sources([str(source)]), key, change_detection_mode="data")
    assert [f.crypt_mode for f in result.manifest.files] == ["encrypt", "encrypt"] and result.manifest.signature
    with pytest.raises(CryptoError, match="key is needed"):
        restore(datastore, result.snapshot, "root.pxar", tmp_path / "x")
    restore(datastore, result.snapshot, "root.pxar", tmp_path / "out", key)
    same_tree(source, tmp_path / "out")


def test_restore_refuses_half_a_split_archive(datastore, tmp_path):
    source = tmp_path / "small"
    source.mkdir()
    (source / "f").write_bytes(b"y")
    result = backup(datastore, BackupGroup.parse("host/box"), parse_sources([str(source)]), change_detection_mode="data")
    snapshot_dir = datastore.snapshot_path(result.snapshot)
    manifest = result.manifest
    manifest.files = [f for f in manifest.files if f.filename != "root.ppxar.didx"]
    manifest.save(snapshot_dir)
    with pytest.raises(DatastoreError, match="has root.mpxar.didx but not root.ppxar.didx; a split pxar archive needs both"):
        restore(datastore, result.snapshot, "root.pxar", tmp_path / "out")


@pytest.mark.slow
def test_cli_backup_and_restore_in_data_mode(tmp_path, tree):
    env = isolated_env(tmp_path)
    Datastore.create(tmp_path / "store", prefix_dirs=False)
    tapefs("datastore", "add", "main", tmp_path / "store", env=env)

    refused = tapefs("datastore", "backup", "main", "host/web", tree, "--change-detection-mode", "fast", env=env, check=False)
    assert refused.returncode == 2 and "'fast' is not one of 'legacy', 'data', 'metadata'" in refused.stderr

    proc = tapefs("datastore", "backup", "main", "host/web", tree, "--change-detection-mode", "data", env=env)
    assert "root.ppxar.didx" in proc.stdout and "root.mpxar.didx" in proc.stdout
    snapshot = proc.stdout.splitlines()[0].removeprefix("snapshot ")
    restored = tapefs("datastore", "restore", "main", snapshot, "root.pxar", tmp_path / "restored", env=env)
    assert restored.stdout.startswith("restored root.mpxar.didx + root.ppxar.didx to ")
    same_tree(tree, tmp_path / "restored")
    assert tapefs("datastore", "verify", "main", env=env).stdout.strip().endswith(": ok")
