"""A small in-memory stand-in for the mount's Tree: what `Operations` asks of it (node, lookup,
readdir with stable offsets, reader, getxattr), so the FUSE adapter is driven without a kernel
mount, catalogs or drives."""
from __future__ import annotations

import stat
import threading

from tapefs.mount.errors import MountReadError
from tapefs.mount.tree import ROOT_INODE, BytesReader, FileReader, Node, NodeNotFound, NotADirectory, NotAFile


class GatedReader(FileReader):
    """A read that waits for `gate` (a tape not in the library), then answers or fails."""

    def __init__(self, gate: threading.Event, data: bytes = b"", error: MountReadError | None = None):
        self.gate, self.data, self.error = gate, data, error

    def read(self, offset: int, length: int) -> bytes:
        self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.data[offset:offset + length]


class FakeTree:
    def __init__(self):
        self.nodes = {ROOT_INODE: Node(ROOT_INODE, b"", stat.S_IFDIR | 0o555, nlink=2, children=[])}
        self.readers: dict[int, FileReader] = {}

    def add(self, parent: int, name: bytes, mode: int, reader: FileReader | None = None, **fields) -> Node:
        inode = max(self.nodes) + 1
        node = Node(inode, name, mode, children=[] if stat.S_ISDIR(mode) else None, **fields)
        self.nodes[inode] = node
        self.nodes[parent].children.append(inode)
        if reader is not None:
            self.readers[inode] = reader
        return node

    def file(self, parent: int, name: bytes, data: bytes = b"", reader: FileReader | None = None, **fields) -> Node:
        reader = reader or BytesReader(data)
        return self.add(parent, name, stat.S_IFREG | 0o444, reader, size=len(data), **fields)

    def node(self, inode: int) -> Node:
        try:
            return self.nodes[inode]
        except KeyError:
            raise NodeNotFound(f"inode {inode}") from None

    def lookup(self, parent_inode: int, name: bytes) -> Node:
        for inode in self._children(parent_inode):
            if self.nodes[inode].name == name:
                return self.nodes[inode]
        raise NodeNotFound(name.decode(errors="replace"))

    def readdir(self, inode: int, after: int = 0):
        children = self._children(inode)
        for position in range(after, len(children)):
            yield self.nodes[children[position]], position + 1

    def reader(self, node: Node) -> FileReader:
        if node.is_dir:
            raise NotAFile(f"inode {node.inode} is a directory")
        return self.readers[node.inode]

    def getxattr(self, inode: int, name: bytes) -> bytes | None:
        return self.node(inode).xattrs.get(name)

    def _children(self, inode: int) -> list[int]:
        node = self.node(inode)
        if not node.is_dir:
            raise NotADirectory(f"inode {inode} is not a directory")
        return node.children
