import hashlib
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapefs.datastore
from tapefs.datastore.chunker import Chunker
from tests.helpers.pbs_reference import lcg_bytes

T1_DATA = b"".join(struct.pack("<I", i) for i in range(262144))


def cut_points(data: bytes, average: int, piece_size: int | None = None) -> list[int]:
    chunker = Chunker(average)
    ends = []
    piece_size = piece_size or len(data)
    for offset in range(0, len(data), piece_size):
        ends.extend(offset + cut for cut in chunker.scan(data[offset : offset + piece_size]))
    if not ends or ends[-1] != len(data):
        ends.append(len(data))
    return ends


def test_t1_upstream_counter_buffer(vectors):
    assert cut_points(T1_DATA, 64 << 10) == vectors["T1"]


def test_t3_zeros_cut_at_max(vectors):
    assert cut_points(bytes(1 << 20), 64 << 10) == vectors["T3"]


@pytest.mark.parametrize("piece_size", [1, 63, 64, 65, 4096, 100003])
def test_feeding_in_pieces_gives_same_cuts(vectors, piece_size):
    data = T1_DATA if piece_size > 1 else T1_DATA[:300000]
    expected = [end for end in vectors["T1"] if end < len(data)] + [len(data)]
    assert cut_points(data, 64 << 10, piece_size) == expected


@given(pieces=st.lists(st.integers(min_value=1, max_value=200000), min_size=1, max_size=30))
@settings(max_examples=30, deadline=None)
def test_arbitrary_piece_boundaries(vectors, pieces):
    chunker = Chunker(64 << 10)
    ends = []
    offset = 0
    for size in pieces:
        if offset >= len(T1_DATA):
            break
        ends.extend(offset + cut for cut in chunker.scan(T1_DATA[offset : offset + size]))
        offset += size
    # the final end in the vector is the end of the data, not a cut the chunker reports
    assert ends == [end for end in vectors["T1"][:-1] if end <= offset]


def test_pending_counts_bytes_of_open_chunk():
    chunker = Chunker(64 << 10)
    assert chunker.scan(bytes(1000)) == []
    assert chunker.pending == 1000
    chunker.reset()
    assert chunker.pending == 0


@pytest.mark.parametrize("average", [0, 100, 3 << 10, 1 << 31])
def test_rejects_bad_average(average):
    with pytest.raises(ValueError):
        Chunker(average)


@pytest.mark.slow
def test_t2_lcg_stream(vectors):
    data = lcg_bytes(42, 8 << 20)
    assert cut_points(data, 64 << 10) == vectors["T2"]
    assert cut_points(data, 64 << 10, 1 << 20) == vectors["T2"]


@pytest.mark.slow
def test_t4_lcg_stream_4mib_average(vectors):
    assert cut_points(lcg_bytes(7, 40 << 20), 4 << 20) == vectors["T4"]


def test_buzhash_table_checksum():
    # the spec fixes the table by the SHA-256 of its 256 values as u32 LE; the C source holds it
    source = (Path(tapefs.datastore.__file__).parent / "_chunker.c").read_text()
    table_text = source.split("BUZHASH_TABLE[256] = {", 1)[1].split("};", 1)[0]
    values = [int(word, 16) for word in table_text.replace(",", " ").split()]
    assert len(values) == 256
    assert hashlib.sha256(struct.pack("<256I", *values)).hexdigest() == (
        "5b52080d38287da9d2e278466e3e0db7ec98e5e8b226f50612a56fa012b1f660"
    )
