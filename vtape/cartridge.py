"""File-backed tape cartridges.

A cartridge is a directory holding three files:

* ``data``: the payload of every block, back to back, in tape order;
* ``index``: one 32-byte entry per logical object (block or filemark), so the
  entry of object N sits at byte N*32 and any object is found in O(1);
* ``meta.json``: identity, capacity, write protection, MAM attributes and
  usage counters, replaced atomically.

End of data is the number of index entries. Writing in the middle truncates
both files, as a real drive forgets everything after the write position.

Crash safety: a block's payload is written before its index entry, and each
entry carries a CRC, so after a ``kill -9`` at any moment the cartridge opens
with every object whose entry was written (a torn or dangling tail entry is
cut off, together with data it does not cover). Filemarks and flushes fsync
both files, so they also survive a power loss.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime
import logging
import os
import struct
import zlib
from array import array
from pathlib import Path

from . import atomic, media
from .errors import VtapeError

log = logging.getLogger(__name__)

BLOCK = 1
FILEMARK = 2
FLAG_ENCRYPTED = 0x01

# One index entry, little-endian: data offset, stored length, logical length,
# kind, flags, reserved, key id, then a CRC-32 of those 28 bytes. struct rather
# than construct: an entry is packed per WRITE and parsed per READ.
ENTRY = struct.Struct("<QIIBBHQ")
ENTRY_SIZE = 32
KIND_OFFSET = 16


@dataclasses.dataclass(frozen=True)
class Entry:
    offset: int
    stored_length: int
    length: int
    kind: int
    flags: int
    key_id: int

    @property
    def is_filemark(self) -> bool:
        return self.kind == FILEMARK

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & FLAG_ENCRYPTED)


#: Filemark index entries written at once (2 MiB).
FILEMARK_BATCH = 65536


def _pack_entry(offset: int, stored_length: int, length: int, kind: int, flags: int, key_id: int) -> bytes:
    head = ENTRY.pack(offset, stored_length, length, kind, flags, 0, key_id)
    return head + zlib.crc32(head).to_bytes(4, "little")


def _unpack_entry(raw: bytes) -> Entry | None:
    """The entry, or None if it is torn (bad CRC or kind)."""
    if len(raw) != ENTRY_SIZE or zlib.crc32(raw[:28]) != int.from_bytes(raw[28:], "little"):
        return None
    offset, stored_length, length, kind, flags, _, key_id = ENTRY.unpack_from(raw)
    if kind not in (BLOCK, FILEMARK):
        return None
    return Entry(offset, stored_length, length, kind, flags, key_id)


@dataclasses.dataclass(frozen=True)
class FileRegion:
    """Bytes of a cartridge's data file, for the daemon to send without copying them."""

    fd: int
    offset: int
    length: int

    def __len__(self) -> int:
        return self.length


class CartridgeError(VtapeError):
    pass


def new_meta(label: media.Label, capacity: int, early_warning: int | None = None, cleaning_cycles: int = 50) -> dict:
    today = datetime.date.today().strftime("%Y%m%d")
    return {
        "barcode": label.barcode,
        "generation": label.generation,
        "worm": label.worm,
        "cleaning": label.cleaning,
        "cleaning_cycles_left": cleaning_cycles if label.cleaning else 0,
        "capacity": capacity,
        "early_warning": early_warning if early_warning is not None else media.default_early_warning(capacity),
        "write_protected": False,
        "density": 0,  # recorded density; 0 = never written
        "manufactured": today,
        "serial": f"{label.barcode}{today}",
        "load_count": 0,
        "initialization_count": 0,
        "volume_change_reference": 0,
        "last_loads": [],  # device vendor+serial at the last four loads
        "bytes_written": 0,
        "bytes_read": 0,
        "datasets_written": 0,
        "datasets_read": 0,
        "bop_passes": 0,
        "mot_passes": 0,
        "attributes": {},  # writable MAM attributes: "0800" -> hex value
    }


class Cartridge:
    """One cartridge's data and metadata, open for reading and appending."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.meta = atomic.read_json(self.directory / "meta.json")
        self._data_fd = os.open(self.directory / "data", os.O_RDWR | os.O_CREAT, 0o600)
        self._index_fd = os.open(self.directory / "index", os.O_RDWR | os.O_CREAT, 0o600)
        self.count = 0
        self.data_end = 0
        self.filemarks = array("Q")
        self._recover()

    @classmethod
    def create(cls, directory: Path, meta: dict) -> Cartridge:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=False)
        atomic.write_json(directory / "meta.json", meta)
        return cls(directory)

    @property
    def barcode(self) -> str:
        return self.meta["barcode"]

    @property
    def capacity(self) -> int:
        return self.meta["capacity"]

    @property
    def early_warning_at(self) -> int:
        return self.capacity - self.meta["early_warning"]

    def _recover(self) -> None:
        """Find the last complete object and cut off whatever follows it."""
        index_size = os.fstat(self._index_fd).st_size
        data_size = os.fstat(self._data_fd).st_size
        count = index_size // ENTRY_SIZE
        data_end = 0
        while count:
            entry = _unpack_entry(os.pread(self._index_fd, ENTRY_SIZE, (count - 1) * ENTRY_SIZE))
            if entry and entry.offset + entry.stored_length <= data_size:
                data_end = entry.offset + entry.stored_length
                break
            count -= 1
        if count * ENTRY_SIZE != index_size or data_end != data_size:
            log.warning(
                "cartridge %s: cut a torn tail (index %d -> %d bytes, data %d -> %d bytes)",
                self.directory.name,
                index_size,
                count * ENTRY_SIZE,
                data_size,
                data_end,
            )
            os.ftruncate(self._index_fd, count * ENTRY_SIZE)
            os.ftruncate(self._data_fd, data_end)
        self.count, self.data_end = count, data_end
        raw = os.pread(self._index_fd, count * ENTRY_SIZE, 0)
        kinds = raw[KIND_OFFSET::ENTRY_SIZE]  # the kind byte of every entry
        position = kinds.find(FILEMARK)
        while position != -1:
            self.filemarks.append(position)
            position = kinds.find(FILEMARK, position + 1)

    # -- reading ---------------------------------------------------------------

    def entry(self, number: int) -> Entry:
        raw = os.pread(self._index_fd, ENTRY_SIZE, number * ENTRY_SIZE)
        entry = _unpack_entry(raw)
        if entry is None:
            raise CartridgeError(f"cartridge {self.barcode}: index entry {number} is corrupt")
        return entry

    def read_payload(self, entry: Entry) -> bytes:
        data = os.pread(self._data_fd, entry.stored_length, entry.offset)
        if len(data) != entry.stored_length:
            raise CartridgeError(f"cartridge {self.barcode}: block at byte {entry.offset} is truncated")
        return data

    def payload_region(self, entry: Entry) -> FileRegion:
        return FileRegion(self._data_fd, entry.offset, entry.stored_length)

    def filemarks_before(self, position: int) -> int:
        return bisect.bisect_left(self.filemarks, position)

    def next_filemark(self, position: int) -> int | None:
        """Index of the first filemark at or after position."""
        i = bisect.bisect_left(self.filemarks, position)
        return self.filemarks[i] if i < len(self.filemarks) else None

    def previous_filemark(self, position: int) -> int | None:
        """Index of the last filemark before position."""
        i = bisect.bisect_left(self.filemarks, position)
        return self.filemarks[i - 1] if i else None

    def data_offset(self, position: int) -> int:
        """Bytes of tape used before object ``position``."""
        return self.entry(position).offset if position < self.count else self.data_end

    # -- writing ---------------------------------------------------------------

    def truncate(self, position: int) -> None:
        """Forget every object from ``position`` on."""
        if position >= self.count:
            return
        offset = self.entry(position).offset
        os.ftruncate(self._index_fd, position * ENTRY_SIZE)
        os.ftruncate(self._data_fd, offset)
        self.count, self.data_end = position, offset
        del self.filemarks[bisect.bisect_left(self.filemarks, position) :]

    def append_block(self, stored: bytes | memoryview, length: int, flags: int = 0, key_id: int = 0) -> None:
        offset = self.data_end
        written = os.pwrite(self._data_fd, stored, offset)
        if written != len(stored):
            raise CartridgeError(f"cartridge {self.barcode}: short write to the data file")
        os.pwrite(
            self._index_fd, _pack_entry(offset, len(stored), length, BLOCK, flags, key_id), self.count * ENTRY_SIZE
        )
        self.data_end += len(stored)
        self.count += 1

    def append_filemarks(self, number: int) -> None:
        # One WRITE FILEMARKS may ask for 16 million: their index entries, all alike, go out in
        # batches so that memory stays bounded.
        entry = _pack_entry(self.data_end, 0, 0, FILEMARK, 0, 0)
        for first in range(0, number, FILEMARK_BATCH):
            batch = min(FILEMARK_BATCH, number - first)
            os.pwrite(self._index_fd, entry * batch, (self.count + first) * ENTRY_SIZE)
        self.filemarks.extend(range(self.count, self.count + number))
        self.count += number
        self.flush()

    def flush(self) -> None:
        os.fsync(self._data_fd)
        os.fsync(self._index_fd)

    def erase(self) -> None:
        self.truncate(0)
        self.flush()

    def note_modification(self) -> None:
        """Count the first change of data or MAM after each load (MAM volume change reference)."""
        meta = self.meta
        if meta.get("volume_change_load") != meta["load_count"]:
            meta["volume_change_reference"] += 1
            meta["volume_change_load"] = meta["load_count"]
            self.save_meta()

    def save_meta(self) -> None:
        atomic.write_json(self.directory / "meta.json", self.meta)

    def close(self) -> None:
        os.close(self._data_fd)
        os.close(self._index_fd)
