"""Running a mount: `tapefs umount` of a server that hangs, the control file outside the mount,
and log lines that say when."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tapefs.mount.service import control_file, is_mounted
from tests.helpers.commands import tapefs

pytestmark = [pytest.mark.slow, pytest.mark.fuse, pytest.mark.vtape, pytest.mark.xdist_group("mount")]


def test_umount_of_a_hung_server_detaches_the_mount_and_kills_the_server(tape_archive, mount_tree):
    mounted = mount_tree()
    status_dir = Path(tape_archive.env["TAPEFS_STATE_DIR"]) / "tape"
    control = control_file(mounted.path, status_dir)
    assert control.exists() and f'"pid": {mounted.process.pid}' in control.read_text()
    os.kill(mounted.process.pid, signal.SIGSTOP)  # hangs: every request through the mount waits
    started = time.monotonic()
    result = tapefs("umount", mounted.path, "--timeout", "2", env=tape_archive.env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 20
    assert mounted.process.wait(timeout=10) == -signal.SIGKILL
    assert not is_mounted(mounted.path)
    assert not control.exists()


def test_log_lines_carry_the_time_and_the_control_file_goes_at_unmount(tape_archive, mount_tree):
    mounted = mount_tree()
    control = control_file(mounted.path, Path(tape_archive.env["TAPEFS_STATE_DIR"]) / "tape")
    assert mounted.unmount() == 0
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO tapefs\.mount\.service: mounted ", mounted.log(),
                     re.MULTILINE), mounted.log()
    assert not control.exists()


def test_the_server_bounds_glibc_heaps_before_its_threads_start():
    # Per-thread heaps each kept a high-water mark of freed chunks (1 GiB read: 409 MB, 228 with two).
    probe = "from tapefs.mount.service import limit_malloc_arenas; print(limit_malloc_arenas())"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True", result.stderr
