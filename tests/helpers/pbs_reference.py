"""Where the PBS reference fixtures live, and the LCG byte stream they were generated from."""

from pathlib import Path

#: the fixtures live in the repository (tests/fixtures/pbs/README.md says what each one is)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pbs"
GENERATED = FIXTURES / "generated"
BLOBS = GENERATED / "blobs"
ORACLE = FIXTURES / "oracle"
UPSTREAM = FIXTURES / "upstream"

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
