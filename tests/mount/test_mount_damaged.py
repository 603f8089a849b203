"""A chunk damaged on tape: EIO for the ranges that need it, the rest of the file reads, and the
log names the tape, file number and offset."""
import errno
import os
from pathlib import Path

import pytest

from tapefs.datastore.fixed_index import FixedIndex
from tests.helpers.fuse_mounts import mounts_of
from tests.helpers.tape_jobs import run_backup
from tests.helpers.tape_setup import CHUNK, add_cartridges

pytestmark = [pytest.mark.slow, pytest.mark.fuse, pytest.mark.vtape]


def flip_byte_of_chunk(cartridge: Path, blob: bytes) -> None:
    content = cartridge.read_bytes()
    where = content.find(blob[4096:4096 + 64])
    assert where >= 0, "chunk not found on the cartridge"
    with open(cartridge, "r+b") as file:
        file.seek(where + 10)
        file.write(bytes([content[where + 10] ^ 0xFF]))


def test_damaged_chunk_fails_its_range_only(tape_setup, tmp_path):
    add_cartridges(tape_setup.library, 1, "64MiB", "4MiB")
    tape_setup.label("SM0001L8")
    data = os.urandom(3 * CHUNK)
    snapshot = tape_setup.add_snapshot("vm/100", 0, data=data)
    run_backup(tape_setup, eject_media=True)
    index = FixedIndex.load(tape_setup.datastore.snapshot_path(
        tape_setup.datastore.list_snapshots(tape_setup.datastore.list_groups()[0])[0].snapshot) / "disk.img.fidx")
    bad = index.digests[1]
    flip_byte_of_chunk(Path(tape_setup.library.path) / "cartridges" / "SM0001L8" / "data",
                       tape_setup.datastore.chunk_store.read_raw(bad))
    with mounts_of(dict(os.environ), tmp_path) as mount:
        mounted = mount()
        image = mounted.path / "snapshots" / "store" / snapshot / "disk.img"
        with open(image, "rb", buffering=0) as file:
            assert os.pread(file.fileno(), 4096, 0) == data[:4096]
            with pytest.raises(OSError) as failure:
                os.pread(file.fileno(), 4096, CHUNK + 100)
            assert failure.value.errno == errno.EIO
            assert os.pread(file.fileno(), 4096, 2 * CHUNK) == data[2 * CHUNK:2 * CHUNK + 4096]
        # Read again and again: the damaged chunk is not read from tape again.
        read_once = mounted.status()["tapes"]["bytes-from-tape"]
        for attempt in range(10):
            with open(image, "rb", buffering=0) as file, pytest.raises(OSError) as failure:
                os.pread(file.fileno(), 4096, CHUNK + 100 + attempt)
            assert failure.value.errno == errno.EIO
        assert mounted.status()["tapes"]["bytes-from-tape"] == read_once
        log = mounted.log()
        assert "tape SM0001L8 file" in log and bad.hex() in log
