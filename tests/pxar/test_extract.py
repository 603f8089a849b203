"""Extraction restores everything the archive holds and never writes outside its target."""

import io
import os
import stat
import subprocess

import pytest

from tapefs.pxar.accessor import Accessor
from tapefs.pxar.decoder import Decoder
from tapefs.pxar.encoder import encode_tree
from tapefs.pxar.entry import Entry, Kind, Metadata
from tapefs.pxar.errors import ExistingEntryError, FormatError, PxarError, UnsafePathError
from tapefs.pxar.extract import Overwrite, check_conflicts, extract
from tapefs.pxar.source import BytesSource
from tests.helpers.pxar_fixtures import (
    GENERATED,
    ORACLE,
    CountingSource,
    load_bytes,
    oracle_rows,
    row_path,
    running_as_root,
    sha256,
)

TYPE_BITS = {"dir": stat.S_IFDIR, "file": stat.S_IFREG, "symlink": stat.S_IFLNK,
             "fifo": stat.S_IFIFO, "socket": stat.S_IFSOCK, "chardev": stat.S_IFCHR,
             "blockdev": stat.S_IFBLK}


def _oracle_decoder(version):
    if version == "v1":
        return Decoder(load_bytes(ORACLE / "tree-v1.pxar"))
    return Decoder(load_bytes(ORACLE / "tree-v2.mpxar"), load_bytes(ORACLE / "tree-v2.ppxar"))


@pytest.mark.slow
@pytest.mark.skipif(not running_as_root(), reason="owners and device nodes need root")
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_oracle_tree_extracts_with_all_metadata(tmp_path, version):
    target = tmp_path / "out"
    stats = extract(_oracle_decoder(version), target)
    assert (stats.entries, stats.bytes, stats.skipped) == (2931, 6396299, 0)
    for row in oracle_rows():
        path = os.path.join(os.fsencode(target), row_path(row)) if row["path"] else \
            os.fsencode(target)
        st = os.lstat(path)
        if row["type"] == "hardlink":
            target_path = os.path.join(os.fsencode(target), bytes.fromhex(row["hardlink"]))
            assert os.lstat(target_path).st_ino == st.st_ino
            continue
        assert stat.S_IFMT(st.st_mode) == TYPE_BITS[row["type"]]
        assert (st.st_mode, st.st_uid, st.st_gid) == (row["mode"], row["uid"], row["gid"]), path
        assert st.st_mtime_ns == row["mtime"][0] * 10**9 + row["mtime"][1], path
        if row["type"] == "file":
            with open(path, "rb") as file:
                assert sha256(file.read()) == row["sha256"]
        if row["type"] == "symlink":
            assert os.readlink(path).hex() == row["symlink"]
        if "device" in row:
            assert [os.major(st.st_rdev), os.minor(st.st_rdev)] == row["device"]
        if row["type"] in ("file", "dir"):
            stored = sorted((os.fsencode(name), os.getxattr(path, name))
                            for name in os.listxattr(path) if name.startswith("user."))
            assert [[name.hex(), value.hex()] for name, value in stored] == row.get("xattrs", [])
    assert not [name for _, _, names in os.walk(target) for name in names
                if name.startswith(".tapefs-extract-")]


def test_subtree_extraction_copies_hardlinks_whose_target_lies_outside(tmp_path):
    extract(_oracle_decoder("v1"), tmp_path, subtree="names", restore_owners=False)
    linked = tmp_path / "hardlink-to-big-e0100"
    assert linked.is_file() and sorted(os.listdir(tmp_path))[0] != "names"
    accessor_bytes = _oracle_decoder("v1")
    expected = next(entry for entry in accessor_bytes if entry.path == b"big/e0100")
    assert linked.read_bytes() == accessor_bytes.read_content(expected)
    assert (tmp_path / "dir ü with space" / "inner\nfile").exists()


def test_subtree_extraction_keeps_hardlinks_inside_it(tmp_path):
    extract(_oracle_decoder("v1"), tmp_path, subtree=b"links", restore_owners=False)
    assert os.stat(tmp_path / "a" / "first.bin").st_ino == \
        os.stat(tmp_path / "b" / "second.bin").st_ino


def test_subtree_extraction_through_accessor_reads_only_the_subtree(tmp_path):
    source = CountingSource(load_bytes(ORACLE / "tree-v1.pxar"))
    extract(Accessor(source), tmp_path / "fast", subtree="links", restore_owners=False)
    assert source.bytes_read < 20000
    extract(_oracle_decoder("v1"), tmp_path / "slow", subtree="links", restore_owners=False)
    diff = subprocess.run(["diff", "-r", "--no-dereference", tmp_path / "fast", tmp_path / "slow"],
                          capture_output=True)
    assert diff.returncode == 0, diff.stdout
    assert os.stat(tmp_path / "fast" / "a" / "first.bin").st_ino == \
        os.stat(tmp_path / "fast" / "third.bin").st_ino


def test_single_file_subtree_lands_under_its_name(tmp_path):
    extract(Accessor(load_bytes(GENERATED / "v1.pxar")), tmp_path, subtree="b/c.bin",
            restore_owners=False)
    assert os.listdir(tmp_path) == ["c.bin"]
    assert (tmp_path / "c.bin").read_bytes() == bytes(range(256)) + bytes(range(44))


def test_missing_subtree_is_reported(tmp_path):
    with pytest.raises(PxarError, match="no entry b'nope'"):
        extract(Decoder(load_bytes(GENERATED / "v1.pxar")), tmp_path, subtree="nope")


class _FakeArchive:
    """Entries made up by a test, as an attacker could write them."""

    def __init__(self, entries, contents=None):
        self.entries = entries
        self.contents = contents or {}

    def iter_subtree(self, path):
        assert path == b""
        return iter(self.entries)

    def iter_content(self, entry):
        yield self.contents.get(entry.path, b"")

    def resolve_hardlink(self, entry):
        raise AssertionError("not expected")


def _dir(path=b""):
    return Entry(path=path, kind=Kind.DIRECTORY, metadata=Metadata(mode=stat.S_IFDIR | 0o755))


def _file(path, size=0):
    return Entry(path=path, kind=Kind.FILE, metadata=Metadata(mode=stat.S_IFREG | 0o644),
                 size=size)


def _symlink(path, target):
    return Entry(path=path, kind=Kind.SYMLINK, metadata=Metadata(mode=stat.S_IFLNK | 0o777),
                 symlink_target=target)


def _hardlink(path, target):
    return Entry(path=path, kind=Kind.HARDLINK, metadata=None, hardlink_target=target,
                 hardlink_offset=1, filename_offset=100)


@pytest.fixture
def sandbox(tmp_path):
    """A target directory with an empty sibling that nothing may ever write into."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "target").mkdir()
    yield tmp_path / "target", tmp_path / "outside"
    assert os.listdir(tmp_path / "outside") == []


@pytest.mark.parametrize("name", [b"../outside/x", b"../../x", b"/etc/tapefs-x", b"a/../../x",
                                  b"./x", b""])
def test_escaping_entry_names_are_refused(sandbox, name):
    target, _ = sandbox
    with pytest.raises(UnsafePathError, match="refusing"):
        extract(_FakeArchive([_dir(), _file(name)]), target)


def test_dot_dot_name_in_a_real_archive_is_refused_with_offset(sandbox):
    target, _ = sandbox
    data = (GENERATED / "v1.pxar").read_bytes().replace(b"acl.txt\0", b"../../x\0")
    with pytest.raises(UnsafePathError, match=r"\.\./\.\./x.*byte offset 196"):
        extract(Decoder(BytesSource(data)), target, restore_owners=False)


def test_directory_behind_a_planted_symlink_is_refused(sandbox):
    target, outside = sandbox
    entries = [_dir(), _symlink(b"a", os.fsencode(outside)), _dir(b"a"), _file(b"a/x", 3)]
    with pytest.raises(UnsafePathError, match="not a directory"):
        extract(_FakeArchive(entries, {b"a/x": b"bad"}), target)


def test_file_over_a_planted_symlink_replaces_the_link_not_its_target(sandbox):
    target, outside = sandbox
    entries = [_dir(), _symlink(b"a", os.fsencode(outside / "victim")), _file(b"a", 3)]
    with pytest.raises(ExistingEntryError, match="existing symlink .*/target/a$"):
        extract(_FakeArchive(entries, {b"a": b"new"}), target)
    extract(_FakeArchive(entries, {b"a": b"new"}), target, overwrite=Overwrite.ALL)
    assert not (target / "a").is_symlink() and (target / "a").read_bytes() == b"new"


@pytest.mark.parametrize("link_target", [b"../outside/x", b"s/x"])
def test_hardlink_targets_outside_or_through_symlinks_are_refused(sandbox, link_target):
    target, outside = sandbox
    (outside / "x").write_bytes(b"secret")
    entries = [_dir(), _symlink(b"s", os.fsencode(outside)), _hardlink(b"h", link_target)]
    try:
        with pytest.raises(UnsafePathError):
            extract(_FakeArchive(entries), target)
        assert not (target / "h").exists()
    finally:
        os.unlink(outside / "x")


def test_truncated_archive_leaves_no_partial_file(tmp_path):
    data = (ORACLE / "tree-v1.pxar").read_bytes()
    entry = next(entry for entry in Decoder(BytesSource(data))
                 if entry.path == b"sizes/random-5MiB")
    cut = entry.content_offset + 1_000_000
    with pytest.raises(FormatError) as error:
        extract(Decoder(BytesSource(data[:cut])), tmp_path, restore_owners=False)
    assert "byte offset" in str(error.value)
    assert not (tmp_path / "sizes" / "random-5MiB").exists()
    assert (tmp_path / "links" / "a" / "first.bin").stat().st_size == 1000
    assert not [name for _, _, names in os.walk(tmp_path) for name in names
                if name.startswith(".tapefs-extract-")]


def test_generated_archive_extracts_as_documented(tmp_path, caplog):
    stats = extract(Decoder(load_bytes(GENERATED / "v1.pxar")), tmp_path)
    assert (tmp_path / "a.txt").read_bytes() == b"hello\n"
    assert os.getxattr(tmp_path / "a.txt", "user.comment") == b"hello xattr"
    assert os.readlink(tmp_path / "b" / "link") == "../a.txt"
    assert os.stat(tmp_path / "hl").st_ino == os.stat(tmp_path / "a.txt").st_ino
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)
    assert stat.S_IMODE(os.lstat(tmp_path / "b").st_mode) == 0o2775
    assert os.lstat(tmp_path / "b" / "c.bin").st_mtime_ns == 1700000000123456789
    if running_as_root():
        assert os.lstat(tmp_path / "a.txt").st_uid == 1000
        assert stat.S_ISCHR(os.lstat(tmp_path / "dev").st_mode)
        # b's project id 42 needs a file system with project quotas; anything else must work
        skipped = [record.getMessage() for record in caplog.records
                   if "cannot restore" in record.getMessage()]
        assert len(skipped) == stats.skipped
        assert all("b'b': cannot restore quota project id" in message for message in skipped)


def test_target_given_as_symlink_is_followed_and_fsync_mode_works(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "alias")
    extract(Decoder(load_bytes(GENERATED / "v1.pxar")), tmp_path / "alias",
            restore_owners=False, fsync=True)
    assert (tmp_path / "real" / "b" / "c.bin").stat().st_size == 300


NODUMP = 0x100000  # pxar's bit for chattr +d


def test_chattr_flags_survive_encode_and_extract(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "f").write_bytes(b"x")
    try:
        subprocess.run(["chattr", "+d", source / "f"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot set chattr flags here: {error}")
    archive = io.BytesIO()
    encode_tree(source, archive)
    entry = [entry for entry in Decoder(BytesSource(archive.getvalue()))][1]
    assert entry.metadata.flags == NODUMP
    extract(Decoder(BytesSource(archive.getvalue())), tmp_path / "restored")
    listing = subprocess.run(["lsattr", tmp_path / "restored" / "f"], check=True,
                             capture_output=True, text=True).stdout
    assert "d" in listing.split()[0]


def _generated():
    return Decoder(load_bytes(GENERATED / "v1.pxar"))


def _temp_names(root):
    return [name for _, _, names in os.walk(root) for name in names
            if name.startswith(".tapefs-extract-")]


def test_existing_file_is_kept_and_named(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"IMPORTANT-DATA")
    with pytest.raises(ExistingEntryError) as error:
        extract(_generated(), tmp_path, restore_owners=False)
    assert str(error.value) == f"refusing to overwrite existing file {tmp_path}/a.txt"
    assert error.value.needed is Overwrite.FILES
    assert (tmp_path / "a.txt").read_bytes() == b"IMPORTANT-DATA"
    assert not _temp_names(tmp_path)
    with pytest.raises(ExistingEntryError):
        extract(_generated(), tmp_path, restore_owners=False,
                overwrite=Overwrite.SYMLINKS | Overwrite.HARDLINKS)
    extract(_generated(), tmp_path, restore_owners=False, overwrite=Overwrite.FILES)
    assert (tmp_path / "a.txt").read_bytes() == b"hello\n"


@pytest.mark.parametrize("existing, needed", [("b/link", Overwrite.SYMLINKS),
                                              ("hl", Overwrite.HARDLINKS),
                                              ("fifo", Overwrite.FILES)])
def test_each_kind_needs_its_own_overwrite_flag(tmp_path, existing, needed):
    refused, replaced = tmp_path / "refused", tmp_path / "replaced"
    for target in refused, replaced:
        (target / "b").mkdir(parents=True)
        (target / existing).write_bytes(b"IMPORTANT-DATA")
    with pytest.raises(ExistingEntryError, match=f"existing file {refused}/{existing}$"):
        extract(_generated(), refused, restore_owners=False, overwrite=Overwrite.ALL & ~needed)
    assert (refused / existing).read_bytes() == b"IMPORTANT-DATA"
    extract(_generated(), replaced, restore_owners=False, overwrite=needed)
    assert (replaced / existing).is_symlink() or (replaced / existing).is_fifo() or \
        os.stat(replaced / existing).st_ino == os.stat(replaced / "a.txt").st_ino


def test_overwriting_a_hardlink_with_itself_leaves_no_temp_name(tmp_path):
    extract(_generated(), tmp_path, restore_owners=False)
    extract(_generated(), tmp_path, restore_owners=False, overwrite=Overwrite.ALL)
    assert os.stat(tmp_path / "hl").st_ino == os.stat(tmp_path / "a.txt").st_ino
    assert not _temp_names(tmp_path)


def test_directories_are_never_replaced(tmp_path):
    (tmp_path / "a.txt").mkdir()
    (tmp_path / "a.txt" / "inside").write_bytes(b"IMPORTANT-DATA")
    with pytest.raises(ExistingEntryError, match="replace existing directory .*/a.txt with a file"):
        extract(_generated(), tmp_path, restore_owners=False, overwrite=Overwrite.ALL)
    assert (tmp_path / "a.txt" / "inside").read_bytes() == b"IMPORTANT-DATA"


@pytest.mark.skipif(not running_as_root(), reason="changing the owner needs root")
def test_existing_directories_keep_owner_mode_and_times(tmp_path):
    target = tmp_path / "target"
    (target / "b").mkdir(parents=True)
    os.chmod(target, 0o1777)
    os.chown(target, 65534, 65534)
    os.chmod(target / "b", 0o700)
    extract(_generated(), target)
    st = os.stat(target)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o1777, 65534, 65534)
    archived_mtime = next(entry for entry in _generated() if entry.path == b"b").metadata.mtime_ns
    st = os.stat(target / "b")
    # adding entries updates b's mtime as any write does; the archive's mtime is not applied
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o700, 0)
    assert st.st_mtime_ns != archived_mtime
    assert (target / "b" / "c.bin").stat().st_size == 300
    # asked for: the archive's metadata, as for directories the restore creates
    extract(_generated(), target, overwrite=Overwrite.ALL)
    st = os.stat(target)
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o755, 0)
    assert stat.S_IMODE(os.stat(target / "b").st_mode) == 0o2775


def test_new_directories_get_the_archive_metadata(tmp_path):
    extract(_generated(), tmp_path / "new", restore_owners=False)
    assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "b").st_mode) == 0o2775


def _oracle_accessor(version):
    if version == "v1":
        return Accessor(load_bytes(ORACLE / "tree-v1.pxar"))
    return Accessor(load_bytes(ORACLE / "tree-v2.mpxar"), load_bytes(ORACLE / "tree-v2.ppxar"))


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_conflicts_are_found_before_anything_is_written(tmp_path, version):
    check_conflicts(_oracle_accessor(version), tmp_path / "missing")
    check_conflicts(_oracle_accessor(version), tmp_path)
    (tmp_path / "links" / "b").mkdir(parents=True)
    (tmp_path / "links" / "b" / "second.bin").write_bytes(b"IMPORTANT-DATA")
    (tmp_path / "not-in-archive").write_bytes(b"mine")
    before = sorted(os.walk(tmp_path))
    with pytest.raises(ExistingEntryError) as error:
        check_conflicts(_oracle_accessor(version), tmp_path)
    assert error.value.path == f"{tmp_path}/links/b/second.bin"
    assert error.value.needed is Overwrite.HARDLINKS
    check_conflicts(_oracle_accessor(version), tmp_path, Overwrite.HARDLINKS)
    with pytest.raises(ExistingEntryError, match="links/b/second.bin"):
        extract(_oracle_decoder(version), tmp_path, restore_owners=False)
    assert (tmp_path / "links" / "b" / "second.bin").read_bytes() == b"IMPORTANT-DATA"
    assert sorted(os.walk(tmp_path)) != before  # the extractor itself stops at the conflict


def test_conflict_check_sees_a_file_where_a_directory_goes(tmp_path):
    (tmp_path / "b").write_bytes(b"IMPORTANT-DATA")
    with pytest.raises(ExistingEntryError, match="directory over existing file .*/b$"):
        check_conflicts(Accessor(load_bytes(GENERATED / "v1.pxar")), tmp_path, Overwrite.ALL)
