"""Hostile pxar archives (reliability campaign R5), written with the real encoder where the format
allows the trick and patched afterwards where only a broken writer could produce it."""

from __future__ import annotations

import io
import stat

from tapefs.pxar.encoder import Encoder
from tapefs.pxar.entry import Metadata

FILE = Metadata(mode=stat.S_IFREG | 0o644, mtime_secs=1700000000)
DIRECTORY = Metadata(mode=stat.S_IFDIR | 0o755, mtime_secs=1700000000)
SYMLINK = Metadata(mode=stat.S_IFLNK | 0o777, mtime_secs=1700000000)
CHAR_DEVICE = Metadata(mode=stat.S_IFCHR | 0o666, mtime_secs=1700000000)


def _archive(build) -> bytes:
    out = io.BytesIO()
    encoder = Encoder(out, DIRECTORY)
    build(encoder)
    encoder.finish()
    return out.getvalue()


def symlink_then_directory(outside: bytes) -> bytes:
    """`a` a symlink to a directory outside, then a directory `a` (the same name again) holding a
    file: a naive extractor writes the file through the link."""

    def build(encoder: Encoder) -> None:
        encoder.add_symlink(b"a", SYMLINK, outside)
        encoder.begin_directory(b"a", DIRECTORY)
        encoder.add_file(b"x", FILE, 3, b"bad")
        encoder.end_directory()

    return _archive(build)


def hardlink_outside(target_path: bytes) -> bytes:
    """A file and a hardlink whose recorded target path leaves the archive."""

    def build(encoder: Encoder) -> None:
        offset = encoder.add_file(b"f", FILE, 4, b"file")
        encoder.add_hardlink(b"h", target_path, offset)

    return _archive(build)


def absolute_and_climbing_symlinks() -> bytes:
    """Symlinks out of the tree and a device node: restored as what they are, never followed."""

    def build(encoder: Encoder) -> None:
        encoder.add_symlink(b"abs", SYMLINK, b"/etc/passwd")
        encoder.add_device(b"null", CHAR_DEVICE, 1, 3)
        encoder.add_file(b"plain", FILE, 5, b"plain")
        encoder.add_symlink(b"up", SYMLINK, b"../../../../../../../../tmp")

    return _archive(build)


def named(name: bytes) -> bytes:
    """A file with a name no writer may give (`..`, with `/`, with NUL): written as `n` * len and
    patched, so only the name check can catch it (the goodbye hash then mismatches as well)."""
    placeholder = b"n" * len(name)

    def build(encoder: Encoder) -> None:
        encoder.add_file(placeholder, FILE, 3, b"bad")

    data = _archive(build)
    return data.replace(placeholder + b"\0", name + b"\0", 1)


def huge_file(size: int) -> bytes:
    """A file whose size field says `size` bytes but whose archive ends long before."""

    def build(encoder: Encoder) -> None:
        encoder.add_file(b"big", FILE, 8, b"8 bytes.")

    data = bytearray(_archive(build))
    payload = data.index(b"8 bytes.") - 16
    data[payload + 8 : payload + 16] = (size + 16).to_bytes(8, "little")
    return bytes(data)
