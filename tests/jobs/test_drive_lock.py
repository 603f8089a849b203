"""One tapefs process per drive: another process's lock is a clear error naming it; the sessions
of one process share the drive."""
import subprocess
import sys
import time

import pytest

from tapefs.jobs.drive_lock import DriveBusy, DriveLock

HOLD = """
import sys, time
from tapefs.jobs.drive_lock import DriveLock
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


def test_sessions_of_one_process_share_a_drive(tmp_path):
    first, second = DriveLock("drive0", tmp_path), DriveLock("drive0", tmp_path)
    first.acquire()
    second.acquire()
    assert first.held and second.held
