"""Reads through a real mount that must not wait for each other: a read waiting for a tape outside
the library holds no drive and no shared slot, waits once, and ends at unmount; many readers over
several tapes and fewer drives all finish."""
from __future__ import annotations

import errno
import random
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers.tape_setup import MiB

pytestmark = [pytest.mark.slow, pytest.mark.fuse, pytest.mark.vtape, pytest.mark.xdist_group("mount")]


def image_path(mounted, archive):
    return mounted.path / "snapshots" / "store" / archive.image_snapshot / "disk.img"


def read_range(path, offset: int, length: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(offset)
        return file.read(length)


class BlockedReader(threading.Thread):
    """A read of a range whose tape is out of the library; remembers its data or errno."""

    def __init__(self, path, offset: int):
        super().__init__(daemon=True)
        self.path, self.offset = path, offset
        self.outcome: dict = {}

    def run(self) -> None:
        try:
            self.outcome["data"] = read_range(self.path, self.offset, 4096)
        except OSError as error:
            self.outcome["errno"] = error.errno


def wait_until_waiting_for(mounted, label: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not any(wait["tape"] == label for wait in mounted.status()["tapes"]["waiting-for"]):
        assert time.monotonic() < deadline, mounted.status()
        time.sleep(0.1)


@pytest.fixture
def missing_tape(tape_archive):
    """The last tape of the set, taken out of the library for the test."""
    label = tape_archive.tapes[-1]
    tape_archive.take_out(label)
    yield label
    tape_archive.put_back(label)


def test_a_read_waiting_for_a_vaulted_tape_keeps_no_one_else_waiting_and_unmount_ends_it(
        tape_archive, mount_tree, missing_tape):
    # One drive: a read waiting for the missing tape must not hold it, or the others starve.
    mounted = mount_tree("--drive", "drive0", "--read-timeout", "600")
    image = image_path(mounted, tape_archive)
    source = tape_archive.image.read_bytes()
    present = [offset for label in tape_archive.tapes[:-1] for offset in tape_archive.image_offsets_on(label)]
    cached = present[:4]
    for offset in cached:
        assert read_range(image, offset, MiB) == source[offset:offset + MiB]
    blocked = BlockedReader(image, tape_archive.image_offsets_on(missing_tape)[0])
    blocked.start()
    wait_until_waiting_for(mounted, missing_tape)

    # Four ranges from the cache, four from tapes the drive must load.
    ranges = [(offset + 4096, MiB) for offset in cached] + [(offset, MiB) for offset in present[-4:]]
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda r: read_range(image, *r), ranges, timeout=60))
    took = time.monotonic() - started
    assert [data for data in results] == [source[offset:offset + length] for offset, length in ranges]
    assert took < 30, took
    assert blocked.is_alive()
    status = mounted.status()["tapes"]
    assert any(queue["tape"] == missing_tape for queue in status["queues"]), status
    assert status["drives"][0]["serving"] != missing_tape

    started = time.monotonic()
    assert mounted.unmount() == 0, mounted.log()
    blocked.join(30)
    assert not blocked.is_alive() and time.monotonic() - started < 30
    # The documented errno; never a reply the connection abort makes up.
    assert blocked.outcome == {"errno": errno.EIO}
    threads = re.search(r"threads at exit: (.*)", mounted.log()).group(1).split(", ")
    assert not [name for name in threads if name.startswith("tape-read")], threads


def test_a_read_waits_once_for_a_missing_tape_until_it_is_back(tape_archive, mount_tree, missing_tape):
    mounted = mount_tree("--read-timeout", "3")
    image = image_path(mounted, tape_archive)
    offset = tape_archive.image_offsets_on(missing_tape)[0]
    started = time.monotonic()
    # The kernel retries a failed read for cat: before, each try waited the whole timeout again.
    cat = subprocess.run(["dd", f"if={image}", "of=/dev/null", "bs=1M", f"skip={offset // MiB}", "count=1"],
                         capture_output=True, timeout=120)
    took = time.monotonic() - started
    assert cat.returncode != 0 and b"No medium found" in cat.stderr, cat.stderr
    assert 2.5 < took < 5.5, took
    started = time.monotonic()
    with pytest.raises(OSError) as failure:
        read_range(image, offset, 4096)
    assert failure.value.errno == errno.ENOMEDIUM
    assert time.monotonic() - started < 1
    assert [entry["tape"] for entry in mounted.status()["tapes"]["given-up"]] == [missing_tape]

    tape_archive.put_back(missing_tape)
    try:
        deadline = time.monotonic() + 20
        while mounted.status()["tapes"]["given-up"]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        source = tape_archive.image.read_bytes()
        assert read_range(image, offset, 4096) == source[offset:offset + 4096]
    finally:
        assert mounted.unmount() == 0, mounted.log()
        tape_archive.empty_drives()
        tape_archive.take_out(missing_tape)  # as the fixture expects to find it


def test_r7_32_parallel_readers_over_three_tapes_and_two_drives_do_not_deadlock(tape_archive, mount_tree):
    mounted = mount_tree("--drive", "drive0", "--drive", "drive1")
    image = image_path(mounted, tape_archive)
    source = tape_archive.image.read_bytes()
    randomness = random.Random(32)
    offsets = [offset for label in tape_archive.tapes[:3] for offset in tape_archive.image_offsets_on(label)]
    ranges = [(randomness.choice(offsets) + randomness.randrange(0, MiB), randomness.randrange(1, MiB))
              for _ in range(32)]
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda r: read_range(image, *r), ranges, timeout=240))
    for (offset, length), data in zip(ranges, results):
        assert data == source[offset:offset + length]
    assert mounted.status()["tapes"]["pending-urgent"] == 0  # readahead may still be queued


def test_more_reads_waiting_for_a_missing_tape_than_the_kernel_default_keep_no_one_waiting(
        tape_archive, mount_tree, missing_tape):
    # The kernel keeps 12 FUSE reads in flight by default: 13 reads waiting for a tape took them
    # all and every other read of the mount queued behind them.
    mounted = mount_tree("--read-timeout", "600")
    # The server raises the limit once the kernel has its answer to FUSE INIT.
    deadline = time.monotonic() + 30
    while mounted.status()["kernel-max-background"] != 1024:
        assert time.monotonic() < deadline, mounted.status()["kernel-max-background"]
        time.sleep(0.1)
    image = image_path(mounted, tape_archive)
    source = tape_archive.image.read_bytes()
    missing = tape_archive.image_offsets_on(missing_tape)
    blocked = [BlockedReader(image, offset + step * MiB) for offset in missing for step in range(4)][:24]
    assert len(blocked) > 12
    for reader in blocked:
        reader.start()
    wait_until_waiting_for(mounted, missing_tape)
    present = tape_archive.image_offsets_on(tape_archive.tapes[0])[:4]
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda offset: read_range(image, offset, MiB), present, timeout=120))
    assert results == [source[offset:offset + MiB] for offset in present]
    assert time.monotonic() - started < 30
    assert sum(reader.is_alive() for reader in blocked) == len(blocked)
    assert mounted.unmount() == 0, mounted.log()
    for reader in blocked:
        reader.join(30)
    assert {reader.outcome.get("errno") for reader in blocked} == {errno.EIO}
