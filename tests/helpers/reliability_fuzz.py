"""Fuzzing every parser (reliability campaign R4): the targets, a seeded mutation engine and a runner.

A target feeds one byte string to one parser. The parser may reject it only with the error types it
documents (``allowed``); any other exception is a crash, and an input that takes longer than
its ``hang_seconds`` is a hang. Seeds are valid encodings made by our own writers or taken from the
PBS reference fixtures, so mutations reach deep into each format.

The quick tests (tests/reliability/test_fuzz.py) run a few hundred seeded inputs per target; the
campaign (``scripts/fuzz.sh --inputs N --seed S``) runs ``python -m tests.helpers.reliability_fuzz``,
with this module's mutation engine or, when installed, atheris's coverage-guided one.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import random
import signal
import sys
import tempfile
import time
import traceback
import uuid as uuidlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

from tests.helpers.pbs_reference import BLOBS, GENERATED

#: Fuzz inputs stay small: every parser must bound lengths before allocating, whatever the input says.
MAX_INPUT = 4096

INTERESTING_INTEGERS = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                        0xFFFFFFFF, 2**63 - 1, 2**64 - 1, 16, 48, 255, 4096, 262144]


@dataclasses.dataclass
class Target:
    name: str
    run: Callable[[bytes], object]
    #: The error types the parser documents for bad input.
    allowed: tuple[type[BaseException], ...]
    seeds: Callable[[], list[bytes]]
    #: An input taking longer is a hang (a command that does that much work on purpose may take longer).
    hang_seconds: float = 2.0


@dataclasses.dataclass
class Finding:
    target: str
    kind: str  # "crash" or "hang"
    data: bytes
    detail: str


@dataclasses.dataclass
class RunResult:
    target: str
    inputs: int
    seconds: float
    slowest: float
    findings: list[Finding]


# -- the targets ----------------------------------------------------------------------------------


def _sense(data: bytes) -> object:
    from tapefs.scsi.sense import decode_sense

    sense = decode_sense(data)
    return sense.describe(), sense.to_dict()


def _sense_seeds() -> list[bytes]:
    fixed = bytes([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0xC0, 0, 2])
    descriptor = bytes([0x72, 0x05, 0x24, 0, 0, 0, 0, 20, 0x00, 0x0A, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 5,
                        0x02, 0x06, 0, 0, 0xC0, 0, 2, 0])
    stream = bytes([0x72, 0x08, 0x00, 0x05, 0, 0, 0, 4, 0x04, 0x02, 0, 0x80])
    return [fixed, descriptor, stream, bytes([0x71, 0, 0x03, 0, 0, 0, 1, 10]) + bytes(10)]


def _frame(data: bytes) -> object:
    from vtape import frame

    if data[:1] == b"\x01":
        return frame.decode_reply_header(data[1:])
    return frame.decode_request_header(data[1:])


def _frame_seeds() -> list[bytes]:
    from vtape import frame

    request = frame.encode_request_header(bytes([0x08, 0, 0, 1, 0, 0]), 0, 262144, 1000)
    reply = frame.encode_reply_header(frame.Reply(2, sense=bytes(18), data=b"x" * 10, residual=3))
    return [b"\x00" + request, b"\x01" + reply]


def _hex_cdb(data: bytes) -> object:
    from tapefs.scsi.cdb import command_name, parse_hex_cdb

    cdb = parse_hex_cdb(data.decode("utf-8", "replace"))
    return command_name(cdb)


def _hex_cdb_seeds() -> list[bytes]:
    return [b"08 00 00 01 00 00", b"0x12,0,0,0,0x60,0", b"a3 0c 01 01 00 00 00 00 00 00 00 00", b"00"]


class _VtapeBench:
    """A vtape library in a temporary directory with a tape in drive 0, driven in process."""

    def __init__(self) -> None:
        from vtape.library import CreateOptions, Library, create_library

        self.directory = tempfile.TemporaryDirectory(prefix="fuzz-vtape-")
        path = Path(self.directory.name) / "lib"
        create_library(path, CreateOptions(drives=1, storage_slots=4, import_export_slots=1, cartridges=3,
                                           capacity=64 * 1024**2))
        self.library = Library(path)
        self.commands = 0
        self.load_a_tape()

    def load_a_tape(self) -> None:
        from tapefs.scsi import cdb
        from vtape.elements import DRIVE, STORAGE

        changer, drive = self.library.changer, self.library.drives[0]
        drive_address = self.library.elements_of(DRIVE)[0].address
        slot = self.library.elements_of(STORAGE)[0].address
        changer.execute(cdb.move_medium(0, slot, drive_address), memoryview(b""), 0)
        drive.unit_attentions.clear()
        changer.unit_attentions.clear()

    def close(self) -> None:
        self.library.close()
        self.directory.cleanup()


_benches: list[_VtapeBench] = []
#: WRITE FILEMARKS of 16 million writes 512 MB of cartridge index (vtape takes some seconds, as a
#: drive would): the campaign asks for fewer, to keep its temporary libraries small.
MAX_FILEMARKS = 65536
#: A fresh library after this many commands keeps the cartridge files small.
BENCH_COMMANDS = 500


def _vtape_bench() -> _VtapeBench:
    if _benches and _benches[0].commands >= BENCH_COMMANDS:
        _benches.pop().close()
    if not _benches:
        _benches.append(_VtapeBench())
    _benches[0].commands += 1
    return _benches[0]


def _vtape_cdb(data: bytes) -> object:
    """Layout: device (bit 0: changer), allocation (3 bytes), CDB length, CDB, data-out."""
    from vtape import frame

    if len(data) < 5:
        return None
    bench = _vtape_bench()
    device = bench.library.changer if data[0] & 1 else bench.library.drives[0]
    allocation = min(int.from_bytes(data[1:4], "big"), frame.MAX_TRANSFER)
    length = 6 + data[4] % (frame.MAX_CDB - 5)
    cdb, data_out = data[5 : 5 + length], data[5 + length :]
    if len(cdb) != length or cdb[0] == 0x10 and int.from_bytes(cdb[2:5], "big") > MAX_FILEMARKS:
        return None
    outcome = device.execute(cdb, memoryview(data_out), allocation)
    assert outcome.status in (0, 2, 8, 0x18), f"status {outcome.status:#x}"
    if outcome.status == 2:
        # An internal error (a handler that raised) shows as HARDWARE ERROR 44h, never for bad input.
        assert not (outcome.sense[2] & 0x0F == 4 and outcome.sense[12] == 0x44), "internal error in a handler"
    return outcome


def _vtape_cdb_seeds() -> list[bytes]:
    from tapefs.scsi import cdb

    def drive(command: bytes, allocation: int = 0, data_out: bytes = b"") -> bytes:
        return b"\x00" + allocation.to_bytes(3, "big") + bytes([len(command) - 6]) + command + data_out

    def changer(command: bytes, allocation: int = 0) -> bytes:
        return b"\x01" + allocation.to_bytes(3, "big") + bytes([len(command) - 6]) + command

    return [
        drive(cdb.test_unit_ready()), drive(cdb.inquiry(96), 96), drive(cdb.inquiry(255, 0x80), 255),
        drive(cdb.request_sense(), 252), drive(cdb.mode_sense_10(0x3F, 4096), 4096),
        drive(cdb.mode_sense_6(0x10, 255), 255), drive(cdb.log_sense(0x2E, 1024), 1024),
        drive(cdb.read_attribute(1024), 1024), drive(cdb.read_position(allocation_length=32), 32),
        drive(cdb.write_6(64, fixed=False), 0, b"B" * 64), drive(cdb.read_6(64), 64),
        drive(cdb.write_filemarks_6(1)), drive(cdb.space(1, 1)), drive(cdb.space(3, 0)),
        drive(cdb.locate_16(0)), drive(cdb.rewind()), drive(cdb.read_block_limits(), 6),
        drive(cdb.report_density_support(1024), 1024), drive(cdb.security_protocol_in(0, 1024), 1024),
        drive(cdb.security_protocol_out(0x10, 52), 0, bytes(52)),
        drive(cdb.mode_select_10(16), 0, bytes(16)), drive(cdb.write_attribute(16), 0, bytes(16)),
        changer(cdb.read_element_status(0, number_of_elements=32), 65535), changer(cdb.inquiry(96), 96),
        changer(cdb.initialize_element_status()), changer(cdb.test_unit_ready()),
    ]


def _memory_tape(head: bytes, pad: bool, extra_files: list[list[bytes]]):
    from tapefs.tapeformat.block_device import BLOCK_SIZE
    from tapefs.tapeformat.memory_tape import FILEMARK, MemoryTape

    tape = MemoryTape()
    block = head[:BLOCK_SIZE].ljust(BLOCK_SIZE, b"\0") if pad else head
    tape.objects = [block, FILEMARK]
    for blocks in extra_files:
        tape.objects += blocks + [FILEMARK]
    return tape


@cache
def _label_blocks() -> tuple[bytes, bytes]:
    from tapefs.tapeformat.labels import MediaLabel, MediaSetLabel, write_media_label, write_media_set_label
    from tapefs.tapeformat.memory_tape import MemoryTape

    tape = MemoryTape()
    write_media_label(tape, MediaLabel(uuidlib.UUID(int=1), "VT0001L8", 1700000000, "pool"))
    write_media_set_label(tape, MediaSetLabel("pool", uuidlib.UUID(int=2), 3, 1700000001, "ab:cd", {"kdf": None}))
    return tape.objects[0], tape.objects[2]


def _tape_labels(data: bytes) -> object:
    """Byte 0: which label file takes the input (bit 0) and whether it is padded to a block (bit 1)."""
    from tapefs.tapeformat.labels import read_labels

    if not data:
        return None
    media, media_set = _label_blocks()
    head, pad = data[1:], not data[0] & 2
    if data[0] & 1:
        tape = _memory_tape(media, True, [[head[:262144].ljust(262144, b"\0") if pad else head]])
    else:
        tape = _memory_tape(head, pad, [[media_set]])
    return read_labels(tape)


def _tape_labels_seeds() -> list[bytes]:
    media, media_set = _label_blocks()
    return [b"\x00" + media[:600].rstrip(b"\0"), b"\x01" + media_set[:900].rstrip(b"\0")]


@cache
def _archive_blocks() -> list[list[bytes]]:
    from tapefs.tapeformat.chunk_archive import ChunkArchiveWriter
    from tapefs.tapeformat.memory_tape import FILEMARK, MemoryTape
    from tapefs.tapeformat.snapshot_archive import write_snapshot_archive

    tape = MemoryTape()
    writer = ChunkArchiveWriter(tape, "store", content_uuid=uuidlib.UUID(int=3), ctime=1700000000)
    writer.add_chunk(bytes(range(32)), b"blob one")
    writer.add_chunk(bytes(32), b"second blob")
    writer.finish()
    write_snapshot_archive(tape, "store", "vm/100/2024-01-01T00:00:00Z", lambda: io.BytesIO(b"pxar bytes"),
                           None, ctime=1700000000)
    files, current = [], []
    for block in tape.objects:
        if block is FILEMARK:
            files.append(current)
            current = []
        else:
            current.append(block)
    return files


def _tape_archive(data: bytes) -> object:
    """The input is the head of the single block of a chunk or snapshot archive file."""
    from tapefs.tapeformat import magic
    from tapefs.tapeformat.chunk_archive import ChunkArchiveReader
    from tapefs.tapeformat.snapshot_archive import SNAPSHOT_MAGICS, SnapshotArchiveReader
    from tapefs.tapeformat.tape_file import open_tape_file

    tape = _memory_tape(data, True, [])
    tape_file = open_tape_file(tape)
    if tape_file.header.content_magic == magic.CHUNK_ARCHIVE_1_1:
        return list(ChunkArchiveReader(tape_file))
    if tape_file.header.content_magic in SNAPSHOT_MAGICS:
        return SnapshotArchiveReader(tape_file).read()
    return tape_file.reader.skip_data()


def _tape_archive_seeds() -> list[bytes]:
    return [blocks[0][:1200].rstrip(b"\0") for blocks in _archive_blocks()]


def _media_catalog(data: bytes) -> object:
    from tapefs.tapeformat.media_catalog_log import parse_catalog

    torn = bool(data[:1]) and data[0] & 1
    content, checker = parse_catalog(data[1:], tolerate_torn_tail=bool(torn))
    return content, checker.consistent_end


def _media_catalog_seeds() -> list[bytes]:
    from tapefs.tapeformat.media_catalog_log import MediaCatalogLog

    with tempfile.TemporaryDirectory() as directory:
        log = MediaCatalogLog.create(Path(directory), uuidlib.UUID(int=1), (uuidlib.UUID(int=2), 0))
        log.register_chunk_archive(2, uuidlib.UUID(int=3), "store", [bytes(32), bytes(range(32))])
        log.register_snapshot(3, uuidlib.UUID(int=4), "store", "vm/100/2024-01-01T00:00:00Z")
        log.start_chunk_archive(4, uuidlib.UUID(int=5), "other")
        log.register_chunk(b"\x07" * 32)
        log.commit()
        data = log.contents()
    return [b"\x00" + data, b"\x01" + data[:-5]]


@cache
def _crypt_config():
    from tapefs.datastore.crypt_config import CryptConfig

    return CryptConfig(b"\x01" * 32)


def _blob(data: bytes) -> object:
    from tapefs.datastore.blob import decode_blob, inspect_blob

    inspect_blob(data)
    return decode_blob(data, _crypt_config())


def _blob_seeds() -> list[bytes]:
    return [path.read_bytes()[:MAX_INPUT] for path in sorted(BLOBS.glob("small-*.blob"))]


def _fixed_index(data: bytes) -> object:
    from tapefs.datastore.fixed_index import FixedIndex

    index = FixedIndex.parse(data)
    for i in range(min(index.chunk_count, 64)):
        index.chunk_range(i)
    if index.size:
        index.find_chunk(index.size - 1)
    return index


def _fixed_index_seeds() -> list[bytes]:
    from tapefs.datastore.fixed_index import FixedIndexWriter

    return [_written_index(FixedIndexWriter, lambda w: [w.add_digest(bytes([i]) * 32) for i in range(3)],
                           lambda w: w.close(3 * 4096 - 100, 1700000000, bytes(16)), chunk_size=4096)]


def _dynamic_index(data: bytes) -> object:
    from tapefs.datastore.dynamic_index import DynamicIndex

    index = DynamicIndex.parse(data)
    for i in range(min(index.chunk_count, 64)):
        index.chunk_range(i)
    if index.size:
        index.find_chunk(index.size - 1)
    return index


def _dynamic_index_seeds() -> list[bytes]:
    from tapefs.datastore.dynamic_index import DynamicIndexWriter

    def add(writer) -> None:
        for i, end in enumerate((100, 5000, 5001)):
            writer.add_chunk(end, bytes([i]) * 32)

    return [_written_index(DynamicIndexWriter, add, lambda w: w.close(1700000000, bytes(16)))]


def _written_index(writer_class, add, close, **options) -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "index"
        writer = writer_class(path, **options)
        add(writer)
        close(writer)
        return path.read_bytes()


def _manifest(data: bytes) -> object:
    from tapefs.datastore.manifest import Manifest

    manifest = Manifest.decode(data)
    manifest.key_mismatch(_crypt_config())
    manifest.verify_signature(None)
    return manifest.to_json()


def _manifest_seeds() -> list[bytes]:
    from tapefs.datastore.manifest import Manifest

    manifest = Manifest("vm", "100", 1700000000, [], {"note": "x"})
    manifest.add_file("drive-scsi0.img.fidx", 1024, bytes(32), "none")
    manifest.add_file("root.pxar.didx", 99, bytes(range(32)), "encrypt")
    plain = manifest.encode()
    manifest.sign(_crypt_config())
    return [plain, manifest.encode()]


def _pxar_v1(data: bytes) -> object:
    from tapefs.pxar.accessor import Accessor
    from tapefs.pxar.decoder import Decoder
    from tapefs.pxar.source import BytesSource

    decoder = Decoder(BytesSource(data))
    entries = []
    for entry in decoder:
        entries.append(entry.path)
        if entry.kind.name == "FILE":
            decoder.read_content(entry, 0, 4096)
    accessor = Accessor(BytesSource(data))
    for path in entries[:8]:
        accessor.lookup(path)
    return entries


def _pxar_v2(data: bytes) -> object:
    """The input is the metadata stream; the payload stream is the fixture's."""
    from tapefs.pxar.accessor import Accessor
    from tapefs.pxar.decoder import Decoder
    from tapefs.pxar.source import BytesSource

    payload = BytesSource(_fixture("v2.ppxar"))
    decoder = Decoder(BytesSource(data), BytesSource(_fixture("v2.ppxar")))
    entries = []
    for entry in decoder:
        entries.append(entry.path)
        if entry.kind.name == "FILE":
            decoder.read_content(entry, 0, 4096)
    accessor = Accessor(BytesSource(data), payload)
    for path in entries[:8]:
        entry = accessor.lookup(path)
        if entry.kind.name == "FILE":
            accessor.read(entry, 0, 4096)
    return entries


@cache
def _fixture(name: str) -> bytes:
    return (GENERATED / name).read_bytes()


def _pcat1(data: bytes) -> object:
    from tapefs.pxar.catalog import CatalogReader

    reader = CatalogReader(data)
    walked = [path for path, _ in _bounded(reader.walk(), 1000)]
    for path in walked[:8]:
        reader.lookup(path)
    list(_bounded(reader.find(b"*.txt"), 1000))
    return walked


def _bounded(iterator, limit: int):
    for count, item in enumerate(iterator):
        if count == limit:
            return
        yield item


def _xattrs(data: bytes) -> object:
    from tapefs.catalog.file_catalog import decode_xattrs

    return decode_xattrs(data)


def _xattrs_seeds() -> list[bytes]:
    from tapefs.catalog.file_catalog import encode_xattrs

    return [encode_xattrs([(b"user.a", b"1"), (b"security.capability", bytes(20))])]


def _section_config(data: bytes) -> object:
    from tapefs.config import section_config

    config = section_config.parse(data.decode("utf-8", "surrogateescape"), "fuzz.cfg", {"pool": ("member",)})
    return config.format()


def _section_config_seeds() -> list[bytes]:
    return [
        b"changer: sl3\n\tpath /dev/tape/by-id/scsi-x\n\nlto: drive0\n\tchanger sl3\n\tchanger-drivenum 0\n",
        b"# comment\npool: daily\n\tmember a\n\tmember b\n\tretention keep\n",
        b"datastore: store1\n\tpath /srv/store1\n\tcomment hello world\n",
    ]


def _calendar(data: bytes) -> object:
    from tapefs.config.calendar_event import CalendarEvent

    event = CalendarEvent.parse(data.decode("utf-8", "surrogateescape"))
    now = 1700000000
    for _ in range(3):
        now = event.next_after(now)
        if now is None:
            break
    return now


def _calendar_seeds() -> list[bytes]:
    return [b"daily", b"hourly", b"mon..fri 22:30", b"sat *-*-1..7 02:00", b"*:0/15", b"2024-02-29 12:00 UTC",
            b"mon,wed,fri *-*-* 0/2:30:15", b"weekly", b"monthly", b"*-12-25 06:00"]


def targets() -> dict[str, Target]:
    from tapefs.catalog.file_catalog import FileCatalogError
    from tapefs.config.section_config import SectionConfigError
    from tapefs.datastore.errors import DatastoreError
    from tapefs.config.calendar_event import CalendarEventError
    from tapefs.pxar.errors import PxarError
    from tapefs.scsi.sense import SenseFormatError
    from tapefs.tapeformat.errors import MediaCatalogError, TapeFormatError
    from vtape.frame import FrameError

    table = [
        Target("sense", _sense, (SenseFormatError,), _sense_seeds),
        Target("vtape-frame", _frame, (FrameError,), _frame_seeds),
        Target("vtape-cdb", _vtape_cdb, (), _vtape_cdb_seeds),
        Target("hex-cdb", _hex_cdb, (ValueError,), _hex_cdb_seeds),
        Target("tape-labels", _tape_labels, (TapeFormatError,), _tape_labels_seeds),
        Target("tape-archive", _tape_archive, (TapeFormatError,), _tape_archive_seeds),
        Target("media-catalog", _media_catalog, (MediaCatalogError,), _media_catalog_seeds),
        Target("blob", _blob, (DatastoreError,), _blob_seeds),
        Target("fidx", _fixed_index, (DatastoreError,), _fixed_index_seeds),
        Target("didx", _dynamic_index, (DatastoreError,), _dynamic_index_seeds),
        Target("manifest", _manifest, (DatastoreError,), _manifest_seeds),
        Target("pxar-v1", _pxar_v1, (PxarError,), lambda: [_fixture("v1.pxar")]),
        Target("pxar-v2", _pxar_v2, (PxarError,), lambda: [_fixture("v2.mpxar")]),
        Target("pcat1", _pcat1, (PxarError,), lambda: [_fixture("test.pcat1")]),
        Target("file-catalog-xattrs", _xattrs, (FileCatalogError,), _xattrs_seeds),
        Target("section-config", _section_config, (SectionConfigError,), _section_config_seeds),
        Target("calendar", _calendar, (CalendarEventError,), _calendar_seeds),
    ]
    return {target.name: target for target in table}


# -- the mutation engine --------------------------------------------------------------------------


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    """A seed changed by one to four random edits (or, now and then, random bytes)."""
    if rng.random() < 0.03:
        return rng.randbytes(rng.randrange(64))
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(9)
        position = rng.randrange(len(data) + 1)
        if choice == 0 and data:
            data[position % len(data)] ^= 1 << rng.randrange(8)
        elif choice == 1 and data:
            data[position % len(data)] = rng.randrange(256)
        elif choice == 2 and data:
            width = rng.choice((1, 2, 3, 4, 8))
            value = rng.choice(INTERESTING_INTEGERS) % (1 << (8 * width))
            order = rng.choice(("little", "big"))
            data[position : position + width] = value.to_bytes(width, order)
        elif choice == 3:
            del data[position:]
        elif choice == 4:
            data[position:position] = rng.randbytes(rng.randrange(1, 16))
        elif choice == 5 and data:
            end = min(len(data), position + rng.randrange(1, 64))
            data[position:position] = data[position:end]
        elif choice == 6 and data:
            del data[position : position + rng.randrange(1, 32)]
        elif choice == 7:
            other = rng.choice(seeds)
            cut = rng.randrange(len(other) + 1)
            data[position:] = other[cut:]
        else:
            data[position:position] = rng.choice((b"\0", b"\xff", b"..", b"/", b"%", b"\n", b"\t", b"*", b","))
    return bytes(data[:MAX_INPUT])


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def check_one(target: Target, data: bytes) -> Finding | None:
    """Run one input; a Finding for a crash or a hang, None when the parser behaved."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, target.hang_seconds * 5)
    started = time.perf_counter()
    try:
        target.run(data)
    except _Hang:
        return Finding(target.name, "hang", data, f"no answer after {target.hang_seconds * 5:.0f} s")
    except target.allowed:
        pass
    except Exception:
        return Finding(target.name, "crash", data, traceback.format_exc(limit=-3))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - started
    if elapsed > target.hang_seconds:
        return Finding(target.name, "hang", data, f"took {elapsed:.1f} s")
    return None


def run_target(
    target: Target, inputs: int, seed: int, stop_after: int = 10, max_seconds: float | None = None
) -> RunResult:
    """Feed the seeds and then mutations to one target, `inputs` in all; stop after `stop_after`
    findings or, with `max_seconds`, once that time is up (the result counts the inputs run)."""
    rng = random.Random(f"{target.name}:{seed}")
    seeds = target.seeds()
    findings: list[Finding] = []
    slowest = 0.0
    started = time.perf_counter()
    for number in range(inputs):
        data = seeds[number] if number < len(seeds) else mutate(rng, seeds)
        one = time.perf_counter()
        finding = check_one(target, data)
        slowest = max(slowest, time.perf_counter() - one)
        if finding:
            findings.append(finding)
            if len(findings) >= stop_after:
                break
        if max_seconds is not None and number % 256 == 255 and time.perf_counter() - started > max_seconds:
            break
    return RunResult(target.name, number + 1 if inputs else 0, time.perf_counter() - started, slowest, findings)


def describe(finding: Finding) -> str:
    return f"{finding.target}: {finding.kind} on {finding.data[:200].hex()} ({len(finding.data)} bytes)\n{finding.detail}"


# -- the campaign's command line --------------------------------------------------------------------


def _run_atheris(target: Target, inputs: int, seed: int) -> int:
    import atheris

    def one_input(data: bytes) -> None:
        finding = check_one(target, data)
        if finding:
            print(describe(finding), file=sys.stderr)
            raise RuntimeError(f"{finding.kind} in {target.name}")

    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target.name}-") as corpus:
        for number, data in enumerate(target.seeds()):
            (Path(corpus) / f"seed{number}").write_bytes(data)
            check_one(target, data)  # imports the parser's modules, which are then instrumented
        atheris.instrument_all()
        atheris.Setup([sys.argv[0], f"-runs={inputs}", f"-seed={seed}", f"-max_len={MAX_INPUT}",
                       "-print_final_stats=1", corpus], one_input)
        atheris.Fuzz()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reliability_fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10000, help="inputs per target")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engine", choices=("mutate", "atheris"), default="mutate")
    parser.add_argument("--markdown", action="store_true", help="the figures as a Markdown table")
    parser.add_argument("--max-seconds", type=float, help="stop each parser after this long (fewer inputs)")
    parser.add_argument("target", nargs="*", help="targets to run (default: all)")
    options = parser.parse_args(argv)
    # Parsers log what they skip (a chunk cut short, ...): a million times over, that drowns the findings.
    logging.disable(logging.CRITICAL)
    table = targets()
    unknown = [name for name in options.target if name not in table]
    if unknown:
        parser.error(f"unknown target {', '.join(unknown)}; known: {', '.join(table)}")
    chosen = [table[name] for name in options.target or table]
    if options.engine == "atheris":
        if len(chosen) != 1:
            parser.error("the atheris engine runs one target per process")
        return _run_atheris(chosen[0], options.inputs, options.seed)
    failed = False
    if options.markdown:
        print(f"Seed {options.seed}, {options.inputs:,} inputs per parser, engine mutate, {time.strftime('%Y-%m-%d')}\n")
        print("| parser | inputs | crashes | hangs | time (s) | slowest input (ms) |\n|---|---:|---:|---:|---:|---:|")
    for target in chosen:
        result = run_target(target, options.inputs, options.seed, max_seconds=options.max_seconds)
        for finding in result.findings:
            print(describe(finding), file=sys.stderr)
        failed |= bool(result.findings)
        crashes = sum(finding.kind == "crash" for finding in result.findings)
        hangs = len(result.findings) - crashes
        slowest_ms = round(result.slowest * 1000, 1)
        if options.markdown:
            print(f"| {result.target} | {result.inputs:,} | {crashes} | {hangs} | {result.seconds:.0f} | {slowest_ms} |")
        else:
            print(f"{result.target:20} {result.inputs:>9} inputs {crashes:>3} crashes {hangs:>3} hangs "
                  f"{result.seconds:8.1f} s  slowest {slowest_ms} ms")
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
