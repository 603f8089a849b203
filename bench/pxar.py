"""Encode, decode, random-access and extract throughput of tapefs.pxar.

    .venv/bin/python bench/pxar.py [--tree DIR] [--size-mb N] [--files N] [--extract-to DIR]

Without --tree, a synthetic tree of --size-mb MiB is generated: --files small files (0-64 KiB)
spread over directories plus a few large ones holding the rest.  MB/s figures are archive bytes
per second (1 MB = 10^6 bytes).
"""

import argparse
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tapefs.pxar.accessor import Accessor  # noqa: E402
from tapefs.pxar.catalog import CatalogWriter  # noqa: E402
from tapefs.pxar.decoder import Decoder  # noqa: E402
from tapefs.pxar.encoder import encode_tree  # noqa: E402
from tapefs.pxar.entry import Kind  # noqa: E402
from tapefs.pxar.extract import extract  # noqa: E402
from tapefs.pxar.source import FileSource  # noqa: E402


class _Discard:
    def write(self, data):
        return len(data)


def make_tree(root: str, size_mb: int, files: int) -> None:
    rng = random.Random(2025)
    small_total = 0
    for index in range(files):
        directory = os.path.join(root, f"d{index % 37:02d}", f"s{index % 5}")
        os.makedirs(directory, exist_ok=True)
        size = rng.randrange(0, 65536)
        small_total += size
        with open(os.path.join(directory, f"f{index:06d}"), "wb") as file:
            file.write(rng.randbytes(size))
    remaining = max(0, size_mb * 2**20 - small_total)
    os.makedirs(os.path.join(root, "large"), exist_ok=True)
    block = rng.randbytes(2**20)
    for index in range(4):
        with open(os.path.join(root, "large", f"big{index}"), "wb") as file:
            for _ in range(remaining // 4 // len(block)):
                file.write(block)


def measure(label: str, size: int, action) -> float:
    start = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - start
    print(f"{label:<34} {size / 1e6:9.1f} MB in {elapsed:6.2f} s = {size / 1e6 / elapsed:7.1f} MB/s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", help="directory to archive (default: a synthetic tree)")
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--files", type=int, default=4000)
    parser.add_argument("--extract-to", help="parent directory for the extraction test "
                        "(default: the scratch directory; /dev/shm separates CPU from disk)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/var/tmp")) as scratch:
        tree = args.tree
        if tree is None:
            tree = os.path.join(scratch, "tree")
            make_tree(tree, args.size_mb, args.files)
        archive_path = os.path.join(scratch, "tree.pxar")
        with open(archive_path, "wb") as archive:
            size = encode_tree(tree, archive)
        print(f"tree {tree}: archive {size / 1e6:.1f} MB")

        measure("encode (to /dev/null)", size, lambda: encode_tree(tree, _Discard()))
        catalog = CatalogWriter(_Discard())
        catalog.start_directory(b"root.pxar.didx")
        measure("encode + catalog", size, lambda: encode_tree(tree, _Discard(), catalog))

        def decode(read_contents: bool) -> list[bytes]:
            decoder = Decoder(FileSource(archive_path))
            paths = []
            for entry in decoder:
                paths.append(entry.path)
                if read_contents and entry.kind is Kind.FILE:
                    for _ in decoder.iter_content(entry):
                        pass
            return paths

        paths = measure("decode metadata + contents", size, lambda: decode(True))
        print(f"({len(paths)} entries)")
        measure("decode metadata only", size, lambda: decode(False))

        accessor = Accessor(FileSource(archive_path))
        sample = random.Random(1).sample(paths, min(2000, len(paths)))
        start = time.perf_counter()
        for path in sample:
            accessor.lookup(path)
        elapsed = time.perf_counter() - start
        print(f"{'accessor lookups':<34} {len(sample) / elapsed:9.0f} lookups/s")

        target = os.path.join(args.extract_to or scratch, f"restored-{os.getpid()}")
        try:
            stats = measure("extract", size,
                            lambda: extract(Decoder(FileSource(archive_path)), target))
            print(f"({stats.entries} entries extracted into {target})")
        finally:
            shutil.rmtree(target, ignore_errors=True)


if __name__ == "__main__":
    main()
