"""Random trees survive encode → decode (in memory) and disk → archive → disk."""

import io
import os
import stat
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapefs.pxar.accessor import Accessor
from tapefs.pxar.catalog import CatalogReader, CatalogWriter
from tapefs.pxar.decoder import Decoder
from tapefs.pxar.encoder import encode_entries, encode_tree
from tapefs.pxar.entry import Acl, AclDefault, AclEntry, Entry, Kind, Metadata
from tapefs.pxar.extract import extract
from tapefs.pxar.fsmeta import acl_to_xattrs
from tapefs.pxar.source import BytesSource
from tests.helpers.pxar_fixtures import running_as_root


def _valid_name(name: bytes) -> bool:
    return bool(name) and b"/" not in name and b"\0" not in name and name not in (b".", b"..")


names = st.one_of(
    st.binary(min_size=1, max_size=255),
    st.text(min_size=1, max_size=80).map(lambda text: text.encode("utf-8", "surrogatepass")[:255]),
    st.sampled_from([b"x" * 255, "é".encode() * 127 + b"x", b"new\nline", b"-rf", b"\xff\xfe",
                     b" lead", b"trail ", b"..."]),
).filter(_valid_name)

xattr_lists = st.lists(
    st.tuples(st.binary(min_size=1, max_size=40).filter(lambda n: b"\0" not in n)
              .map(lambda n: b"user." + n), st.binary(max_size=100)),
    max_size=3, unique_by=lambda item: item[0]).map(sorted)

acl_entries = st.lists(st.builds(AclEntry, st.integers(0, 70000), st.integers(0, 7)),
                       max_size=3, unique_by=lambda entry: entry.id).map(
    lambda entries: tuple(sorted(entries, key=lambda entry: entry.id)))


def metadata(file_type: int, wide: bool):
    secs = st.integers(-(2**40), 2**40) if wide else st.integers(-(2**31), 2**33)
    return st.builds(
        Metadata, mode=st.integers(0, 0o7777).map(lambda perms: file_type | perms),
        uid=st.integers(0, 2**32 - 2), gid=st.integers(0, 2**32 - 2), mtime_secs=secs,
        mtime_nanos=st.integers(0, 999_999_999))


def with_attributes(base, wide: bool, directory: bool):
    """In memory, any attributes; on disk, user xattrs and ACLs the kernel accepts."""
    if not wide:
        disk_acls = st.builds(
            Acl, users=acl_entries, groups=acl_entries, group_obj=st.none() | st.integers(0, 7),
            default=(st.none() | st.builds(AclDefault, st.integers(0, 7), st.integers(0, 7),
                                           st.integers(0, 7), st.integers(0, 7)))
            if directory else st.none(),
            default_users=acl_entries if directory else st.just(()))
        return st.builds(lambda meta, xattrs, acl: _replace(meta, xattrs=xattrs, acl=acl),
                         base, xattr_lists, disk_acls)
    acls = st.builds(Acl, users=acl_entries, groups=acl_entries,
                     group_obj=st.none() | st.integers(0, 7),
                     default=(st.none() | st.builds(AclDefault, st.integers(0, 7),
                                                    st.integers(0, 7), st.integers(0, 7)))
                     if directory else st.none())
    return st.builds(lambda meta, xattrs, acl, fcaps, projid: _replace(
        meta, xattrs=xattrs, acl=acl, fcaps=fcaps, quota_project_id=projid),
        base, xattr_lists, acls, st.none() | st.binary(min_size=1, max_size=24),
        st.none() | st.integers(1, 2**32))


def _replace(meta: Metadata, **changes) -> Metadata:
    for key, value in changes.items():
        setattr(meta, key, value)
    return meta


def nodes(wide: bool):
    file = st.tuples(st.just("file"),
                     with_attributes(metadata(stat.S_IFREG, wide), wide, False),
                     st.binary(max_size=300))
    symlink = st.tuples(st.just("symlink"), metadata(stat.S_IFLNK, wide).map(
        lambda meta: _replace(meta, mode=stat.S_IFLNK | 0o777)),
        st.binary(min_size=1, max_size=200).filter(lambda target: b"\0" not in target))
    fifo = st.tuples(st.just("fifo"), metadata(stat.S_IFIFO, wide), st.none())
    socket = st.tuples(st.just("socket"), metadata(stat.S_IFSOCK, wide), st.none())
    device = st.tuples(st.just("device"), st.one_of(metadata(stat.S_IFCHR, wide),
                                                    metadata(stat.S_IFBLK, wide)),
                       st.tuples(st.integers(0, 4095), st.integers(0, 2**20 - 1)))
    hardlink = st.tuples(st.just("hardlink"), st.none(), st.integers(0, 50))
    leaves = st.one_of(file, file, symlink, fifo, socket, device, hardlink)
    return st.recursive(leaves, lambda children: st.tuples(
        st.just("dir"), with_attributes(metadata(stat.S_IFDIR, wide), wide, True),
        st.dictionaries(names, children, max_size=5)), max_leaves=25)


def trees(wide: bool):
    return st.tuples(with_attributes(metadata(stat.S_IFDIR, wide), wide, True),
                     st.dictionaries(names, nodes(wide), max_size=6))


def flatten(tree):
    """Archive-ordered entries and file contents; a hardlink refers to an earlier file."""
    root_meta, children = tree
    entries = [Entry(path=b"", kind=Kind.DIRECTORY, metadata=root_meta)]
    contents: dict[bytes, bytes] = {}
    files: list[bytes] = []

    def add(parent: bytes, members: dict) -> None:
        for name in sorted(members):
            kind, meta, extra = members[name]
            path = parent + b"/" + name if parent else name
            if kind == "hardlink" and not files:
                kind, meta, extra = "file", Metadata(mode=stat.S_IFREG | 0o644), b""
            if kind == "dir":
                entries.append(Entry(path=path, kind=Kind.DIRECTORY, metadata=meta))
                add(path, extra)
            elif kind == "file":
                entries.append(Entry(path=path, kind=Kind.FILE, metadata=meta, size=len(extra)))
                contents[path] = extra
                files.append(path)
            elif kind == "hardlink":
                target = files[extra % len(files)]
                entries.append(Entry(path=path, kind=Kind.HARDLINK, metadata=None,
                                     hardlink_target=target))
            elif kind == "symlink":
                entries.append(Entry(path=path, kind=Kind.SYMLINK, metadata=meta,
                                     symlink_target=extra))
            elif kind in ("fifo", "socket"):
                entries.append(Entry(path=path, kind=meta.kind, metadata=meta))
            else:
                entries.append(Entry(path=path, kind=meta.kind, metadata=meta, device=extra))

    add(b"", children)
    return entries, contents


def _summary(entry: Entry):
    return (entry.path, entry.kind, entry.metadata, entry.size, entry.symlink_target,
            entry.hardlink_target, entry.device)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(wide=True))
def test_random_tree_round_trips_in_memory(tree):
    _check_round_trip(tree)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(wide=True))
def test_many_random_trees_round_trip_in_memory(tree):
    _check_round_trip(tree)


def _check_round_trip(tree):
    """Encoder (v1 and v2), decoder, accessor and catalog agree on a tree; re-encoding is stable."""
    entries, contents = flatten(tree)
    archive = io.BytesIO()
    catalog_out = io.BytesIO()
    catalog = CatalogWriter(catalog_out)
    encode_entries(archive, entries, lambda entry: contents[entry.path], catalog)
    catalog.finish()
    data = archive.getvalue()

    decoder = Decoder(BytesSource(data))
    decoded = list(decoder)
    assert [_summary(entry) for entry in decoded] == [_summary(entry) for entry in entries]
    for entry in decoded:
        if entry.kind in (Kind.FILE, Kind.HARDLINK):
            target = entry.hardlink_target or entry.path
            assert decoder.read_content(entry) == contents[target]

    accessor = Accessor(BytesSource(data))
    for entry in entries:
        found = accessor.lookup(entry.path)
        assert _summary(found) == _summary(entry)
        if entry.kind is Kind.DIRECTORY:
            children = [child.path for child in entries
                        if child.path and child.path.rpartition(b"/")[0] == entry.path]
            assert [child.path for child in accessor.list_dir(entry.path)] == children
        elif entry.kind is Kind.FILE and entry.size:
            assert accessor.read(entry.path, 1, 7) == contents[entry.path][1:8]

    catalog_listing = [(path, item.kind, item.size, item.mtime)
                       for path, item in CatalogReader(catalog_out.getvalue()).walk()]
    kinds = {Kind.DIRECTORY: b"d", Kind.FILE: b"f", Kind.SYMLINK: b"l", Kind.HARDLINK: b"h",
             Kind.FIFO: b"p", Kind.SOCKET: b"s", Kind.CHAR_DEVICE: b"c", Kind.BLOCK_DEVICE: b"b"}
    assert catalog_listing == [
        (entry.path, kinds[entry.kind], entry.size if entry.kind is Kind.FILE else None,
         entry.metadata.mtime_secs if entry.kind is Kind.FILE else None)
        for entry in entries[1:]]

    again = io.BytesIO()
    encode_entries(again, decoded, decoder.read_content)
    assert again.getvalue() == data

    metadata_stream, payload_stream = io.BytesIO(), io.BytesIO()
    encode_entries(metadata_stream, entries, lambda entry: contents[entry.path],
                   payload_out=payload_stream)
    split = Decoder(BytesSource(metadata_stream.getvalue()), BytesSource(payload_stream.getvalue()))
    assert [_summary(entry) for entry in split] == [_summary(entry) for entry in entries]
    split_accessor = Accessor(BytesSource(metadata_stream.getvalue()),
                              BytesSource(payload_stream.getvalue()))
    for path, content in contents.items():
        assert split_accessor.read(path) == content


def _snapshot(root: bytes) -> dict:
    """What restoring must preserve, per path, with hardlinks as groups of paths."""
    st_ = os.lstat(root)
    state: dict = {b".": (st_.st_mode, st_.st_uid, st_.st_gid, st_.st_mtime_ns)}
    inodes: dict[int, list[bytes]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, root)
            st_ = os.lstat(path)
            info = [st_.st_mode, st_.st_uid, st_.st_gid, st_.st_mtime_ns]
            if stat.S_ISREG(st_.st_mode):
                with open(path, "rb") as file:
                    info.append(file.read())
                inodes.setdefault(st_.st_ino, []).append(rel)
            elif stat.S_ISLNK(st_.st_mode):
                info.append(os.readlink(path))
            elif stat.S_ISCHR(st_.st_mode) or stat.S_ISBLK(st_.st_mode):
                info.append(st_.st_rdev)
            if stat.S_ISREG(st_.st_mode) or stat.S_ISDIR(st_.st_mode):
                info.append(sorted((name, os.getxattr(path, name)) for name in
                                   map(os.fsencode, os.listxattr(path))
                                   if name.startswith((b"user.", b"system.posix_acl_"))))
            state[rel] = tuple(info)
    state["hardlink groups"] = sorted(sorted(group) for group in inodes.values()
                                      if len(group) > 1)
    return state


def _build_on_disk(root: bytes, entries, contents) -> None:
    for entry in entries[1:]:
        path = os.path.join(root, entry.path)
        if entry.kind is Kind.DIRECTORY:
            os.mkdir(path)
        elif entry.kind is Kind.FILE:
            with open(path, "wb") as file:
                file.write(contents[entry.path])
        elif entry.kind is Kind.HARDLINK:
            os.link(os.path.join(root, entry.hardlink_target), path)
        elif entry.kind is Kind.SYMLINK:
            os.symlink(entry.symlink_target, path)
        elif entry.kind in (Kind.FIFO, Kind.SOCKET):
            os.mknod(path, stat.S_IFMT(entry.metadata.mode) | 0o600)
        else:
            os.mknod(path, stat.S_IFMT(entry.metadata.mode) | 0o600, os.makedev(*entry.device))
    for entry in reversed(entries):
        if entry.kind is Kind.HARDLINK:
            continue
        path = os.path.join(root, entry.path) if entry.path else root
        meta = entry.metadata
        os.chown(path, meta.uid, meta.gid, follow_symlinks=False)
        if entry.kind is not Kind.SYMLINK:
            os.chmod(path, stat.S_IMODE(meta.mode))
        for name, value in meta.xattrs:
            os.setxattr(path, name, value)
        for name, value in acl_to_xattrs(meta.acl, meta.mode).items():
            os.setxattr(path, name, value)
        os.utime(path, ns=(meta.mtime_ns, meta.mtime_ns), follow_symlinks=False)


@pytest.mark.slow
@pytest.mark.skipif(not running_as_root(), reason="owners and device nodes need root")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(wide=False))
def test_random_tree_on_disk_is_restored_identically(tree):
    entries, contents = flatten(tree)
    with tempfile.TemporaryDirectory() as scratch:
        source = os.path.join(os.fsencode(scratch), b"source")
        restored = os.path.join(os.fsencode(scratch), b"restored")
        os.mkdir(source)
        _build_on_disk(source, entries, contents)
        archive = io.BytesIO()
        encode_tree(source, archive)
        extract(Decoder(BytesSource(archive.getvalue())), restored)
        assert _snapshot(restored) == _snapshot(source)
