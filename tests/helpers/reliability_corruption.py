"""R3 corruption scenarios: seeded bit flips in datastore chunks and indexes, in a cartridge's
data and in the media catalog database. Every flip that changes data is detected and named, and
everything it did not touch still restores byte-identical."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from tapefs.catalog.media_catalog import CATALOG_DB_NAME
from tapefs.config.paths import tape_status_dir
from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.dynamic_index import DynamicIndex
from tapefs.datastore.fixed_index import FixedIndex
from tapefs.datastore.naming import BackupGroup
from tapefs.datastore.registry import DatastoreRegistry
from tests.helpers.commands import one_error_line, tapefs
from tests.helpers.reliability_campaign import Trial, scenario
from tests.helpers.reliability_crash import create_datastore, stored_data, tape_with_snapshots
from tests.helpers.tape_jobs import assert_catalog_matches_tapes, run_backup
from tests.helpers.tape_setup import CHUNK
from vtape.cartridge import ENTRY_SIZE, _unpack_entry

DIGEST = re.compile(r"[0-9a-f]{64}")
FIXED_INDEX_HEADER = 4096  # then the digests
FIXED_INDEX_USED_HEADER = 8 + 16 + 8 + 32 + 8 + 8  # magic, uuid, ctime, checksum, size, chunk size


def flip_bit(trial: Trial, path: Path, start: int = 0, end: int | None = None) -> int:
    """Invert one seeded random bit of `path` between byte `start` and `end`; its byte offset."""
    size = path.stat().st_size if end is None else end
    offset = trial.rng.randrange(start, size)
    with open(path, "r+b") as file:
        file.seek(offset)
        byte = file.read(1)[0]
        file.seek(offset)
        file.write(bytes([byte ^ (1 << trial.rng.randrange(8))]))
    return offset


def image_snapshots(trial: Trial, count: int, chunks: int) -> dict[str, bytes]:
    """Datastore `store` with `count` snapshots of an image of `chunks` distinct 4 MiB chunks
    each: snapshot path → image bytes."""
    create_datastore("store", trial.root / "store")
    store = DatastoreRegistry().lookup("store")
    images = {}
    for n in range(count):
        data = trial.random_bytes(chunks * CHUNK)
        image = trial.root / "disk.raw"
        image.write_bytes(data)
        result = backup(store, BackupGroup.parse(f"vm/{100 + n}"), parse_sources([f"disk.img:{image}"]), sync=False)
        images[str(result.snapshot)] = data
    return images


def restored_image(trial: Trial, snapshot: str) -> tuple[bytes | None, str]:
    """The image `tapefs datastore restore` gives, or None and its one error line."""
    target = trial.root / f"out-{trial.rng.getrandbits(32):08x}.img"
    proc = tapefs("datastore", "restore", "store", snapshot, "disk.img", target, check=False)
    if proc.returncode == 0:
        return target.read_bytes(), ""
    return None, one_error_line(proc)


def verify_report(name: str) -> dict:
    return json.loads(tapefs("datastore", "verify", name, "--output-format", "json", check=False).stdout)


@scenario(
    "chunk-bit-flip",
    "corruption",
    "1-3 bits flipped in chunk files; verify names exactly the damaged chunks and their snapshots, "
    "every other snapshot restores identical",
)
def chunk_bit_flip(trial: Trial) -> None:
    images = image_snapshots(trial, 3, 2)
    store = DatastoreRegistry().lookup("store")
    chunk_files = sorted(path for path in (store.root / ".chunks").rglob("*") if DIGEST.fullmatch(path.name))
    damaged = set()
    for path in trial.rng.sample(chunk_files, trial.rng.randint(1, 3)):
        flip_bit(trial, path)
        damaged.add(path.name)
    report = verify_report("store")
    assert not report["ok"]
    assert {entry["digest"] for entry in report["bad-chunks"]} == damaged, report["bad-chunks"]
    hit = {snapshot for entry in report["bad-chunks"] for snapshot in entry["snapshots"]}
    for snapshot, data in images.items():
        restored, error = restored_image(trial, snapshot)
        if snapshot in hit:
            assert restored is None and any(digest in error for digest in damaged), error
        else:
            assert restored == data, f"{snapshot} does not restore identical"


@scenario(
    "index-bit-flip",
    "corruption",
    "a bit flipped in a snapshot's .fidx; a flip that changes which data it names is reported by verify "
    "for that snapshot, every snapshot restores identical or fails with one line",
)
def index_bit_flip(trial: Trial) -> None:
    images = image_snapshots(trial, 3, 2)
    store = DatastoreRegistry().lookup("store")
    victim = trial.rng.choice(sorted(images))
    index = store.root / victim / "disk.img.fidx"
    # Half the flips go to the header's used fields (uuid, time, checksum, sizes), half to the digests.
    if trial.rng.random() < 0.5:
        flip_bit(trial, index, 0, FIXED_INDEX_USED_HEADER)
    else:
        flip_bit(trial, index, FIXED_INDEX_HEADER)
    report = verify_report("store")
    assert set(report["snapshot-errors"]) <= {victim}, report["snapshot-errors"]
    trial.effective = victim in report["snapshot-errors"]
    for snapshot, data in images.items():
        restored, error = restored_image(trial, snapshot)
        if snapshot != victim:
            assert restored == data, f"{snapshot} does not restore identical"
        elif not trial.effective:  # the flip hit bytes no reader uses (a reserved part of the header)
            assert restored == data, f"verify passed {snapshot} but it does not restore identical"
        else:
            assert restored is None or restored == data, f"{snapshot}: damaged index restored different data"


@scenario(
    "cartridge-bit-flip",
    "corruption",
    "a bit flipped inside a chunk archive on a cartridge; the restore names tape, file and chunk, "
    "every snapshot outside that archive restores identical",
)
def cartridge_bit_flip(trial: Trial) -> None:
    setup = tape_with_snapshots(trial, 3, 2, tapes=2)
    result = run_backup(setup)
    label = result.tapes[0]
    with setup.inventory() as inventory, setup.catalog() as catalog:
        members = inventory.compute_media_set_members(result.media_set)
        uuid = next(u for u in members if inventory.get(u).id.label_text == label)
        archives = catalog.media_archives(uuid)
        places = catalog.snapshots_in_set(result.media_set)
    file_number = trial.rng.choice(sorted(n for n, archive in archives.items() if archive[0] == "chunk"))
    flip_in_tape_file(trial, setup.library.path / "cartridges" / label, file_number)
    damaged_digests = {digest.hex() for digest in archives[file_number][2]}
    DatastoreRegistry().create("restored", trial.root / "restored")
    full = tapefs("restore", result.media_set, "restored", "--drive", "drive1", check=False)
    line = one_error_line(full)
    assert f"tape {label} file {file_number}" in line and any(d in line for d in damaged_digests), line
    # Every snapshot none of whose chunks lie in the damaged archive restores identical.
    intact = [
        place.snapshot
        for place in places
        if not snapshot_chunk_digests(setup.datastore, place.snapshot) & damaged_digests
    ]
    if intact:
        DatastoreRegistry().create("intact", trial.root / "intact")
        tapefs("restore", result.media_set, "intact", *(f"store:{name}" for name in intact), "--drive", "drive1")
        original = stored_data(setup.datastore)
        copy = stored_data(DatastoreRegistry().lookup("intact"))
        assert sorted(name for name in intact if any(path.startswith(name) for path in copy)) == sorted(intact)
        for path, data in copy.items():
            assert original.get(path) == data, f"{path} restored from tape differs"


def snapshot_chunk_digests(store, snapshot: str) -> set[str]:
    digests = set()
    for index in (store.root / snapshot).glob("*.fidx"):
        digests |= {digest.hex() for digest in FixedIndex.load(index).digests}
    for index in (store.root / snapshot).glob("*.didx"):
        digests |= {digest.hex() for digest in DynamicIndex.load(index).digests}
    return digests


def tape_blocks(cartridge: Path, file_number: int) -> list[tuple[int, int, int]]:
    """(logical block address, data offset, stored length) of each block of tape file
    `file_number` of a vtape cartridge, read from its index (one entry per block or filemark)."""
    raw = (cartridge / "index").read_bytes()
    current, blocks = 0, []
    for address, start in enumerate(range(0, len(raw) - ENTRY_SIZE + 1, ENTRY_SIZE)):
        entry = _unpack_entry(raw[start : start + ENTRY_SIZE])
        if entry is None:
            continue
        if entry.is_filemark:
            current += 1
        elif current == file_number:
            blocks.append((address, entry.offset, entry.stored_length))
    return blocks


def flip_in_tape_file(trial: Trial, cartridge: Path, file_number: int) -> None:
    """Flip one bit in the data of a seeded random block of tape file `file_number`."""
    _, offset, length = trial.rng.choice(tape_blocks(cartridge, file_number))
    flip_bit(trial, cartridge / "data", offset, offset + length)


@scenario(
    "catalog-db-damage",
    "corruption",
    "bytes overwritten in catalog.sqlite; `tapefs media content` fails with one line (when it reads the damage), "
    "and after moving it aside `tapefs catalog` rebuilds it from tape to match the tapes",
)
def catalog_db_damage(trial: Trial) -> None:
    setup = tape_with_snapshots(trial, 2, 1, tapes=2)
    result = run_backup(setup)
    database = tape_status_dir() / CATALOG_DB_NAME
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = database.stat().st_size
    # Random bytes over a seeded part of the file past SQLite's 100-byte header.
    start = trial.rng.randrange(100, size - 1)
    with open(database, "r+b") as file:
        file.seek(start)
        file.write(trial.random_bytes(min(4096, size - start)))
    damaged = tapefs("media", "content", check=False)
    if damaged.returncode == 0:
        trial.effective = False  # the bytes held nothing the listing reads (SQLite pages carry no checksum)
    else:
        one_error_line(damaged)
    for part in tape_status_dir().glob(f"{CATALOG_DB_NAME}*"):  # the database with its -wal and -shm
        part.rename(part.with_name(f"damaged-{part.name}"))
    for label in result.tapes:
        tapefs("catalog", "--label-text", label, "--drive", "drive0")
    assert_catalog_matches_tapes(setup, result.media_set, exact=True)
