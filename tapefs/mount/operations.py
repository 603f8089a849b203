"""The pyfuse3 adapter: FUSE requests in, `Tree` calls out, domain errors to errno.

Catalog queries are short and indexed, so they run on the trio loop; reads may wait minutes for a
drive, so they run in threads and the loop keeps answering `ls` meanwhile. Each read gets a thread
of its own rather than a slot of a shared pool: a read waiting for a vaulted tape must not keep a
read of cached data waiting (pyfuse3's worker tasks, `max_tasks`, bound how many run at once).
No lookup counts are kept: every inode can be rebuilt from its number (see tree.py), so a
`forget` has nothing to drop.

Permissions: the kernel checks modes and owners itself (`default_permissions`); lookup, opendir
and open check them again against the caller, so that without that option no one lists a
directory, finds a name or opens a file its mode forbids, and a refused open starts no tape read.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import threading
import time
from collections import OrderedDict

import pyfuse3
import trio

from tapefs.mount.access import READ, SEARCH, caller_groups, permits
from tapefs.mount.errors import MountReadError
from tapefs.mount.tree import ENTRY_BIT, FileReader, Node, Tree, TreeError

log = logging.getLogger(__name__)

#: Archive contents never change: the kernel may keep their names and attributes for long.
ARCHIVE_TIMEOUT = 3600.0
#: Views change when a backup or catalog command runs during the mount.
VIEW_TIMEOUT = 5.0
BLOCK_SIZE = 512
#: Attributes this file system does not support at all: it exports no ACLs, and no archive format
#: it reads stores SELinux labels (pxar keeps user.*, trusted.*, security.capability and
#: security.NTACL only).
UNSUPPORTED_XATTRS = (b"system.posix_acl_access", b"system.posix_acl_default", b"security.selinux")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


class ReadStatistics:
    """What the status file reports about reads through the mount."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reads = 0
        self.bytes = 0
        self.errors = 0
        self.started = time.monotonic()

    def add(self, size: int) -> None:
        with self._lock:
            self.reads += 1
            self.bytes += size

    def failed(self) -> None:
        with self._lock:
            self.errors += 1

    def to_dict(self) -> dict:
        with self._lock:
            elapsed = max(time.monotonic() - self.started, 1e-9)
            return {
                "reads": self.reads,
                "bytes": self.bytes,
                "errors": self.errors,
                "mean-mb-per-s": round(self.bytes / elapsed / 1e6, 3),
            }


class Operations(pyfuse3.Operations):
    #: No FUSE_POSIX_ACL: with it the kernel turns every "not supported" into "no ACL" and asks
    #: again for each new file (one round trip per file of `ls -lR`, measured), where without
    #: it our EOPNOTSUPP reaches `ls`, which then stops asking on this file system.
    enable_acl = False

    def __init__(self, tree: Tree, xattrs: bool = True):
        super().__init__()
        self.tree = tree
        #: Without: the first getxattr answers ENOSYS and the kernel stops asking (ls -l sends two
        #: per file otherwise, each a round trip through this process).
        self.xattrs = xattrs
        self.statistics = ReadStatistics()
        self._handles: dict[int, FileReader] = {}
        #: Per directory handle: the entries the kernel's last readdir buffer had no room for, and
        #: the offset a call continuing there asks from (built again, they cost `find` 18 %).
        self._unsent: OrderedDict[int, tuple[int, list[tuple[Node, int]]]] = OrderedDict()
        self._handle_numbers = itertools.count(1)
        #: Reads handed to a thread and not answered yet (a stop waits for them).
        self.reads_in_flight = 0

    # -- helpers ---------------------------------------------------------------------------

    def _call(self, function, *args):
        """Run a tree call; its domain error becomes the errno it carries."""
        try:
            return function(*args)
        except (TreeError, MountReadError) as error:
            if error.errno not in (errno.ENOENT, pyfuse3.ENOATTR):
                log.warning("%s", error)
            raise pyfuse3.FUSEError(error.errno) from None
        except pyfuse3.FUSEError:
            raise
        except Exception:
            # Anything else would end pyfuse3's loop and the mount with it.
            log.exception("unexpected error in %s", getattr(function, "__name__", function))
            raise pyfuse3.FUSEError(errno.EIO) from None

    @staticmethod
    def _check_access(node: Node, ctx: pyfuse3.RequestContext, want: int) -> None:
        if not permits(node.mode, node.uid, node.gid, ctx.uid, lambda: caller_groups(ctx.pid, ctx.gid), want):
            raise pyfuse3.FUSEError(errno.EACCES)

    def attributes(self, node: Node) -> pyfuse3.EntryAttributes:
        attrs = pyfuse3.EntryAttributes()
        attrs.st_ino = node.inode
        attrs.generation = node.generation
        attrs.st_mode = node.mode
        attrs.st_nlink = node.nlink
        attrs.st_uid = node.uid
        attrs.st_gid = node.gid
        attrs.st_rdev = node.rdev
        attrs.st_size = node.size
        attrs.st_blksize = 128 * 1024
        attrs.st_blocks = (node.size + BLOCK_SIZE - 1) // BLOCK_SIZE
        attrs.st_atime_ns = attrs.st_mtime_ns = attrs.st_ctime_ns = node.mtime_ns
        timeout = ARCHIVE_TIMEOUT if node.inode & ENTRY_BIT else VIEW_TIMEOUT
        attrs.entry_timeout = attrs.attr_timeout = timeout
        return attrs

    # -- metadata --------------------------------------------------------------------------

    async def lookup(self, parent_inode, name, ctx):
        if ctx.uid != 0:
            # root searches everything: its lookups, the bulk of `find` and `ls -lR`, skip the check
            self._check_access(self._call(self.tree.node, parent_inode), ctx, SEARCH)
        return self.attributes(self._call(self.tree.lookup, parent_inode, name))

    async def getattr(self, inode, ctx=None):
        return self.attributes(self._call(self.tree.node, inode))

    async def readlink(self, inode, ctx):
        node = self._call(self.tree.node, inode)
        if node.target is None:
            raise pyfuse3.FUSEError(errno.EINVAL)
        return node.target

    async def opendir(self, inode, ctx):
        node = self._call(self.tree.node, inode)
        if not node.is_dir:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        self._check_access(node, ctx, READ)
        return inode

    async def readdir(self, fh, start_id, token):
        resumed, unsent = self._unsent.pop(fh, (None, None))
        if unsent is None or resumed != start_id:
            unsent = self._call(lambda: list(_take_listing(self.tree.readdir(fh, start_id))))
        for number, (node, offset) in enumerate(unsent):
            if not pyfuse3.readdir_reply(token, node.name, self.attributes(node), offset):
                self._unsent[fh] = (start_id if number == 0 else unsent[number - 1][1], unsent[number:])
                while len(self._unsent) > UNSENT_LISTINGS:
                    self._unsent.popitem(last=False)
                return

    async def releasedir(self, fh):
        self._unsent.pop(fh, None)

    async def statfs(self, ctx):
        data = pyfuse3.StatvfsData()
        data.f_bsize = data.f_frsize = BLOCK_SIZE
        data.f_namemax = 255
        return data

    async def getxattr(self, inode, name, ctx):
        if not self.xattrs:
            raise pyfuse3.FUSEError(errno.ENOSYS)
        if name in UNSUPPORTED_XATTRS:
            # "Not supported" rather than "no such attribute": `ls -l` asks for these of every
            # file until one answers so, then never again on this file system (coreutils keeps
            # the device) - a round trip through this process saved per file listed.
            raise pyfuse3.FUSEError(errno.EOPNOTSUPP)
        value = self._call(self.tree.getxattr, inode, name)
        if value is None:
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)
        return value

    async def listxattr(self, inode, ctx):
        if not self.xattrs:
            raise pyfuse3.FUSEError(errno.ENOSYS)
        return list(self._call(self.tree.node, inode).xattrs)

    # -- contents --------------------------------------------------------------------------

    async def open(self, inode, flags, ctx):
        if flags & WRITE_FLAGS:
            raise pyfuse3.FUSEError(errno.EROFS)
        node = self._call(self.tree.node, inode)
        self._check_access(node, ctx, READ)
        reader = self._call(self.tree.reader, node)
        fh = next(self._handle_numbers)
        self._handles[fh] = reader
        # Archived contents never change: let the page cache keep them between opens.
        return pyfuse3.FileInfo(fh=fh, direct_io=node.direct_io, keep_cache=not node.direct_io)

    async def read(self, fh, off, size):
        reader = self._handles.get(fh)
        if reader is None:
            raise pyfuse3.FUSEError(errno.EBADF)
        try:
            # A blocking reader's data may be in memory already: then no thread is needed.
            data = self._call(reader.read_at_once if reader.blocking else reader.read, off, size)
            if data is None:
                self.reads_in_flight += 1
                try:
                    data = await trio.to_thread.run_sync(
                        self._call, reader.read, off, size, limiter=trio.CapacityLimiter(1)
                    )
                finally:
                    self.reads_in_flight -= 1
        except pyfuse3.FUSEError:
            self.statistics.failed()
            raise
        self.statistics.add(len(data))
        return data

    async def release(self, fh):
        reader = self._handles.pop(fh, None)
        if reader is not None:
            reader.close()


#: Entries handed to the kernel per readdir call at most; it asks again with the last offset.
READDIR_BATCH = 1000
#: Directory handles whose unsent entries are kept (the handle is the directory's inode).
UNSENT_LISTINGS = 64


def _take_listing(listing):
    return itertools.islice(listing, READDIR_BATCH)
