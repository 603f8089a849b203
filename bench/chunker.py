"""Chunker throughput: MB/s of the PBS-compatible Buzhash chunker on random data.

    .venv/bin/python bench/chunker.py [--size-mib 512] [--average-kib 4096]
"""

import argparse
import os
import time

from tapefs.datastore.chunker import Chunker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512, help="data per run (default 512)")
    parser.add_argument("--average-kib", type=int, default=4096, help="average chunk size (default 4096 = pxar)")
    parser.add_argument("--piece-kib", type=int, default=1024, help="bytes handed to scan() per call (default 1024)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    data = os.urandom(args.size_mib << 20)
    piece = args.piece_kib << 10
    best = None
    for _ in range(args.runs):
        chunker = Chunker(args.average_kib << 10)
        cuts = 0
        started = time.perf_counter()
        with memoryview(data) as view:
            for offset in range(0, len(data), piece):
                cuts += len(chunker.scan(view[offset : offset + piece]))
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    print(f"chunker: {len(data) / best / 1e6:.0f} MB/s "
          f"({args.size_mib} MiB, average chunk {args.average_kib} KiB, {cuts + 1} chunks, best of {args.runs})")


if __name__ == "__main__":
    main()
