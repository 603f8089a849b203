"""The tree's refresh (issue 21): new views are built aside, off the request path, and swapped in;
requests meanwhile are answered at once from the old views, and a listing or a `find` that a
refresh interrupts sees every name once. Over a copy of the shared archive's databases, to which
a snapshot is added as another process's backup would."""
from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from tapefs.catalog.file_catalog import FILE_CATALOG_DB_NAME, FileCatalog
from tapefs.catalog.media_catalog import CATALOG_DB_NAME, MediaCatalog
from tapefs.media.inventory import INVENTORY_DB_NAME, Inventory
from tapefs.mount.tree import ENTRY_BIT, ROOT_INODE, NodeNotFound, Tree
from tests.helpers.mount_archive import record_snapshot

pytestmark = [pytest.mark.slow, pytest.mark.vtape, pytest.mark.xdist_group("mount")]

#: A request that takes longer than this waited for the refresh.
PROMPT = 1.0
NEW_SNAPSHOT = "ct/999/2030-01-01T00:00:00Z"


@pytest.fixture
def state(tape_archive, tmp_path) -> Path:
    """A copy of the archive's inventory and catalogs: the tests change them."""
    source = Path(tape_archive.env["TAPEFS_STATE_DIR"]) / "tape"
    target = tmp_path / "tape"
    target.mkdir()
    for name in (INVENTORY_DB_NAME, CATALOG_DB_NAME, FILE_CATALOG_DB_NAME):
        with closing(sqlite3.connect(source / name)) as original, closing(sqlite3.connect(target / name)) as copy:
            original.backup(copy)
    return target


@pytest.fixture
def tree(state):
    with Inventory.open(state) as inventory, MediaCatalog.open(state) as media_catalog, \
            FileCatalog.open(state) as file_catalog:
        tree = Tree(inventory, media_catalog, file_catalog)
        yield tree
        tree.close()


def walk(tree: Tree, *names: str):
    node = tree.node(ROOT_INODE)
    for name in names:
        node = tree.lookup(node.inode, name.encode())
    return node


def names(tree: Tree, node) -> list[bytes]:
    return [child.name for child, _ in tree.readdir(node.inode)]


def answered_promptly(request):
    """request()'s answer, asked in a thread of its own: one that waits for the refresh fails the
    test instead of hanging it."""
    outcome: dict = {}

    def ask():
        try:
            outcome["answer"] = request()
        except BaseException as error:  # handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=ask, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(PROMPT)
    assert not thread.is_alive(), f"no answer within {PROMPT} s: the request waits for the refresh"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["answer"], time.monotonic() - started


def view_inodes(tree: Tree) -> dict[tuple[bytes, ...], int]:
    """Path → inode of everything in the views, down to the archive roots (not into them)."""
    found = {}
    stack = [((), ROOT_INODE)]
    while stack:
        path, inode = stack.pop()
        for child, _ in tree.readdir(inode):
            found[path + (child.name,)] = child.inode
            if child.is_dir and not child.inode & ENTRY_BIT:
                stack.append((path + (child.name,), child.inode))
    return found


def test_requests_during_a_slow_refresh_are_answered_at_once_from_the_old_views(
        tree, state, tape_archive, monkeypatch):
    image_path = ["snapshots", "store", *tape_archive.image_snapshot.split("/")]
    image_dir = walk(tree, *image_path)
    before = view_inodes(tree)
    copies = tree.stats()["snapshot-copies"]
    building, go_on = threading.Event(), threading.Event()
    build_snapshots_view = Tree._snapshots_view

    def slow_snapshots_view(self, *args):
        building.set()
        go_on.wait(60)
        return build_snapshots_view(self, *args)

    monkeypatch.setattr(Tree, "_snapshots_view", slow_snapshots_view)
    record_snapshot(state, tape_archive.tapes[0], "store", NEW_SNAPSHOT)
    refresher = threading.Thread(target=tree.refresh, kwargs={"force": True})
    refresher.start()
    try:
        assert building.wait(30)
        # What `ls`, `stat` and `find` ask of the root and of nodes handed out before.
        listed, _ = answered_promptly(lambda: names(tree, tree.node(ROOT_INODE)))
        assert listed == [b".status", b"pools", b"snapshots", b"media"]
        snapshots, _ = answered_promptly(lambda: tree.lookup(ROOT_INODE, b"snapshots"))
        assert snapshots.inode == before[(b"snapshots",)]
        store, _ = answered_promptly(lambda: tree.lookup(snapshots.inode, b"store"))
        assert sorted(answered_promptly(lambda: names(tree, store))[0]) == [b"host", b"vm"]
        assert answered_promptly(lambda: tree.node(image_dir.inode))[0].inode == image_dir.inode
        assert b"index.json" in answered_promptly(lambda: names(tree, image_dir))[0]
        assert answered_promptly(lambda: tree.getxattr(image_dir.inode, b"user.tapefs.media-set"))[0] == \
            tape_archive.media_set.encode()
        assert answered_promptly(lambda: tree.stats())[0]["snapshot-copies"] == copies
        # The new snapshot is not there before the swap.
        with pytest.raises(NodeNotFound):
            answered_promptly(lambda: tree.lookup(store.inode, b"ct"))
        assert refresher.is_alive()
    finally:
        go_on.set()
        refresher.join(60)
    assert not refresher.is_alive()

    new = walk(tree, "snapshots", "store", *NEW_SNAPSHOT.split("/"))
    assert tree.getxattr(new.inode, b"user.tapefs.error")  # no file catalog behind it
    after = view_inodes(tree)
    assert {path: after.get(path) for path in before} == before, "inode numbers move with a refresh"
    # New paths are numbered after every old one: a listing resumed at an old offset finds them.
    added = set(after) - set(before)
    newest_before = max(inode for inode in before.values() if not inode & ENTRY_BIT)
    assert all(after[path] > newest_before for path in added)
    # the snapshot in both views, and its archive among the raw files of the tape
    assert {path[:1] for path in added} == {(b"pools",), (b"snapshots",), (b"media",)}
    # A node handed out before the refresh still answers.
    assert tree.lookup(image_dir.inode, b"index.json").name == b"index.json"


def test_a_listing_resumed_after_a_refresh_shows_the_rest_and_the_new_name_once(tree, state, tape_archive):
    store = walk(tree, "snapshots", "store")
    listed = [child.name for child, _ in tree.readdir(store.inode)]
    first, offset = next(iter(tree.readdir(store.inode)))
    record_snapshot(state, tape_archive.tapes[0], "store", NEW_SNAPSHOT)
    assert tree.refresh()
    # `ct` sorts first by name, but is listed last: the offsets are inode numbers.
    resumed = [child.name for child, _ in tree.readdir(store.inode, offset)]
    assert resumed == listed[1:] + [b"ct"]


def test_a_find_during_refreshes_lists_every_name_once(tree, state, tape_archive):
    before = view_inodes(tree)
    record_snapshot(state, tape_archive.tapes[0], "store", NEW_SNAPSHOT)
    store_inode = before[(b"snapshots", b"store")]
    stop = threading.Event()

    def refresh_again_and_again():
        while not stop.is_set():
            tree.refresh(force=True)

    # As `find` does: one directory at a time, each read in small batches that resume at the
    # offset of the last name (the kernel's readdir); refreshes run meanwhile, and one lands in
    # the middle of the listing the new snapshot's first name joins.
    walked: list[tuple[bytes, ...]] = []
    stack = [((), ROOT_INODE)]
    refresher = threading.Thread(target=refresh_again_and_again)
    refresher.start()
    try:
        while stack:
            path, inode = stack.pop()
            offset = 0
            while True:
                batch = list(itertools.islice(tree.readdir(inode, offset), 2))
                if not batch:
                    break
                for child, _ in batch:
                    walked.append(path + (child.name,))
                    if child.is_dir and not child.inode & ENTRY_BIT:
                        stack.append((path + (child.name,), child.inode))
                offset = batch[-1][1]
                if inode == store_inode and len(batch) == 2:
                    tree.refresh(force=True)
    finally:
        stop.set()
        refresher.join(60)
    assert len(walked) == len(set(walked)), sorted(path for path in walked if walked.count(path) > 1)
    assert set(before) <= set(walked)
    new = (b"snapshots", b"store", *NEW_SNAPSHOT.encode().split(b"/"))
    assert {new[:3], new[:4], new[:5], new} <= set(walked)
    assert {path[:1] for path in set(walked) - set(before)} <= {(b"pools",), (b"snapshots",), (b"media",)}
