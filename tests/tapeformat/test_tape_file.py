"""Listing a tape and getting ready to append after an interrupted write."""
import uuid

from tapefs.tapeformat import magic
from tapefs.tapeformat.block import BlockedWriter
from tapefs.tapeformat.chunk_archive import ChunkArchiveWriter
from tapefs.tapeformat.content_header import write_content_start
from tapefs.tapeformat.labels import MediaLabel, write_media_label
from tapefs.tapeformat.memory_tape import MemoryTape
from tapefs.tapeformat.snapshot_archive import write_snapshot_archive
from tapefs.tapeformat.tape_file import move_to_end_of_data, scan_files


def test_scan_lists_every_file_with_its_state():
    tape = MemoryTape(capacity=2 * 1024 * 1024, early_warning=1024 * 1024)
    write_media_label(tape, MediaLabel(uuid.UUID(int=1), "T", 1))
    tape.write_filemark()  # an empty file
    second = MemoryTape()
    write_snapshot_archive(tape, "s", "vm/1/t", lambda: [bytes(3 * 1024 * 1024)], lambda part: second)
    aborted = BlockedWriter(tape)
    write_content_start(aborted, magic.CHUNK_ARCHIVE_1_1, b'{"store": "s"}')
    aborted.write(b"x" * 300000)
    aborted.abort()
    tape.rewind()
    files = list(scan_files(tape))
    assert [f.file_number for f in files] == [0, 1, 2, 3]
    assert files[0].header.content_magic == magic.MEDIA_LABEL and files[1].header is None
    assert files[2].header.content_magic == magic.SNAPSHOT_ARCHIVE_1_1 and files[2].incomplete
    assert files[3].missing_end_marker and files[3].header is not None


def test_append_position_after_clean_end_and_on_empty_tape():
    tape = MemoryTape()
    assert move_to_end_of_data(tape) == 0
    write_media_label(tape, MediaLabel(uuid.UUID(int=1), "T", 1))
    tape.rewind()
    assert move_to_end_of_data(tape) == 1 and len(tape.objects) == 2


def test_append_position_closes_a_file_left_without_filemark():
    tape = MemoryTape()
    write_media_label(tape, MediaLabel(uuid.UUID(int=1), "T", 1))
    writer = ChunkArchiveWriter(tape, "s")
    writer.add_chunk(bytes(32), b"x" * 300000)  # crash: no end block, no filemark
    tape.rewind()
    assert move_to_end_of_data(tape) == 2
    assert tape.objects[-1] is None and tape.objects[-2] is not None
    ChunkArchiveWriter(tape, "s").finish()
    tape.rewind()
    files = list(scan_files(tape))
    assert [(f.file_number, f.missing_end_marker) for f in files] == [(0, False), (1, True), (2, False)]
