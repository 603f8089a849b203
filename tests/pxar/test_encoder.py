"""The v1 encoder reproduces the reference archives byte for byte."""

import dataclasses
import io
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tapefs.pxar.catalog import CatalogReader, CatalogWriter
from tapefs.pxar.decoder import Decoder
from tapefs.pxar.encoder import Encoder, encode_entries, encode_tree
from tapefs.pxar.entry import AclDefault, Kind, Metadata
from tapefs.pxar.extract import extract
from tapefs.pxar.fsmeta import ACL_ACCESS_XATTR, ACL_DEFAULT_XATTR, FCAPS_XATTR, acl_to_xattrs
from tapefs.pxar.source import BytesSource
from tests.helpers.pxar_fixtures import C_BIN, GENERATED, GENERATED_TREE, ORACLE, UPSTREAM, load_bytes, running_as_root

V1 = (GENERATED / "v1.pxar").read_bytes()
TREE_V1 = (ORACLE / "tree-v1.pxar").read_bytes()


def _encode_generated_tree(tree):
    out = io.BytesIO()
    encoder = Encoder(out, tree[b""])
    a_txt = encoder.add_file(b"a.txt", tree[b"a.txt"], 6, b"hello\n")
    encoder.add_file(b"acl.txt", tree[b"acl.txt"], 0, b"")
    encoder.begin_directory(b"b", tree[b"b"])
    encoder.add_file(b"c.bin", tree[b"b/c.bin"], 300, C_BIN)
    encoder.add_symlink(b"link", tree[b"b/link"], b"../a.txt")
    encoder.end_directory()
    encoder.add_device(b"dev", tree[b"dev"], 1, 3)
    encoder.add_special(b"fifo", tree[b"fifo"])
    encoder.add_hardlink(b"hl", b"a.txt", a_txt)
    encoder.add_special(b"sock", tree[b"sock"])
    encoder.finish()
    return out.getvalue()


def test_entry_level_encoder_reproduces_generated_v1_archive():
    assert _encode_generated_tree(GENERATED_TREE) == V1


def test_catalog_written_while_encoding_lists_the_tree():
    catalog_out = io.BytesIO()
    catalog = CatalogWriter(catalog_out)
    catalog.start_directory(b"root.pxar.didx")
    decoder = Decoder(BytesSource(V1))
    encode_entries(io.BytesIO(), decoder, decoder.read_content, catalog)
    catalog.end_directory()
    catalog.finish()
    listing = [(path, entry.kind, entry.size)
               for path, entry in CatalogReader(catalog_out.getvalue()).walk()]
    assert listing == [
        (b"root.pxar.didx", b"d", None), (b"root.pxar.didx/a.txt", b"f", 6),
        (b"root.pxar.didx/acl.txt", b"f", 0), (b"root.pxar.didx/b", b"d", None),
        (b"root.pxar.didx/b/c.bin", b"f", 300), (b"root.pxar.didx/b/link", b"l", None),
        (b"root.pxar.didx/dev", b"c", None), (b"root.pxar.didx/fifo", b"p", None),
        (b"root.pxar.didx/hl", b"h", None), (b"root.pxar.didx/sock", b"s", None),
    ]


@pytest.mark.parametrize("archive, payload", [
    ("tree-v1.pxar", None), ("tree-v2.mpxar", "tree-v2.ppxar"),
])
def test_reencoding_decoded_oracle_tree_reproduces_v1_archive(archive, payload):
    decoder = Decoder(load_bytes(ORACLE / archive),
                      load_bytes(ORACLE / payload) if payload else None)
    out = io.BytesIO()
    assert encode_entries(out, decoder, decoder.read_content) == len(TREE_V1)
    assert out.getvalue() == TREE_V1


def test_v2_generated_archive_reencodes_to_v1():
    decoder = Decoder(load_bytes(GENERATED / "v2.mpxar"), load_bytes(GENERATED / "v2.ppxar"))
    out = io.BytesIO()
    encode_entries(out, decoder, decoder.read_content)
    assert out.getvalue() == V1


@pytest.mark.slow
@pytest.mark.skipif(not running_as_root(), reason="owners and device nodes need root")
def test_walking_extracted_oracle_tree_reproduces_archive(tmp_path):
    extract(Decoder(load_bytes(ORACLE / "tree-v1.pxar")), tmp_path / "tree")
    out = io.BytesIO()
    encode_tree(tmp_path / "tree", out)
    assert out.getvalue() == TREE_V1


def _settable(path, name, value):
    try:
        os.setxattr(path, name, value, follow_symlinks=False)
    except OSError as error:
        pytest.skip(f"file system refuses xattr {name!r}: {error.strerror}")


@pytest.mark.skipif(not running_as_root(), reason="owners, fcaps and device nodes need root")
def test_walking_the_generated_tree_on_disk_gives_the_reference_items(tmp_path):
    root = tmp_path / "gen"
    root.mkdir()
    (root / "a.txt").write_bytes(b"hello\n")
    (root / "acl.txt").write_bytes(b"")
    (root / "b").mkdir()
    (root / "b" / "c.bin").write_bytes(C_BIN)
    os.symlink(b"../a.txt", root / "b" / "link")
    os.mknod(root / "dev", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(root / "fifo")
    os.link(root / "a.txt", root / "hl")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(os.fspath(root / "sock"))
    tree = dict(GENERATED_TREE)
    # the kernel insists on a mask next to named default entries, and ext4 without the
    # project feature has no project ids; everything else is as in the reference tree
    tree[b"b"] = dataclasses.replace(
        tree[b"b"], quota_project_id=None,
        acl=dataclasses.replace(tree[b"b"].acl, default=AclDefault(7, 5, 0, 7)))
    for path, metadata in tree.items():
        target = root / os.fsdecode(path)
        os.chown(target, metadata.uid, metadata.gid, follow_symlinks=False)
        if not stat.S_ISLNK(metadata.mode):
            os.chmod(target, stat.S_IMODE(metadata.mode))
        for name, value in metadata.xattrs:
            _settable(target, name, value)
        for name, value in acl_to_xattrs(metadata.acl, metadata.mode).items():
            _settable(target, name, value)
        if metadata.fcaps:
            _settable(target, FCAPS_XATTR, metadata.fcaps)
    for path, metadata in sorted(tree.items(), reverse=True):
        os.utime(root / os.fsdecode(path), ns=(metadata.mtime_ns, metadata.mtime_ns),
                 follow_symlinks=False)
    assert os.getxattr(root / "acl.txt", ACL_ACCESS_XATTR)
    assert os.getxattr(root / "b", ACL_DEFAULT_XATTR)
    out = io.BytesIO()
    encode_tree(root, out)
    assert out.getvalue() == _encode_generated_tree(tree)


@pytest.mark.slow
def test_stdlib_directory_survives_encode_and_extract(tmp_path):
    source = tmp_path / "email"
    shutil.copytree(Path(sys.modules["email"].__file__).parent, source, symlinks=True)
    archive = io.BytesIO()
    encode_tree(source, archive)
    extract(Decoder(BytesSource(archive.getvalue())), tmp_path / "restored")
    diff = subprocess.run(["diff", "-r", "--no-dereference", source, tmp_path / "restored"],
                          capture_output=True, text=True)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    for directory, dirs, files in os.walk(source):
        for name in dirs + files:
            original = os.lstat(os.path.join(directory, name))
            restored = os.lstat(os.path.join(tmp_path / "restored",
                                             os.path.relpath(directory, source), name))
            assert (restored.st_mode, restored.st_mtime_ns) == \
                (original.st_mode, original.st_mtime_ns), name


def test_encoder_refuses_invalid_names_kinds_and_nesting():
    encoder = Encoder(io.BytesIO(), Metadata(mode=stat.S_IFDIR | 0o755))
    file_metadata = Metadata(mode=stat.S_IFREG | 0o644)
    for bad_name in (b"", b".", b"..", b"a/b", b"a\0b"):
        with pytest.raises(ValueError):
            encoder.add_file(bad_name, file_metadata, 0, b"")
    with pytest.raises(ValueError, match="does not match"):
        encoder.add_symlink(b"s", file_metadata, b"x")
    with pytest.raises(ValueError, match="content is"):
        encoder.add_file(b"f", file_metadata, 5, b"abc")
    with pytest.raises(ValueError):
        encoder.end_directory()
    encoder.begin_directory(b"d", Metadata(mode=stat.S_IFDIR | 0o755))
    with pytest.raises(ValueError, match="still open"):
        encoder.finish()
    with pytest.raises(ValueError, match="root must be a directory"):
        Encoder(io.BytesIO(), file_metadata)


def test_file_that_shrinks_while_read_is_zero_padded():
    out = io.BytesIO()
    encoder = Encoder(out, Metadata(mode=stat.S_IFDIR | 0o755))
    encoder.add_file(b"f", Metadata(mode=stat.S_IFREG | 0o644), 10, io.BytesIO(b"abc"))
    encoder.add_file(b"g", Metadata(mode=stat.S_IFREG | 0o644), 2, io.BytesIO(b"abcdef"))
    encoder.finish()
    decoder = Decoder(BytesSource(out.getvalue()))
    contents = {entry.path: decoder.read_content(entry) for entry in decoder
                if entry.kind is Kind.FILE}
    assert contents == {b"f": b"abc" + bytes(7), b"g": b"ab"}


def test_tree_walk_orders_names_by_bytes_not_by_decoded_text(tmp_path):
    names = [b"\xff-undecodable", "😀-emoji".encode(), b"plain", "é".encode()]
    for name in names:
        (tmp_path / os.fsdecode(name)).write_bytes(name)
    out = io.BytesIO()
    encode_tree(tmp_path, out)
    decoded = [entry.path for entry in Decoder(BytesSource(out.getvalue()))][1:]
    assert decoded == sorted(names)
    assert sorted(names) != sorted(names, key=os.fsdecode)


GENERATED_PRELUDE = b'{"exclude-patterns":"/tmp\\n"}'


def _encode_v2(decoder, prelude=None, content_of=None):
    metadata, payload, boundaries = io.BytesIO(), io.BytesIO(), []
    encode_entries(metadata, decoder, content_of or decoder.read_content, payload_out=payload,
                   prelude=prelude, payload_boundary=boundaries.append)
    return metadata.getvalue(), payload.getvalue(), boundaries


def test_v2_encoder_reproduces_generated_split_archive():
    metadata, payload, boundaries = _encode_v2(Decoder(BytesSource(V1)), GENERATED_PRELUDE)
    assert metadata == (GENERATED / "v2.mpxar").read_bytes()
    assert payload == (GENERATED / "v2.ppxar").read_bytes()
    assert boundaries == [16, 38, 54]


@pytest.mark.parametrize("archive, payload", [
    ("tree-v1.pxar", None), ("tree-v2.mpxar", "tree-v2.ppxar"),
])
def test_v2_encoder_reproduces_oracle_split_archive(archive, payload):
    decoder = Decoder(load_bytes(ORACLE / archive),
                      load_bytes(ORACLE / payload) if payload else None)
    metadata, payload_stream, _ = _encode_v2(decoder)
    assert metadata == (ORACLE / "tree-v2.mpxar").read_bytes()
    assert payload_stream == (ORACLE / "tree-v2.ppxar").read_bytes()


def test_v2_encoder_reproduces_upstream_backup_client_metadata_stream():
    """The upstream fixture's files are 1 MiB of zeros; its payload stream is not shipped."""
    data = (UPSTREAM / "backup-client-pxar-data.mpxar").read_bytes()
    metadata, payload, boundaries = _encode_v2(
        Decoder(BytesSource(data)), content_of=lambda entry: bytes(entry.size))
    assert metadata == data
    assert len(payload) == 104859232
    assert boundaries == [16 + k * 1048592 for k in range(100)]


def test_prelude_needs_a_split_archive():
    with pytest.raises(ValueError, match="prelude"):
        Encoder(io.BytesIO(), Metadata(mode=stat.S_IFDIR | 0o755), prelude=b"{}")


@pytest.mark.slow
@pytest.mark.skipif(not running_as_root(), reason="owners and device nodes need root")
def test_walking_extracted_oracle_tree_reproduces_split_archive(tmp_path):
    extract(Decoder(load_bytes(ORACLE / "tree-v1.pxar")), tmp_path / "tree")
    metadata, payload = io.BytesIO(), io.BytesIO()
    encode_tree(tmp_path / "tree", metadata, payload_out=payload)
    assert metadata.getvalue() == (ORACLE / "tree-v2.mpxar").read_bytes()
    assert payload.getvalue() == (ORACLE / "tree-v2.ppxar").read_bytes()


@pytest.mark.skipif(not running_as_root(), reason="trusted.* and security.* xattrs need root")
def test_tree_walk_stores_only_the_xattrs_pbs_stores(tmp_path):
    target = tmp_path / "f"
    target.write_bytes(b"")
    wanted = [(b"security.NTACL", b"nt"), (b"trusted.t", b"2"), (b"user.b", b"1")]
    for name, value in [(b"user.b", b"1"), (b"trusted.t", b"2"), (b"security.NTACL", b"nt"),
                        (b"security.other", b"x")]:
        _settable(target, name, value)
    out = io.BytesIO()
    encode_tree(tmp_path, out)
    entry = [entry for entry in Decoder(BytesSource(out.getvalue()))][1]
    assert entry.xattrs == wanted
