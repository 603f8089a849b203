"""One tapefs process per drive: another process's lock is a clear error naming it; the sessions
of one process share the drive."""
import subprocess
import sys
import time

import pytest

from tapefs.media.drive_lock import DriveBusy, DriveLock

HOLD = """
import sys, time
from tapefs.media.drive_lock import DriveLock
lock = DriveLock("drive0", sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_drive_held_by_another_process_is_busy_until_it_lets_go(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DriveBusy, match=f"drive drive0 is in use by another tapefs process \\(pid {holder.pid}\\)"):
            DriveLock("drive0", tmp_path).acquire()
        DriveLock("drive1", tmp_path).acquire()  # other drives are free
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 5
    lock = DriveLock("drive0", tmp_path)
    while True:
        try:
            lock.acquire()
            break
        except DriveBusy:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert lock.held
    lock.release()
    assert not lock.held


TRY = """
import sys
from tapefs.media.drive_lock import DriveBusy, DriveLock
try:
    DriveLock("drive0", sys.argv[1]).acquire()
    print("free")
except DriveBusy:
    print("busy")
"""


def seen_from_another_process(status_dir) -> str:
    return subprocess.run([sys.executable, "-c", TRY, str(status_dir)], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


def test_holders_in_one_process_share_a_drive_until_the_last_lets_go(tmp_path):
    first, second = DriveLock("drive0", tmp_path), DriveLock("drive0", tmp_path)
    first.acquire()
    second.acquire()
    assert first.held and second.held
    # POSIX would drop the process's lock when any descriptor of the file closes.
    second.release()
    assert seen_from_another_process(tmp_path) == "busy"
    first.release()
    assert seen_from_another_process(tmp_path) == "free"


def test_a_lock_is_a_context_manager(tmp_path):
    with DriveLock("drive0", tmp_path) as lock:
        assert lock.held and seen_from_another_process(tmp_path) == "busy"
    assert not lock.held and seen_from_another_process(tmp_path) == "free"
