"""The read planner on a real vtape library: a backup spread over three small tapes, every drive
empty, chunks fetched by digest."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.blob import decode_blob
from tapefs.datastore.crypt_config import CryptConfig
from tapefs.datastore.fixed_index import FixedIndex
from tapefs.datastore.naming import BackupGroup, BackupNamespace
from tapefs.jobs.drive_session import drive_setup
from tapefs.keys.key_store import TapeKeyStore
from tapefs.media.media_id import MediaLocation
from tapefs.media.tape_config import load_tape_config
from tapefs.mount.chunk_cache import ChunkCache
from tapefs.mount.errors import ChunkDamaged, ChunkNotOnTape, KeyUnavailable, MediaUnavailable, MountReadError
from tapefs.mount.read_planner import ReadPlanner
from tapefs.tapeformat.block import PAYLOAD_SIZE
from tests.helpers.tape_image import STORE, corrupt_on_cartridge
from tests.helpers.tape_jobs import run_backup
from tests.helpers.tape_setup import add_cartridges, create_key


def on_vtape(test):
    """A test on a real vtape library, taking a few seconds."""
    return pytest.mark.vtape(pytest.mark.slow(test))


ENTRY_HEADER = 48


@on_vtape
def test_fetch_loads_the_tape_and_reads_only_the_chunks_asked_for(backed_up):
    label = backed_up.tapes[1]
    digest = backed_up.on_tape(label)[-1]
    with backed_up.planner() as planner:
        data = planner.fetch(backed_up.set_uuid, STORE, [digest])
        stats = planner.stats()
    assert data == {digest: backed_up.data(digest)}
    assert stats["loads"] == 1 and stats["chunks_from_tape"] == 1
    # The entry and the part of its first block before it: nothing else.
    offset = backed_up.places[digest][2]
    assert stats["bytes_from_tape"] == offset % PAYLOAD_SIZE + ENTRY_HEADER + len(backed_up.blob(digest))
    assert [d["tapes_loaded"] for d in stats["drives"] if d["tapes_loaded"]] == [[label]]
    assert stats["cache_misses"] == 1 and stats["pending"] == 0


@on_vtape
def test_chunks_of_one_archive_are_read_as_one_run_in_tape_order(backed_up):
    label = backed_up.tapes[0]
    digests = backed_up.on_tape(label)
    assert len(digests) >= 2
    with backed_up.planner() as planner:
        data = planner.fetch(backed_up.set_uuid, STORE, list(reversed(digests)))
        stats = planner.stats()
    assert data == {d: backed_up.data(d) for d in digests}
    # Contiguous entries: exactly their bytes were read, no block twice.
    first, last = backed_up.places[digests[0]], backed_up.places[digests[-1]]
    if first[1] == last[1]:
        assert stats["bytes_from_tape"] == last[2] + ENTRY_HEADER + last[3] - (first[2] - first[2] % PAYLOAD_SIZE)
    assert stats["loads"] == 1


@on_vtape
def test_a_second_read_comes_from_the_cache_even_after_a_restart(backed_up):
    digests = [backed_up.on_tape(label)[0] for label in backed_up.tapes]
    with backed_up.planner() as planner:
        planner.fetch(backed_up.set_uuid, STORE, digests)
        assert planner.stats()["loads"] == len(digests)
        again = planner.fetch(backed_up.set_uuid, STORE, digests)
        stats = planner.stats()
    assert again == {d: backed_up.data(d) for d in digests}
    assert stats["loads"] == len(digests) and stats["cache_hits"] == len(digests)
    with backed_up.planner() as planner:
        assert planner.fetch(backed_up.set_uuid, STORE, digests) == again
        assert planner.stats()["loads"] == 0


@on_vtape
def test_eight_threads_over_three_tapes_and_two_drives_finish(backed_up):
    digests = list(backed_up.places)
    results, errors = {}, []
    with backed_up.planner() as planner:
        def reader(seed: int) -> None:
            rng = random.Random(seed)
            try:
                for _ in range(4):
                    wanted = rng.sample(digests, 3)
                    got = planner.fetch(backed_up.set_uuid, STORE, wanted, readahead=rng.sample(digests, 2))
                    results.update(got)
            except Exception as error:
                errors.append(error)

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads), planner.stats()
        stats = planner.stats()
    assert errors == []
    assert all(results[d] == backed_up.data(d) for d in results)
    used = [d for d in stats["drives"] if d["tapes_loaded"]]
    assert len(used) == 2, stats["drives"]  # both drives served
    assert stats["pending"] == 0


@on_vtape
def test_an_offline_tape_fails_after_the_timeout_while_other_tapes_are_served(backed_up, caplog):
    offline, online = backed_up.tapes[0], backed_up.tapes[1]
    backed_up.export(offline)
    outcome = {}

    def read_offline(n: int) -> None:
        began = time.monotonic()
        try:
            planner.fetch(backed_up.set_uuid, STORE, [backed_up.on_tape(offline)[n]])
        except MountReadError as error:
            outcome[n] = (error, time.monotonic() - began)

    caplog.set_level(logging.WARNING, "tapefs.mount")
    events = []
    with backed_up.planner(read_timeout=4, events=lambda kind, details: events.append((kind, details))) as planner:
        started = time.monotonic()
        thread = threading.Thread(target=read_offline, args=(0,))
        thread.start()
        digest = backed_up.on_tape(online)[0]
        assert planner.fetch(backed_up.set_uuid, STORE, [digest]) == {digest: backed_up.data(digest)}
        assert time.monotonic() - started < 4
        waiting = planner.stats()["waiting_for"]
        assert [w["tape"] for w in waiting] == [offline] and waiting[0]["location"] == "online-lib"
        time.sleep(2)
        later = threading.Thread(target=read_offline, args=(1,))  # waits its own 4 s
        later.start()
        thread.join(30)
        later.join(30)
        assert planner.stats()["waiting_for"] == []
        # the tape is still to be brought back: both reads failed for want of it
        [request] = planner.stats()["retrieval_requests"]
        assert (request["tape"], request["location"], request["reads_failed"]) == (offline, "online-lib", 2)
    for error, seconds in outcome.values():
        assert isinstance(error, MediaUnavailable) and error.errno == 123  # ENOMEDIUM
        assert f"tape {offline}" in str(error) and "not in the library" in str(error)
        assert 4 <= seconds < 15
    asks = [r for r in caplog.records if f"insert tape {offline}" in r.getMessage()]
    assert len(asks) == 1 and len(outcome) == 2
    assert ("insert-tape", {"tape": offline, "location": "online-lib"}) in events
    assert ("media-unavailable", {"tape": offline, "location": "online-lib"}) in events
    assert ("tape-loaded", {"tape": online, "drive": "drive1"}) in events or \
           ("tape-loaded", {"tape": online, "drive": "drive0"}) in events


@on_vtape
def test_a_tape_inserted_while_the_read_waits_is_read(backed_up):
    label = backed_up.tapes[2]
    backed_up.export(label)
    digest = backed_up.on_tape(label)[0]
    with backed_up.planner(read_timeout=60) as planner:
        result = {}
        thread = threading.Thread(target=lambda: result.update(planner.fetch(backed_up.set_uuid, STORE, [digest])))
        thread.start()
        deadline = time.monotonic() + 20
        while not planner.stats()["waiting_for"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        from tapefs.device.changer import Changer
        with Changer.open(backed_up.setup.library.changer) as changer:
            status = changer.status()
            source = next(s for s in status.slots if s.full and s.barcode == label)
            target = next(s for s in status.slots if not s.full and not s.import_export)
            changer.transfer(source.number, target.number)
        thread.join(30)
    assert result == {digest: backed_up.data(digest)}


HOLD_DRIVES = """
import sys, time
from tapefs.media.drive_lock import DriveLock
for name in sys.argv[1:]:
    DriveLock(name).acquire()
print("held", flush=True)
time.sleep(120)
"""


@contextlib.contextmanager
def drives_held_by_another_process(*names: str):
    """Another tapefs process (a backup, say) holding these drives."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_DRIVES, *names], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


@on_vtape
def test_a_busy_drive_leaves_the_tape_to_the_free_one(backed_up):
    digest = backed_up.on_tape(backed_up.tapes[0])[0]
    with drives_held_by_another_process("drive0"), backed_up.planner(read_timeout=60) as planner:
        started = time.monotonic()
        assert planner.fetch(backed_up.set_uuid, STORE, [digest]) == {digest: backed_up.data(digest)}
        assert time.monotonic() - started < 15
        drives = {d["drive"]: d for d in planner.stats()["drives"]}
    assert drives["drive1"]["tapes_loaded"] == [backed_up.tapes[0]] and drives["drive0"]["loads"] == 0


@on_vtape
def test_a_read_waits_for_a_drive_another_process_uses(backed_up, caplog):
    digest = backed_up.on_tape(backed_up.tapes[1])[0]
    caplog.set_level(logging.WARNING, "tapefs.mount")
    events, result = [], {}
    with backed_up.planner(read_timeout=60, events=lambda kind, details: events.append((kind, details))) as planner:
        with drives_held_by_another_process("drive0", "drive1") as holder:
            thread = threading.Thread(target=lambda: result.update(planner.fetch(backed_up.set_uuid, STORE, [digest])))
            thread.start()
            deadline = time.monotonic() + 20
            while not all(d["state"].startswith("busy:") for d in planner.stats()["drives"]):
                assert time.monotonic() < deadline and thread.is_alive()
                time.sleep(0.1)
            busy = {d["drive"]: d["state"] for d in planner.stats()["drives"]}
            assert f"(pid {holder.pid})" in busy["drive0"] and not result
        # The backup is done: the read goes on by itself.
        thread.join(30)
    assert result == {digest: backed_up.data(digest)}
    assert {details["drive"] for kind, details in events if kind == "drive-busy"} == {"drive0", "drive1"}
    assert sum("reads wait for it" in r.getMessage() for r in caplog.records) == 2  # once per drive


@on_vtape
def test_a_read_that_finds_no_free_drive_within_the_timeout_fails_naming_the_holder(backed_up):
    digest = backed_up.on_tape(backed_up.tapes[0])[0]
    with drives_held_by_another_process("drive0", "drive1") as holder, \
            backed_up.planner(read_timeout=2) as planner:
        started = time.monotonic()
        with pytest.raises(MountReadError) as failed:
            planner.fetch(backed_up.set_uuid, STORE, [digest])
        assert 2 <= time.monotonic() - started < 10
    assert "no drive free within 2s" in str(failed.value) and f"(pid {holder.pid})" in str(failed.value)
    assert failed.value.errno == errno.EIO


@on_vtape
def test_close_while_a_read_waits_for_a_tape_returns_promptly(backed_up):
    label = backed_up.tapes[0]
    backed_up.export(label)
    planner = backed_up.planner(read_timeout=300)
    planner.start()
    outcome = {}

    def read() -> None:
        try:
            planner.fetch(backed_up.set_uuid, STORE, [backed_up.on_tape(label)[0]])
        except MountReadError as error:
            outcome["error"] = error

    thread = threading.Thread(target=read)
    thread.start()
    deadline = time.monotonic() + 20
    while not planner.stats()["waiting_for"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    started = time.monotonic()
    planner.close()
    thread.join(5)
    assert time.monotonic() - started < 5
    assert "closed" in str(outcome["error"])
    with pytest.raises(MountReadError, match="not running"):
        planner.fetch(backed_up.set_uuid, STORE, [backed_up.on_tape(label)[0]])


@on_vtape
def test_a_chunk_damaged_on_tape_fails_only_its_reads(backed_up, caplog):
    label = backed_up.tapes[0]
    bad, good = backed_up.on_tape(label)[:2]
    corrupt_on_cartridge(backed_up, bad)
    caplog.set_level(logging.ERROR, "tapefs.mount")
    with backed_up.planner() as planner:
        with pytest.raises(ChunkDamaged) as raised:
            planner.fetch(backed_up.set_uuid, STORE, [bad, good])
        assert planner.fetch(backed_up.set_uuid, STORE, [good]) == {good: backed_up.data(good)}
        assert planner.stats()["damaged"] == 1
        assert planner.cache.get(bad) is None
    _, file_number, offset, _ = backed_up.places[bad]
    message = str(raised.value)
    assert raised.value.errno == 5  # EIO
    assert f"tape {label} file {file_number} offset {offset}" in message and bad.hex() in message
    assert "does not match its digest" in message
    assert any(bad.hex() in r.getMessage() and f"file {file_number}" in r.getMessage() for r in caplog.records)


@on_vtape
def test_a_damaged_chunk_is_read_from_tape_once_until_the_catalog_changes(backed_up):
    label = backed_up.tapes[0]
    bad = backed_up.on_tape(label)[0]
    corrupt_on_cartridge(backed_up, bad)
    with backed_up.planner() as planner:
        with pytest.raises(ChunkDamaged) as first:
            planner.fetch(backed_up.set_uuid, STORE, [bad])
        read_once = planner.stats()["bytes_from_tape"]
        started = time.monotonic()
        for _ in range(20):
            with pytest.raises(ChunkDamaged) as again:
                planner.fetch(backed_up.set_uuid, STORE, [bad])
            assert str(again.value) == str(first.value)
        assert time.monotonic() - started < 2
        stats = planner.stats()
        assert stats["bytes_from_tape"] == read_once and stats["damaged"] == 1 and stats["damaged_answered"] == 20
        # A catalog command ran (another connection committed): the chunk is read again.
        with backed_up.setup.catalog() as catalog:
            database = sqlite3.connect(catalog.db_path)
        database.execute("PRAGMA user_version = 7")
        database.commit()
        database.close()
        with pytest.raises(ChunkDamaged):
            planner.fetch(backed_up.set_uuid, STORE, [bad])
        assert planner.stats()["damaged"] == 2


@on_vtape
def test_chunks_without_offsets_are_found_by_reading_their_archive(backed_up):
    label = backed_up.tapes[1]
    with backed_up.setup.inventory() as inventory, backed_up.setup.catalog() as catalog:
        media = inventory.find_media_by_label_text(label).uuid
        catalog.import_log(catalog.log_bytes(media))  # as if imported from PBS: no offsets
        places = catalog.chunk_places(backed_up.set_uuid, STORE, backed_up.on_tape(label))
        assert all(p.offset is None for p in places.values())
    digest = backed_up.on_tape(label)[-1]
    with backed_up.planner() as planner:
        assert planner.fetch(backed_up.set_uuid, STORE, [digest]) == {digest: backed_up.data(digest)}
        stats = planner.stats()
    assert stats["bytes_from_tape"] >= backed_up.places[digest][2] - 4096


@on_vtape
def test_a_chunk_the_catalog_does_not_know_is_an_error(backed_up):
    unknown = hashlib.sha256(b"not backed up").digest()
    with backed_up.planner() as planner:
        with pytest.raises(ChunkNotOnTape, match=f"chunk {unknown.hex()} of store store is not on media set"):
            planner.fetch(backed_up.set_uuid, STORE, [unknown])
        # Unknown readahead digests are ignored.
        known = backed_up.on_tape(backed_up.tapes[0])[0]
        assert known in planner.fetch(backed_up.set_uuid, STORE, [known], readahead=[unknown])


@on_vtape
def test_chunk_reader_checks_the_size_the_index_expects(backed_up):
    digest = backed_up.on_tape(backed_up.tapes[0])[0]
    with backed_up.planner() as planner:
        reader = planner.chunk_reader(backed_up.set_uuid, STORE)
        assert reader.read_chunk(digest, 4 * 1024 * 1024) == backed_up.data(digest)
        with pytest.raises(ChunkDamaged, match="the index expects 100"):
            reader.read_chunk(digest, 100)


@on_vtape
def test_a_client_encrypted_chunk_needs_a_datastore_key(tape_setup, tmp_path):
    add_cartridges(tape_setup.library, 1, "64MiB", "4MiB")
    tape_setup.label("SM0001L8")
    image = tmp_path / "secret.raw"
    image.write_bytes(os.urandom(1024 * 1024))
    backup(tape_setup.datastore, BackupGroup.parse("vm/300", BackupNamespace.parse(None)),
           parse_sources([f"disk.img:{image}"]), crypt_config=CryptConfig(b"\x07" * 32), sync=False)
    result = run_backup(tape_setup, eject_media=True)
    digest = FixedIndex.load(next(tape_setup.datastore.root.rglob("disk.img.fidx"))).digests[0]
    setups = [drive_setup(load_tape_config(), "drive0")]
    with ReadPlanner(setups, ChunkCache(tmp_path / "cache", 1 << 30)) as planner:
        with pytest.raises(KeyUnavailable, match="a datastore encryption key") as raised:
            planner.fetch(result.media_set, STORE, [digest])
    assert raised.value.errno == 13 and "tape SM0001L8 file" in str(raised.value)


def test_no_drives_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one drive"):
        ReadPlanner([], ChunkCache(tmp_path, 1000))


@on_vtape
def test_an_encrypted_media_set_reads_with_its_key_and_names_it_without(tape_setup, tmp_path):
    fingerprint = create_key(["daily"])
    add_cartridges(tape_setup.library, 1, "64MiB", "4MiB")
    tape_setup.label("SM0001L8")
    tape_setup.add_snapshot("vm/100", 1)
    result = run_backup(tape_setup, eject_media=True)
    digest = FixedIndex.load(next(tape_setup.datastore.root.rglob("disk.img.fidx"))).digests[0]
    expected = decode_blob(tape_setup.datastore.chunk_store.chunk_path(digest).read_bytes())
    setups = [drive_setup(load_tape_config(), "drive0")]
    with ReadPlanner(setups, ChunkCache(tmp_path / "cache", 1 << 30)) as planner:
        assert planner.fetch(result.media_set, STORE, [digest]) == {digest: expected}
    TapeKeyStore().remove(fingerprint)
    with ReadPlanner(setups, ChunkCache(tmp_path / "cold", 1 << 30)) as planner:
        with pytest.raises(KeyUnavailable) as raised:
            planner.fetch(result.media_set, STORE, [digest])
    assert raised.value.errno == 13 and fingerprint in str(raised.value) and "tape SM0001L8" in str(raised.value)


@on_vtape
def test_a_drive_error_fails_the_reads_in_progress_and_the_next_read_works(backed_up):
    label = backed_up.tapes[0]
    first, second = backed_up.on_tape(label)[:2]
    with backed_up.planner(drives=1) as planner:
        planner.fetch(backed_up.set_uuid, STORE, [first])
        backed_up.setup.library.control("fault", device="drive0", fail_next=1, sense_code="4/44/00")
        with pytest.raises(MountReadError) as raised:
            planner.fetch(backed_up.set_uuid, STORE, [second])
        assert f"tape {label} file" in str(raised.value)
        assert planner.fetch(backed_up.set_uuid, STORE, [second]) == {second: backed_up.data(second)}
        assert planner.stats()["pending"] == 0


def archive_on_memory_tape(count: int, size: int = 300_000):
    """A chunk archive of `count` random chunks at file 0 of a memory tape; the tape, the archive
    part (with each chunk's location) and the blobs."""
    from tapefs.tapeformat.chunk_archive import ChunkArchiveWriter
    from tapefs.tapeformat.memory_tape import MemoryTape
    tape = MemoryTape()
    writer = ChunkArchiveWriter(tape, STORE)
    blobs = [os.urandom(size) for _ in range(count)]
    for blob in blobs:
        writer.add_chunk(hashlib.sha256(blob).digest(), blob)
    [part] = writer.finish()
    return tape, part, blobs


class CountingTape:
    """A memory tape that counts LOCATEs and blocks read."""

    def __init__(self, tape):
        self.tape = tape
        self.locates = self.blocks = 0

    def locate_block(self, block_number: int) -> None:
        self.locates += 1
        self.tape.locate_block(block_number)

    def read_block(self):
        self.blocks += 1
        return self.tape.read_block()

    def read_blocks(self, count):
        blocks = self.tape.read_blocks(count)
        self.blocks += len(blocks)
        return blocks

    def __getattr__(self, name):
        return getattr(self.tape, name)


def test_run_reader_reads_chunks_in_tape_order_after_one_locate():
    from tapefs.tapeformat.chunk_archive import ChunkRunReader
    tape, part, blobs = archive_on_memory_tape(8)
    device = CountingTape(tape)
    reader = ChunkRunReader(device)
    wanted = [0, 1, 2, 5, 7]  # gaps are read through, not located past
    read = [reader.read(part.file_number, part.first_block, part.chunks[i]) for i in wanted]
    # magic and CRC apart from the rest, so an uncompressed chunk's data needs no copy
    assert [len(head) for head, _ in read] == [12] * len(wanted)
    assert [head + rest for head, rest in read] == [blobs[i] for i in wanted]
    assert device.locates == reader.locates == 1
    last = part.chunks[7]
    first_block_start = part.chunks[0].offset - part.chunks[0].offset % PAYLOAD_SIZE
    assert reader.bytes_read == last.offset + ENTRY_HEADER + last.size - first_block_start
    # Going back costs a LOCATE; so does a gap beyond RUN_MAX_GAP.
    assert b"".join(reader.read(part.file_number, part.first_block, part.chunks[3])) == blobs[3]
    assert reader.locates == 2


def test_run_reader_locates_again_after_a_damaged_entry():
    from tapefs.tapeformat.chunk_archive import ChunkRunReader
    from tapefs.tapeformat.errors import TapeFormatError
    tape, part, blobs = archive_on_memory_tape(4)
    wrong = part.chunks[1].__class__(b"\x01" * 32, part.chunks[1].offset, part.chunks[1].size)
    reader = ChunkRunReader(tape)
    assert b"".join(reader.read(part.file_number, part.first_block, part.chunks[0])) == blobs[0]
    with pytest.raises(TapeFormatError, match="catalog says 0101"):
        reader.read(part.file_number, part.first_block, wrong)
    assert b"".join(reader.read(part.file_number, part.first_block, part.chunks[2])) == blobs[2]
    assert reader.locates == 2


def test_a_read_of_a_vaulted_tape_asks_for_it_with_the_vault_note_until_it_is_loaded(backed_up):
    vaulted = backed_up.tapes[0]
    backed_up.export(vaulted)
    with backed_up.setup.inventory() as inventory:
        [entry] = inventory.find_all_media_by_label_text(vaulted)
        inventory.record_vault_entry(entry.uuid, MediaLocation.vault("offsite"), "shelf 3, box 12", int(time.time()))
    with backed_up.planner(read_timeout=1) as planner:
        with pytest.raises(MediaUnavailable, match=f"tape {vaulted} is not in the library \\(location vault-offsite\\)"):
            planner.fetch(backed_up.set_uuid, STORE, [backed_up.on_tape(vaulted)[0]])
        [request] = planner.stats()["retrieval_requests"]
        assert request["tape"] == vaulted and request["location"] == "vault-offsite"
        assert request["vault_note"] == "shelf 3, box 12" and request["reads_failed"] == 1
