import ast
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
