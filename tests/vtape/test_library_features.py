"""Library-wide behaviour: access control, the timing model, the event log."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.helpers.cdb import REWIND, TUR, load, ok, sense, write

pytestmark = pytest.mark.vtape

CONNECT_AS_NOBODY = """
import os, socket, sys
os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    s.sendall(b"VTQ1" + bytes(12) + bytes([6, 0, 0, 0]) + bytes(16))
    print("answered" if s.recv(20) else "closed")
except (ConnectionResetError, BrokenPipeError):
    print("closed")
except PermissionError:
    print("permission denied")
"""


def connect_as_nobody(path) -> str:
    if os.getuid() != 0:
        pytest.skip("needs root to switch to another uid")
    os.chmod(os.path.dirname(path), 0o755)
    return subprocess.run([sys.executable, "-c", CONNECT_AS_NOBODY, str(path)], capture_output=True,
                          text=True, timeout=30).stdout.strip()


def test_other_users_cannot_reach_a_private_library(vtape_library):
    os.chmod(vtape_library.root, 0o755)
    assert connect_as_nobody(vtape_library.drives[0]) == "permission denied"
    # Even through a socket someone opened up, the daemon checks the peer's uid.
    os.chmod(vtape_library.drives[0], 0o666)
    assert connect_as_nobody(vtape_library.drives[0]) == "closed"


def test_a_shared_library_serves_other_users(make_vtape_library):
    library = make_vtape_library(allow_other_users=True)
    os.chmod(library.root, 0o755)
    assert os.stat(library.drives[0]).st_mode & 0o777 == 0o666
    assert connect_as_nobody(library.drives[0]) == "answered"


def test_timing_model_makes_a_load_take_time(make_vtape_library):
    library = make_vtape_library(timing=True)
    drive = load(library)
    started = time.monotonic()
    assert sense(drive.execute(TUR)).code == (2, 0x04, 0x01)  # becoming ready
    while drive.execute(TUR).status:
        assert time.monotonic() - started < 10
        time.sleep(0.1)
    assert 1.0 < time.monotonic() - started < 10
    record = os.urandom(1 << 20)
    for _ in range(8):
        ok(drive.execute(write(len(record)), record))
    started = time.monotonic()
    ok(drive.execute(REWIND))  # 8 MiB of an 8 GiB tape at 40 s end to end: ~40 ms
    assert 0.02 < time.monotonic() - started < 2


def test_event_log_records_every_command_with_latency(vtape_library):
    drive = load(vtape_library)
    drive.execute(TUR)
    drive.execute(bytes([0x08, 0x02, 0, 1, 0, 0]), data_in_len=256)
    vtape_library.stop()
    events = [json.loads(line) for line in (vtape_library.path / "events.jsonl").read_text().splitlines()]
    commands = [(e["device"], e["command"]) for e in events if "command" in e]
    assert ("changer", "MOVE MEDIUM") in commands and ("drive0", "READ(6)") in commands
    blank = next(e for e in events if e.get("command") == "READ(6)")
    assert blank["sense"] == "8/00/05" and blank["cdb"] == "080200010000" and blank["us"] >= 0
