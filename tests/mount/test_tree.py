"""The mount's tree and its FUSE adapter without a kernel: views, lookups, stable readdir
offsets, hardlinks, errors and errno mapping, over the catalogs of a real tape backup."""
from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pyfuse3
import pytest

from tapefs.catalog.file_catalog import FileCatalog
from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.media.inventory import Inventory
from tapefs.mount.operations import Operations
from tapefs.mount.tree import ROOT_INODE, NodeNotFound, NotADirectory, Tree, TreeError
from tests.helpers.mount_archive import listing

pytestmark = [pytest.mark.slow, pytest.mark.vtape, pytest.mark.xdist_group("mount")]


@pytest.fixture
def tree(tape_archive):
    status_dir = Path(tape_archive.env["TAPEFS_STATE_DIR"]) / "tape"
    with Inventory.open(status_dir) as inventory, MediaCatalog.open(status_dir) as media_catalog, \
            FileCatalog.open(status_dir) as file_catalog:
        yield Tree(inventory, media_catalog, file_catalog)


#: FUSE request contexts (pyfuse3's cannot be built in Python): root, and a user in no group
ROOT = SimpleNamespace(uid=0, gid=0, pid=os.getpid(), umask=0o022)
NOBODY = SimpleNamespace(uid=65534, gid=65534, pid=0, umask=0o022)


def walk(tree: Tree, *names: str):
    node = tree.node(ROOT_INODE)
    for name in names:
        node = tree.lookup(node.inode, name.encode())
    return node


def names(tree: Tree, node, after: int = 0) -> list[bytes]:
    return [child.name for child, _ in tree.readdir(node.inode, after)]


def test_root_holds_the_status_file_and_three_views(tree):
    assert names(tree, tree.node(ROOT_INODE)) == [b".status", b"pools", b"snapshots", b"media"]


def test_pxar_tree_matches_the_source_entry_by_entry(tree, tape_archive):
    store, *path = ["store", *tape_archive.tree_snapshot.split("/")]
    root = walk(tree, "snapshots", store, *path, "root.pxar")
    found = {}

    def visit(node, prefix):
        for child, _ in tree.readdir(node.inode):
            relative = prefix + child.name.decode()
            found[relative] = child
            if child.is_dir:
                visit(child, relative + "/")

    visit(root, "")
    expected = listing(tape_archive.tree)
    assert sorted(found) == sorted(expected)
    for relative, (kind, mode, size, mtime, target, uid, gid) in expected.items():
        node = found[relative]
        assert (node.mode & 0o170000, node.mode & 0o7777, node.mtime_ns // 10**9) == (kind, mode, mtime), relative
        if size:
            assert node.size == size, relative
        if target is not None:
            assert node.target == target.encode(), relative


def test_readdir_resumes_at_any_offset(tree, tape_archive):
    store, *path = ["store", *tape_archive.tree_snapshot.split("/")]
    directory = walk(tree, "snapshots", store, *path, "root.pxar", "email")
    listed = list(tree.readdir(directory.inode))
    assert len(listed) > 10
    middle = listed[len(listed) // 2][1]
    assert [child.name for child, _ in tree.readdir(directory.inode, middle)] == \
        [child.name for child, _ in listed[len(listed) // 2 + 1:]]
    offsets = [offset for _, offset in listed]
    assert offsets == sorted(set(offsets)) and offsets[0] > 0


def test_a_view_listing_resumed_after_a_refresh_neither_repeats_nor_skips(tree):
    snapshots = walk(tree, "snapshots")
    listed = list(tree.readdir(snapshots.inode))
    first_name, first_offset = listed[0][0].name, listed[0][1]
    # A refresh found a new store, named before everything listed so far.
    added = tree._directory((b"snapshots", b"aaa-new-store"))
    tree._add(added)
    snapshots.children.insert(0, added.inode)
    resumed = [child.name for child, _ in tree.readdir(snapshots.inode, first_offset)]
    assert resumed == [child.name for child, _ in listed[1:]] + [b"aaa-new-store"]
    assert first_name not in resumed


def test_hardlinks_share_an_inode_and_symlinks_keep_their_target(tree, tape_archive):
    extras = walk(tree, "snapshots", "store", *tape_archive.tree_snapshot.split("/"), "root.pxar", "tapefs-extras")
    original = tree.lookup(extras.inode, b"original.txt")
    hardlink = tree.lookup(extras.inode, b"hardlink.txt")
    assert original.inode == hardlink.inode and original.nlink == 2
    assert tree.lookup(extras.inode, b"symlink.txt").target == b"original.txt"
    assert tree.node(original.inode).size == len("linked twice\n")


def test_missing_names_and_lookups_below_files_fail_with_their_errno(tree, tape_archive):
    with pytest.raises(NodeNotFound):
        walk(tree, "snapshots", "no-such-store")
    index = walk(tree, "snapshots", "store", *tape_archive.image_snapshot.split("/"), "index.json")
    with pytest.raises(NotADirectory):
        tree.lookup(index.inode, b"x")
    assert json.loads(tree.reader(index).read(0, 1 << 20))["backup-type"] == "vm"
    image = walk(tree, "snapshots", "store", *tape_archive.image_snapshot.split("/"), "disk.img")
    with pytest.raises(TreeError, match="no drives"):
        tree.reader(image)


def test_media_view_has_each_tape_with_its_label_and_content(tree, tape_archive):
    media = walk(tree, "media")
    assert set(tape_archive.tapes) <= {name.decode() for name in names(tree, media)}
    tape = walk(tree, "media", tape_archive.tapes[0])
    label = json.loads(tree.reader(tree.lookup(tape.inode, b"label.json")).read(0, 1 << 20))
    assert label["media-set"]["uuid"] == tape_archive.media_set
    assert tree.getxattr(tape.inode, b"user.tapefs.location").decode() == "online-lib"


async def test_operations_map_tree_errors_to_errno(tree, tape_archive):
    operations = Operations(tree)
    with pytest.raises(pyfuse3.FUSEError) as failure:
        await operations.lookup(ROOT_INODE, b"nothing-here", ROOT)
    assert failure.value.errno == errno.ENOENT
    status = await operations.lookup(ROOT_INODE, b".status", ROOT)
    with pytest.raises(pyfuse3.FUSEError) as failure:
        await operations.open(status.st_ino, os.O_WRONLY, ROOT)
    assert failure.value.errno == errno.EROFS
    with pytest.raises(pyfuse3.FUSEError) as failure:
        await operations.getxattr(status.st_ino, b"user.nothing", None)
    assert failure.value.errno == pyfuse3.ENOATTR
    info = await operations.open(status.st_ino, os.O_RDONLY, ROOT)
    assert info.direct_io
    assert json.loads(await operations.read(info.fh, 0, 1 << 20)) == {}
    await operations.release(info.fh)
    pools = await operations.lookup(ROOT_INODE, b"pools", ROOT)
    with pytest.raises(pyfuse3.FUSEError) as failure:
        await operations.open(pools.st_ino, os.O_RDONLY, ROOT)
    assert failure.value.errno == errno.EISDIR


def test_each_tape_lists_its_raw_files(tree, tape_archive):
    files = walk(tree, "media", tape_archive.tapes[0], "files")
    listed = [name.decode() for name in names(tree, files)]
    assert listed[:2] == ["00000-media-label", "00001-media-set-label"]
    node = tree.lookup(files.inode, listed[0].encode())
    assert node.direct_io and node.size == 0
    with pytest.raises(TreeError, match="no drives"):
        tree.reader(node)


def test_backed_up_bytes_outside_archives_are_the_owners_alone_and_metadata_is_for_all(tree, tape_archive):
    image_snapshot = walk(tree, "snapshots", "store", *tape_archive.image_snapshot.split("/"))
    raw_file = walk(tree, "media", tape_archive.tapes[0], "files", "00000-media-label")
    for node in (raw_file, tree.lookup(image_snapshot.inode, b"disk.img"),
                 tree.lookup(image_snapshot.inode, b"index.json")):
        assert stat.S_IMODE(node.mode) == 0o400, node.name
    tape = walk(tree, "media", tape_archive.tapes[0])
    for node in (tree.lookup(ROOT_INODE, b".status"), tree.lookup(tape.inode, b"label.json"),
                 tree.lookup(tape.inode, b"content.txt")):
        assert stat.S_IMODE(node.mode) == 0o444, node.name
    for node in (image_snapshot, tape, walk(tree, "media", tape_archive.tapes[0], "files")):
        assert stat.S_IMODE(node.mode) == 0o555, node.name


def test_an_exposing_tree_lets_everyone_read_raw_files(tape_archive):
    status_dir = Path(tape_archive.env["TAPEFS_STATE_DIR"]) / "tape"
    with Inventory.open(status_dir) as inventory, MediaCatalog.open(status_dir) as media_catalog, \
            FileCatalog.open(status_dir) as file_catalog:
        tree = Tree(inventory, media_catalog, file_catalog, expose_raw=True)
        image = walk(tree, "snapshots", "store", *tape_archive.image_snapshot.split("/"), "disk.img")
        assert stat.S_IMODE(image.mode) == 0o444


async def test_operations_refuse_what_the_mode_forbids_before_opening_anything(tree, tape_archive):
    """Without the kernel's default_permissions check: a refused open fails with EACCES before the
    tree builds a reader (the tree has no drives, so an open that got that far fails ENOMEDIUM)."""
    operations = Operations(tree)
    snapshot = walk(tree, "snapshots", "store", *tape_archive.image_snapshot.split("/"))
    raw_file = walk(tree, "media", tape_archive.tapes[0], "files", "00000-media-label")
    for inode in (raw_file.inode, tree.lookup(snapshot.inode, b"disk.img").inode,
                  tree.lookup(snapshot.inode, b"index.json").inode):
        with pytest.raises(pyfuse3.FUSEError) as failure:
            await operations.open(inode, os.O_RDONLY, NOBODY)
        assert failure.value.errno == errno.EACCES
    with pytest.raises(pyfuse3.FUSEError) as failure:
        await operations.open(raw_file.inode, os.O_RDONLY, ROOT)
    assert failure.value.errno == errno.ENOMEDIUM
    info = await operations.open(tree.lookup(snapshot.inode, b"index.json").inode, os.O_RDONLY, ROOT)
    await operations.release(info.fh)
    assert await operations.opendir(snapshot.inode, NOBODY) == snapshot.inode
    assert (await operations.lookup(snapshot.inode, b"disk.img", NOBODY)).st_mode == tree.lookup(
        snapshot.inode, b"disk.img").mode


async def test_operations_keep_archived_modes_for_other_users(tree, tape_archive):
    extras = walk(tree, "snapshots", "store", *tape_archive.tree_snapshot.split("/"), "root.pxar", "tapefs-extras")
    private_dir = tree.lookup(extras.inode, b"private")
    assert (stat.S_IMODE(private_dir.mode), private_dir.uid) == (0o700, 0)
    operations = Operations(tree)
    for call in (operations.opendir(private_dir.inode, NOBODY),
                 operations.lookup(private_dir.inode, b"secret.txt", NOBODY),
                 operations.open(tree.lookup(extras.inode, b"private.txt").inode, os.O_RDONLY, NOBODY)):
        with pytest.raises(pyfuse3.FUSEError) as failure:
            await call
        assert failure.value.errno == errno.EACCES
    assert await operations.opendir(private_dir.inode, ROOT) == private_dir.inode
    # Readable by all: the open gets as far as the (missing) drives.
    with pytest.raises(pyfuse3.FUSEError) as failure:
        await operations.open(tree.lookup(extras.inode, b"original.txt").inode, os.O_RDONLY, NOBODY)
    assert failure.value.errno == errno.ENOMEDIUM
