"""The FUSE adapter driven directly over a fake tree (tests/helpers/fake_tree.py): lookups,
attributes, readdir offsets, reads, errors and their errno, without a kernel mount."""
from __future__ import annotations

import errno
import os
import stat
import threading
import time
from types import SimpleNamespace

import pyfuse3
import pytest
import trio

from tapefs.mount.errors import MediaUnavailable
from tapefs.mount.operations import Operations
from tapefs.mount.tree import ROOT_INODE
from tests.helpers.fake_tree import FakeTree, GatedReader

ROOT = SimpleNamespace(uid=0, gid=0, pid=os.getpid(), umask=0o022)


@pytest.fixture
def tree() -> FakeTree:
    tree = FakeTree()
    directory = tree.add(ROOT_INODE, b"dir", stat.S_IFDIR | 0o555)
    for number in range(25):
        tree.file(directory.inode, f"f{number:02}".encode(), f"content {number}".encode())
    tree.file(ROOT_INODE, b"tagged", b"x", xattrs={b"user.note": b"kept"})
    return tree


@pytest.fixture
def replies(monkeypatch):
    """What readdir hands the kernel; `room` entries fit before the buffer is full."""
    sent = SimpleNamespace(entries=[], room=10**9)

    def reply(token, name, attributes, offset):
        if sent.room == 0:
            return False
        sent.room -= 1
        sent.entries.append((name, attributes.st_ino, offset))
        return True

    monkeypatch.setattr(pyfuse3, "readdir_reply", reply)
    return sent


async def fuse_errno(call) -> int:
    with pytest.raises(pyfuse3.FUSEError) as failure:
        await call
    return failure.value.errno


async def test_lookup_and_getattr_answer_the_node_and_missing_names_enoent(tree):
    operations = Operations(tree)
    directory = await operations.lookup(ROOT_INODE, b"dir", ROOT)
    assert stat.S_ISDIR(directory.st_mode) and directory.st_ino == tree.lookup(ROOT_INODE, b"dir").inode
    assert (await operations.getattr(directory.st_ino)).st_mode == directory.st_mode
    assert await fuse_errno(operations.lookup(ROOT_INODE, b"nothing", ROOT)) == errno.ENOENT
    assert await fuse_errno(operations.getattr(999)) == errno.ENOENT
    assert await fuse_errno(operations.opendir(tree.lookup(ROOT_INODE, b"tagged").inode, ROOT)) == errno.ENOTDIR


async def test_readdir_resumes_at_its_offsets_without_repeats_or_gaps(tree, replies):
    operations = Operations(tree)
    directory = tree.lookup(ROOT_INODE, b"dir").inode
    offset = 0
    while True:
        replies.room = 7  # the kernel's buffer fills after seven entries
        before = len(replies.entries)
        await operations.readdir(directory, offset, None)
        if len(replies.entries) == before:
            break
        offset = replies.entries[-1][2]
    names = [name for name, _, _ in replies.entries]
    assert names == [f"f{number:02}".encode() for number in range(25)]
    assert len({inode for _, inode, _ in replies.entries}) == 25


async def test_entries_the_kernel_had_no_room_for_are_not_listed_again_from_the_tree(tree, replies, monkeypatch):
    operations = Operations(tree)
    directory = tree.lookup(ROOT_INODE, b"dir").inode
    listings = []
    real_readdir = tree.readdir
    monkeypatch.setattr(tree, "readdir", lambda inode, after=0: listings.append(after) or real_readdir(inode, after))
    replies.room = 7
    await operations.readdir(directory, 0, None)
    replies.room = 30
    await operations.readdir(directory, replies.entries[-1][2], None)
    assert [name for name, _, _ in replies.entries] == [f"f{number:02}".encode() for number in range(25)]
    assert listings == [0]  # the second call sent what the first built
    replies.room = 3
    await operations.readdir(directory, 0, None)  # rewinddir: listed again
    await operations.readdir(directory, replies.entries[5][2], None)  # another offset: listed again
    await operations.releasedir(directory)
    assert listings == [0, 0, replies.entries[5][2]] and operations._unsent == {}


async def test_reads_answer_bytes_and_writes_are_refused(tree):
    operations = Operations(tree)
    inode = tree.lookup(tree.lookup(ROOT_INODE, b"dir").inode, b"f03").inode
    assert await fuse_errno(operations.open(inode, os.O_WRONLY, ROOT)) == errno.EROFS
    info = await operations.open(inode, os.O_RDONLY, ROOT)
    assert await operations.read(info.fh, 0, 100) == b"content 3"
    assert await operations.read(info.fh, 8, 100) == b"3"
    await operations.release(info.fh)
    assert await fuse_errno(operations.read(info.fh, 0, 1)) == errno.EBADF


async def test_a_failed_read_answers_its_errno_and_counts_as_an_error(tree):
    gate = threading.Event()
    gate.set()
    offline = tree.file(ROOT_INODE, b"offline", reader=GatedReader(gate, error=MediaUnavailable("tape X is vaulted")))
    operations = Operations(tree)
    info = await operations.open(offline.inode, os.O_RDONLY, ROOT)
    assert await fuse_errno(operations.read(info.fh, 0, 10)) == errno.ENOMEDIUM
    assert operations.statistics.to_dict()["errors"] == 1


async def test_an_unexpected_error_is_eio_and_the_adapter_goes_on(tree):
    broken = tree.file(ROOT_INODE, b"broken")

    def explode(node):
        raise RuntimeError("a bug")

    operations = Operations(tree)
    tree.reader = explode
    assert await fuse_errno(operations.open(broken.inode, os.O_RDONLY, ROOT)) == errno.EIO
    assert (await operations.lookup(ROOT_INODE, b"dir", ROOT)).st_ino


async def test_fifty_reads_waiting_for_a_tape_do_not_hold_up_another_read(tree):
    gate = threading.Event()
    waiting = tree.file(ROOT_INODE, b"vaulted", reader=GatedReader(gate, b"late" * 10))
    ready = threading.Event()
    ready.set()
    loaded = tree.file(ROOT_INODE, b"loaded", reader=GatedReader(ready, b"now" * 10))
    operations = Operations(tree)
    results = []

    async def read(inode):
        info = await operations.open(inode, os.O_RDONLY, ROOT)
        results.append(await operations.read(info.fh, 0, 4))

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(read, waiting.inode)
        await trio.sleep(0.2)
        started = time.monotonic()
        with trio.fail_after(5):
            await read(loaded.inode)
        assert time.monotonic() - started < 2 and results == [b"nown"]
        gate.set()
    assert results.count(b"late") == 50


async def test_xattrs_are_answered_and_acls_and_labels_are_not_supported(tree):
    operations = Operations(tree)
    # Without FUSE_POSIX_ACL the kernel hands our "not supported" to `ls`, which stops asking.
    assert not Operations.enable_acl
    tagged = tree.lookup(ROOT_INODE, b"tagged").inode
    assert await operations.getxattr(tagged, b"user.note", ROOT) == b"kept"
    assert await operations.listxattr(tagged, ROOT) == [b"user.note"]
    for name in (b"system.posix_acl_access", b"system.posix_acl_default", b"security.selinux"):
        assert await fuse_errno(operations.getxattr(tagged, name, ROOT)) == errno.EOPNOTSUPP
    assert await fuse_errno(operations.getxattr(tagged, b"user.absent", ROOT)) == pyfuse3.ENOATTR
    assert await fuse_errno(operations.getxattr(tagged, b"security.capability", ROOT)) == pyfuse3.ENOATTR
    assert await fuse_errno(Operations(tree, xattrs=False).getxattr(tagged, b"user.note", ROOT)) == errno.ENOSYS
