import ast
import os
import subprocess
from pathlib import Path

import pytest

FIXTURES = Path("/work/shared/fixtures/pbs")
GENERATED = FIXTURES / "generated"
BLOBS = GENERATED / "blobs"

LCG_MULTIPLIER = 6364136223846793005
LCG_INCREMENT = 1442695040888963407


def lcg_bytes(seed: int, length: int) -> bytes:
    """The fixtures' LCG stream: state updated before each byte, byte = (s >> 33) & 0xff."""
    state = seed
    out = bytearray(length)
    mask = (1 << 64) - 1
    for i in range(length):
        state = (state * LCG_MULTIPLIER + LCG_INCREMENT) & mask
        out[i] = (state >> 33) & 0xFF
    return bytes(out)


@pytest.fixture(scope="session")
def vectors() -> dict:
    result = {}
    for line in (GENERATED / "chunker-and-bst-vectors.txt").read_text().splitlines():
        key, value = line.split(" ", 1)
        result[key] = ast.literal_eval(value)
    return result


@pytest.fixture(scope="session")
def pattern_data() -> bytes:
    return bytes(i % 255 for i in range(100000))


def same_tree(a, b):
    """`diff -r` finds no difference, and every entry has the same mode, mtime and link count."""
    result = subprocess.run(["diff", "-r", "--no-dereference", str(a), str(b)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for dirpath, dirnames, filenames in os.walk(a):
        for name in dirnames + filenames:
            left = os.lstat(os.path.join(dirpath, name))
            right = os.lstat(os.path.join(b, os.path.relpath(dirpath, a), name))
            assert (left.st_mode, left.st_mtime_ns, left.st_nlink) == (right.st_mode, right.st_mtime_ns, right.st_nlink), name
