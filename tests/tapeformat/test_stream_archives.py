"""Snapshot and catalog archives: headers, versions, continuation across tapes, and the physical
end never costing a snapshot that was already finished."""
import hashlib
import uuid

import pytest

from tapefs.tapeformat import magic
from tapefs.tapeformat.block import INCOMPLETE
from tapefs.tapeformat.catalog_archive import CatalogArchiveReader, write_catalog_archive
from tapefs.tapeformat.errors import ArchiveAborted, MissingEndMarker, TapeFormatError, WrongContent
from tapefs.tapeformat.memory_tape import MemoryTape
from tapefs.tapeformat.snapshot_archive import SnapshotArchiveReader, SnapshotPath, write_snapshot_archive
from tapefs.tapeformat.tape_file import open_tape_file

MiB = 1024 * 1024


def no_next_volume(part):
    raise AssertionError(f"unexpected tape change after part {part.part_number}")


def pxar_bytes(n: int, size: int) -> bytes:
    return hashlib.shake_256(n.to_bytes(4, "little")).digest(size)


def pieces(data: bytes, size: int = 100000):
    return [data[i:i + size] for i in range(0, len(data), size)]


def open_at(tape, file_number):
    tape.locate_file(file_number)
    return open_tape_file(tape)


@pytest.mark.parametrize("path, content_magic", [
    ("vm/100/2021-01-11T10:43:48Z", magic.SNAPSHOT_ARCHIVE_1_1),
    ("ns/a/ns/b/ct/web/2024-06-05T00:00:00Z", magic.SNAPSHOT_ARCHIVE_1_2),
])
def test_snapshot_archive_version_header_and_round_trip(path, content_magic):
    tape = MemoryTape()
    data = pxar_bytes(1, 700000)
    [part] = write_snapshot_archive(tape, "store1", path, lambda: pieces(data), no_next_volume)
    block = tape.objects[0]
    body = f'{{\n  "snapshot": "{path}",\n  "store": "store1"\n}}'.encode()
    assert block[24:32] == content_magic and block[64:64 + len(body)] == body
    reader = SnapshotArchiveReader(open_at(tape, 0))
    assert (reader.snapshot, reader.store, str(reader.path)) == (path, "store1", path)
    assert reader.read() == data and part.size == 48 + len(body) + len(data)


def test_snapshot_path_parsing():
    assert SnapshotPath.parse("ns/a/vm/100/2021-01-11T10:43:48Z") == SnapshotPath(
        "ns/a", "vm", "100", "2021-01-11T10:43:48Z")
    for bad in ["vm/100", "a/vm/1/t", "ns/vm/1/t", "ns//vm/1/t"]:
        with pytest.raises(ValueError):
            SnapshotPath.parse(bad)


def test_snapshot_cut_at_early_warning_is_written_whole_on_the_next_tape():
    first = MemoryTape(capacity=3 * MiB, early_warning=2 * MiB)
    write_snapshot_archive(first, "s", "vm/1/2020-01-01T00:00:00Z", lambda: [b"kept"], no_next_volume)
    write_snapshot_archive(first, "s", "vm/9/2020-01-01T00:00:00Z", lambda: [bytes(700000)], no_next_volume)
    second = MemoryTape()
    handed_over, opened = [], []

    def next_volume(part):
        handed_over.append(part)
        return second

    def open_pxar():
        opened.append(1)
        return pieces(data)

    data = pxar_bytes(2, int(1.5 * MiB))
    [part] = write_snapshot_archive(first, "s", "vm/2/2020-01-01T00:00:00Z", open_pxar, next_volume)
    [abandoned] = handed_over
    assert abandoned.abandoned and not abandoned.continued and abandoned.file_number == 2
    assert len(opened) == 2 and (part.file_number, part.part_number, part.continued) == (0, 0, False)
    assert part.content_uuid != abandoned.content_uuid
    # The attempt on the first tape ends INCOMPLETE, right after the block that met early warning.
    assert first.objects[-2][8] & INCOMPLETE and first.used <= MiB + 2 * 262144
    # Each tape file stands on its own, as PBS's restore reads them.
    assert SnapshotArchiveReader(open_at(second, 0)).read() == data
    assert SnapshotArchiveReader(open_at(first, 0)).read() == b"kept"
    with pytest.raises(TapeFormatError, match="part 0 is incomplete"):
        SnapshotArchiveReader(open_at(first, 2)).read()


def write_across_three_tapes(data):
    """A stream bigger than a tape: cut on tape 0, written again on tape 1, continued on tape 2."""
    tapes = [MemoryTape(capacity=3 * MiB, early_warning=2 * MiB), MemoryTape(capacity=3 * MiB, early_warning=2 * MiB),
             MemoryTape()]
    tapes[2].write_filemark()  # the continuation need not be file 0
    handed_over = []

    def next_volume(part):
        handed_over.append(part)
        return tapes[len(handed_over)]

    parts = write_snapshot_archive(tapes[0], "s", "vm/1/2020-01-01T00:00:00Z", lambda: pieces(data, 3 * MiB),
                                   next_volume)
    return tapes, parts, handed_over


def test_snapshot_bigger_than_a_tape_continues_in_parts_and_reads_whole():
    data = pxar_bytes(2, 5 * MiB)
    tapes, parts, handed_over = write_across_three_tapes(data)
    assert handed_over[0].abandoned and handed_over[1] is parts[0]
    assert [(p.part_number, p.file_number, p.continued) for p in parts] == [(0, 0, True), (1, 1, False)]
    assert len({p.content_uuid for p in parts}) == 1
    assert tapes[1].objects[-2][8] & INCOMPLETE and tapes[1].used < MiB + 3 * 262144
    wanted = []

    def next_part(header):
        wanted.append(header.part_number + 1)
        tapes[2].locate_file(parts[header.part_number + 1].file_number)
        return tapes[2]

    reader = SnapshotArchiveReader(open_at(tapes[1], 0), next_part)
    assert reader.read() == data and wanted == [1]


def test_continuation_reader_checks_the_next_part_belongs_to_the_archive():
    tapes, parts, _ = write_across_three_tapes(pxar_bytes(3, 5 * MiB))
    other = MemoryTape()
    write_snapshot_archive(other, "s", "vm/2/2020-01-01T00:00:00Z", lambda: [b"x"], no_next_volume)
    reader = SnapshotArchiveReader(open_at(tapes[1], 0), lambda header: (other.rewind(), other)[1])
    with pytest.raises(WrongContent, match="expected part 1 of snapshot archive v1.1"):
        reader.read()
    with pytest.raises(TapeFormatError, match="starts with part 1"):
        SnapshotArchiveReader(open_at(tapes[2], 1))


def test_physical_end_never_loses_a_finished_snapshot():
    # No early warning at all: the worst case, the drive only says "full" when it is.
    # Every snapshot takes 2 blocks; the 7th gets its first block on tape and not its second.
    tape, spare = MemoryTape(capacity=13 * 262144), MemoryTape()
    finished = {}
    with pytest.raises(ArchiveAborted) as aborted:
        for n in range(100):
            path = f"vm/{n}/2020-01-01T00:00:00Z"
            data = pxar_bytes(n, 400000)
            [part] = write_snapshot_archive(tape, "s", path, lambda: pieces(data), no_next_volume)
            finished[path] = (part.file_number, data)
    lost = aborted.value.part
    assert len(finished) == 6 and lost.file_number == len(finished)
    for path, (file_number, data) in finished.items():
        reader = SnapshotArchiveReader(open_at(tape, file_number))
        assert reader.snapshot == path and reader.read() == data
    reader = SnapshotArchiveReader(open_at(tape, lost.file_number))
    with pytest.raises(MissingEndMarker):
        reader.read()
    # The caller writes the aborted snapshot again on the next tape.
    retry = pxar_bytes(len(finished), 400000)
    write_snapshot_archive(spare, "s", f"vm/{len(finished)}/2020-01-01T00:00:00Z", lambda: pieces(retry),
                           no_next_volume)
    assert SnapshotArchiveReader(open_at(spare, 0)).read() == retry


def test_early_warning_then_physical_end_of_the_next_tape_keeps_earlier_parts_and_snapshots():
    first = MemoryTape(capacity=3 * MiB, early_warning=MiB)
    write_snapshot_archive(first, "s", "vm/1/2020-01-01T00:00:00Z", lambda: [b"kept"], no_next_volume)
    tiny = MemoryTape(capacity=MiB)
    with pytest.raises(ArchiveAborted) as aborted:
        write_snapshot_archive(first, "s", "vm/2/2020-01-01T00:00:00Z", lambda: pieces(pxar_bytes(4, 4 * MiB)),
                               lambda part: tiny)
    assert (aborted.value.part.part_number, aborted.value.part.file_number) == (0, 0)
    assert SnapshotArchiveReader(open_at(first, 0)).read() == b"kept"


def test_catalog_archive_ignores_early_warning_as_pbs_does():
    """PBS writes the whole catalog into the early-warning zone and never leaves part of one
    behind flagged INCOMPLETE (its fast catalog restore would adopt it as the whole)."""
    media, media_set = uuid.UUID(int=1), uuid.UUID(int=2)
    catalog = magic.MEDIA_CATALOG_1_1 + pxar_bytes(5, 3 * MiB)
    first = MemoryTape(capacity=5 * MiB, early_warning=4 * MiB)
    part = write_catalog_archive(first, media, media_set, 4, catalog)
    assert first.objects[0][24:32] == magic.CATALOG_ARCHIVE_1_1
    assert first.objects[-1] is None and all(not block[8] & INCOMPLETE for block in first.objects[:-1])
    assert first.used > first.capacity - first.early_warning
    body = (b'{\n  "uuid": "00000000-0000-0000-0000-000000000001",\n'
            b'  "media_set_uuid": "00000000-0000-0000-0000-000000000002",\n  "seq_nr": 4\n}')
    assert first.objects[0][64:64 + len(body)] == body
    reader = CatalogArchiveReader(open_at(first, 0))
    assert (reader.media_uuid, reader.media_set_uuid, reader.seq_nr) == (media, media_set, 4)
    assert reader.read() == catalog and part.size == 48 + len(body) + len(catalog)
    assert not reader.first.reader.incomplete


def test_catalog_archive_at_the_physical_end_has_no_end_marker():
    media, media_set = uuid.UUID(int=1), uuid.UUID(int=2)
    tape = MemoryTape(capacity=2 * MiB, early_warning=MiB)
    with pytest.raises(ArchiveAborted) as aborted:
        write_catalog_archive(tape, media, media_set, 0, magic.MEDIA_CATALOG_1_1 + pxar_bytes(6, 3 * MiB))
    assert aborted.value.part.kind == "catalog" and tape.objects[-1] is None
    assert all(not block[8] & (INCOMPLETE | 1) for block in tape.objects[:-1])
    with pytest.raises(MissingEndMarker):
        CatalogArchiveReader(open_at(tape, 0)).read()


def test_catalog_archive_v1_0_for_root_only_jobs():
    media, media_set = uuid.UUID(int=1), uuid.UUID(int=2)
    catalog = magic.MEDIA_CATALOG_1_1 + pxar_bytes(5, 100)
    old = MemoryTape()
    write_catalog_archive(old, media, media_set, 0, catalog, namespaces=False)
    assert old.objects[0][24:32] == magic.CATALOG_ARCHIVE_1_0
    with pytest.raises(WrongContent, match="tape file 0: unexpected catalog archive v1.0"):
        SnapshotArchiveReader(open_at(old, 0))
