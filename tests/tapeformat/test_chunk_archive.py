"""Chunk archives: entry bytes, offsets good for one LOCATE, early warning and the physical end."""
import hashlib

import pytest

from tapefs.tapeformat import magic
from tapefs.tapeformat.block import BLOCK_SIZE, INCOMPLETE, PAYLOAD_SIZE, BlockedWriter
from tapefs.tapeformat.block_device import Mark
from tapefs.tapeformat.chunk_archive import (
    ChunkArchiveReader,
    ChunkArchiveWriter,
    ChunkLocation,
    ChunkRunReader,
    build_entry_header,
    read_chunk_at,
)
from tapefs.tapeformat.content_header import pretty_json, write_content_start
from tapefs.tapeformat.errors import ArchiveAborted, BadMagic, HeaderError, MissingEndMarker, TapeFormatError
from tapefs.tapeformat.memory_tape import MemoryTape
from tapefs.tapeformat.tape_file import open_tape_file

MiB = 1024 * 1024


def chunk(n: int, size: int) -> tuple[bytes, bytes]:
    blob = hashlib.shake_256(n.to_bytes(4, "little")).digest(size)
    return hashlib.sha256(blob).digest(), blob


def read_archive(tape, file_number):
    tape.locate_file(file_number)
    reader = ChunkArchiveReader(open_tape_file(tape))
    return list(reader), reader


class CountingTape(MemoryTape):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.locates = self.reads = 0
        self.batches: list[int] = []

    def locate_block(self, block_number):
        self.locates += 1
        super().locate_block(block_number)

    def read_block(self):
        self.reads += 1
        return super().read_block()

    def read_blocks(self, count):
        self.batches.append(count)
        return super().read_blocks(count)


def test_entry_header_bytes():
    assert build_entry_header(bytes(range(32)), 0x0102) == (
        bytes.fromhex("48576df2de428fdc") + bytes(range(32)) + bytes.fromhex("0201000000000000"))


def test_round_trip_and_header_json():
    tape = MemoryTape()
    chunks = [chunk(n, 1000 + n * 50000) for n in range(12)]
    writer = ChunkArchiveWriter(tape, "store1")
    for digest, blob in chunks:
        writer.add_chunk(digest, blob)
    [part] = writer.finish()
    assert (part.file_number, part.first_block, part.part_number, part.continued) == (0, 0, 0, False)
    assert tape.objects[0][16 + 48:16 + 48 + 23] == pretty_json({"store": "store1"}) == b'{\n  "store": "store1"\n}'
    got, reader = read_archive(tape, 0)
    assert got == chunks and reader.store == "store1" and not reader.incomplete


def test_every_recorded_offset_reads_its_chunk_after_one_locate():
    tape = CountingTape()
    tape.write_filemark()  # the archive is file 1, its block 0 is object 1
    chunks = [chunk(n, size) for n, size in enumerate([10, PAYLOAD_SIZE - 100, 3 * PAYLOAD_SIZE, 7, 500000])]
    writer = ChunkArchiveWriter(tape, "s")
    locations = [writer.add_chunk(*c) for c in chunks]
    [part] = writer.finish()
    assert (part.file_number, part.first_block) == (1, 1)
    assert locations[0].offset == 48 + len(b'{\n  "store": "s"\n}')
    # Entry 2 starts 100 - 48 - 10 - 18... bytes before a block boundary: its header straddles it.
    assert locations[1].offset + 48 + locations[1].size == locations[2].offset
    for location, (digest, blob) in zip(locations, chunks):
        tape.locates = 0
        assert read_chunk_at(tape, part.file_number, part.first_block, location) == blob
        assert tape.locates == 1
    # A scan finds the same locations, so a rebuilt catalog gets the offsets back.
    _, reader = read_archive(tape, 1)
    assert reader.locations == locations and (reader.file_number, reader.first_block) == (1, 1)


def test_read_chunk_at_names_block_of_wrong_entry():
    tape = MemoryTape()
    writer = ChunkArchiveWriter(tape, "s")
    first = writer.add_chunk(*chunk(1, 100))
    writer.add_chunk(*chunk(2, 100))
    writer.finish()
    wrong = first.__class__(chunk(2, 100)[0], first.offset, first.size)
    with pytest.raises(Exception, match="tape file 0, block 0: entry holds chunk"):
        read_chunk_at(tape, 0, 0, wrong)


def test_early_warning_cuts_after_a_whole_chunk_and_continues_on_next_tape():
    first = MemoryTape(capacity=4 * MiB, early_warning=2 * MiB)
    second = MemoryTape()
    finished = []

    def next_volume(part):
        finished.append(part)
        return second

    chunks = [chunk(n, 300000) for n in range(20)]
    writer = ChunkArchiveWriter(first, "s", next_volume=next_volume)
    locations = [writer.add_chunk(*c) for c in chunks]
    parts = writer.finish()
    assert [p.part_number for p in parts] == [0, 1] and finished == parts[:1]
    assert parts[0].continued and not parts[1].continued
    assert parts[0].content_uuid == parts[1].content_uuid
    # The end block of the tape that met early warning carries INCOMPLETE.
    assert first.objects[-2][8] & INCOMPLETE and first.objects[-1] is None
    on_first, reader = read_archive(first, 0)
    assert reader.incomplete and reader.truncated_entry is None
    on_second, reader = read_archive(second, 0)
    assert not reader.incomplete
    tape_file = (second.rewind(), open_tape_file(second))[1]
    assert (tape_file.header.part_number, tape_file.header.uuid) == (1, parts[0].content_uuid)
    assert on_first + on_second == chunks
    assert [c.digest for c in parts[0].chunks] == [d for d, _ in on_first]
    # Locations belong to the part they were written in.
    for location, (digest, blob) in zip(locations, chunks):
        part = next(p for p in parts if location in p.chunks)
        tape = first if part.part_number == 0 else second
        assert read_chunk_at(tape, part.file_number, part.first_block, location) == blob


def test_early_warning_without_next_volume_closes_archive_as_pbs_does():
    tape = MemoryTape(capacity=4 * MiB, early_warning=2 * MiB)
    writer = ChunkArchiveWriter(tape, "s")
    written = []
    for n in range(20):
        if writer.tape_full:
            break
        written.append(chunk(n, 300000))
        writer.add_chunk(*written[-1])
    with pytest.raises(RuntimeError, match="early warning: finish this archive"):
        writer.add_chunk(*chunk(99, 10))
    [part] = writer.finish()
    assert writer.tape_full and not part.continued and 3 < len(written) < 20
    got, reader = read_archive(tape, 0)
    assert got == written and not reader.incomplete
    with pytest.raises(RuntimeError, match="already finished"):
        writer.add_chunk(*chunk(99, 10))


def test_archive_ending_in_the_early_warning_zone_is_finished_without_a_new_part():
    tape = MemoryTape(capacity=4 * MiB, early_warning=2 * MiB)
    writer = ChunkArchiveWriter(tape, "s", next_volume=lambda part: pytest.fail("no tape change expected"))
    chunks = [chunk(n, 300000) for n in range(7)]  # the last one reaches the zone
    for c in chunks:
        writer.add_chunk(*c)
    assert writer.tape_full
    [part] = writer.finish()
    got, reader = read_archive(tape, 0)
    assert got == chunks and not reader.incomplete and not part.continued


def test_physical_end_aborts_only_the_open_archive():
    tape = MemoryTape(capacity=3 * MiB + 1000)  # a drive that never warned (never exactly full)
    earlier = ChunkArchiveWriter(tape, "s")
    earlier_chunks = [chunk(n, 100000) for n in range(5)]
    for c in earlier_chunks:
        earlier.add_chunk(*c)
    earlier.finish()
    writer = ChunkArchiveWriter(tape, "s")
    attempted = []
    with pytest.raises(ArchiveAborted) as aborted:
        for n in range(100):
            attempted.append(chunk(100 + n, 200000))
            writer.add_chunk(*attempted[-1])
    part = aborted.value.part
    # Everything of the aborted part is to be written again, the chunk that hit the end included.
    assert part.file_number == 1 and [c.digest for c in part.chunks] == [d for d, _ in attempted]
    assert read_archive(tape, 0)[0] == earlier_chunks
    with pytest.raises(MissingEndMarker, match="tape file 1"):
        read_archive(tape, 1)


def write_stream(tape, stream):
    writer = BlockedWriter(tape)
    write_content_start(writer, magic.CHUNK_ARCHIVE_1_1, b'{"store": "s"}')
    writer.write(stream)
    writer.finish()


def test_truncated_last_entry_of_a_pbs_archive_is_reported_not_hidden():
    tape = MemoryTape()
    digest, blob = chunk(1, 100)
    write_stream(tape, build_entry_header(digest, 100) + blob + build_entry_header(b"\x07" * 32, 1000) + b"x" * 500)
    got, reader = read_archive(tape, 0)
    assert got == [(digest, blob)] and reader.truncated_entry == b"\x07" * 32


def test_wrong_entry_magic_names_file_and_block():
    tape = MemoryTape()
    write_stream(tape, b"x" * PAYLOAD_SIZE + b"NOTMAGIC" + bytes(40))
    with pytest.raises(BadMagic, match="tape file 0, block 0: wrong chunk entry magic"):
        read_archive(tape, 0)


def test_oversized_entry_is_refused():
    tape = MemoryTape()
    write_stream(tape, build_entry_header(bytes(32), 2**40))
    with pytest.raises(HeaderError, match="exceeds"):
        read_archive(tape, 0)


def test_size_limit_counts_blocks_written_as_pbs_does():
    """PBS counts the blocks its writer has sent to the drive (256 KiB each, headers included),
    not the one being filled, and starts a new archive once that count exceeds the limit."""
    tape = MemoryTape()
    writer = ChunkArchiveWriter(tape, "s", max_size=2 * BLOCK_SIZE)
    writer.add_chunk(*chunk(1, PAYLOAD_SIZE))
    assert len(tape.objects) == 1 and not writer.size_limit_reached
    writer.add_chunk(*chunk(2, PAYLOAD_SIZE))
    # Two blocks sent, exactly the limit; the third is only being filled.
    assert len(tape.objects) == 2 and writer._writer.bytes_written > 2 * PAYLOAD_SIZE
    assert not writer.size_limit_reached
    writer.add_chunk(*chunk(3, PAYLOAD_SIZE))
    assert len(tape.objects) == 3 and writer.size_limit_reached


def test_empty_file_and_end_of_data_are_marks():
    tape = MemoryTape()
    tape.write_filemark()
    tape.rewind()
    assert open_tape_file(tape) is Mark.FILEMARK and open_tape_file(tape) is Mark.END_OF_DATA


def test_physical_end_while_closing_a_part_at_early_warning_loses_the_next_chunk_too():
    """The chunk that finds the tape at early warning first closes the part; when that close meets
    the physical end (a chunk started just before the zone and ran through it), the aborted part
    must name that chunk too. It did not, so the backup counted it as written, never wrote it, and
    a snapshot on tape lacked it (found by the reliability campaign's tape-backup-kill)."""
    tape = MemoryTape(capacity=3 * BLOCK_SIZE + 1000, early_warning=BLOCK_SIZE)
    writer = ChunkArchiveWriter(tape, "s", next_volume=lambda part: pytest.fail("the part was never closed"))
    first = chunk(1, 3 * PAYLOAD_SIZE + 1000)  # three blocks written, the rest waits in the last one
    writer.add_chunk(*first)
    assert writer.tape_full
    second = chunk(2, 1000)
    with pytest.raises(ArchiveAborted) as aborted:
        writer.add_chunk(*second)
    assert [c.digest for c in aborted.value.part.chunks] == [first[0], second[0]]
    with pytest.raises(MissingEndMarker, match="tape file 0"):
        read_archive(tape, 0)


def test_the_blocks_of_a_located_chunk_are_asked_for_at_once():
    tape = CountingTape()
    chunks = [chunk(n, 3 * PAYLOAD_SIZE + 1000) for n in range(3)]
    writer = ChunkArchiveWriter(tape, "s")
    locations = [writer.add_chunk(*c) for c in chunks]
    [part] = writer.finish()
    runs = ChunkRunReader(tape)
    for location, (_, blob) in zip(locations, chunks):
        head, rest = runs.read(part.file_number, part.first_block, location)
        assert head + rest == blob
    # Each entry's remaining blocks in one batch; the stream runs on without a LOCATE.
    assert tape.batches and all(count >= 3 for count in tape.batches) and runs.locates == 1


def test_a_chunk_the_file_is_too_short_for_fails_and_the_next_read_locates_again():
    tape = CountingTape()
    digest, blob = chunk(1, 100)
    # An entry claiming 3 blocks of blob where the file ends in the next block, then a second file.
    write_stream(
        tape, build_entry_header(digest, 100) + blob + build_entry_header(b"\x07" * 32, 3 * PAYLOAD_SIZE) + b"x" * PAYLOAD_SIZE
    )
    writer = ChunkArchiveWriter(tape, "s")
    after = writer.add_chunk(*chunk(2, 100))
    [part] = writer.finish()
    header_bytes = len(build_entry_header(digest, 100))
    short = ChunkLocation(b"\x07" * 32, 48 + len(b'{"store": "s"}') + header_bytes + 100, 3 * PAYLOAD_SIZE)
    runs = ChunkRunReader(tape)
    with pytest.raises(TapeFormatError):
        runs.read(0, 0, short)
    assert tape.batches == [3]  # read at once, then found short
    assert runs.read(part.file_number, part.first_block, after)[1] == chunk(2, 100)[1][12:]
    assert runs.locates == 2
