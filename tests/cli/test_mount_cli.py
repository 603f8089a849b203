"""`tapefs mount` and `tapefs umount` refuse bad input with one line and start nothing."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TAPEFS = [sys.executable, "-m", "tapefs"]


def tapefs(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEFS_")}
    env.update(TAPEFS_CONFIG_DIR=str(tmp_path / "config"), TAPEFS_STATE_DIR=str(tmp_path / "state"))
    proc = subprocess.run([*TAPEFS, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def fails_with(proc, text: str) -> None:
    assert proc.returncode != 0
    assert text in proc.stderr, proc.stderr


def test_missing_mount_point(tmp_path):
    fails_with(tapefs(tmp_path, "mount", str(tmp_path / "nowhere")), "is not a directory")


def test_mount_point_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    fails_with(tapefs(tmp_path, "mount", str(tmp_path / "file")), "is a file")


def test_mount_point_that_is_not_empty(tmp_path):
    (tmp_path / "mnt").mkdir()
    (tmp_path / "mnt" / "something").write_text("keep me")
    fails_with(tapefs(tmp_path, "mount", str(tmp_path / "mnt")), "is not empty")
    assert (tmp_path / "mnt" / "something").read_text() == "keep me"


@pytest.mark.parametrize("size, message", [("lots", "bad size 'lots'"), ("1MiB", "less than one chunk")])
def test_bad_cache_size(tmp_path, size, message):
    (tmp_path / "mnt").mkdir()
    fails_with(tapefs(tmp_path, "mount", str(tmp_path / "mnt"), "--cache-size", size), message)


def test_negative_read_timeout(tmp_path):
    (tmp_path / "mnt").mkdir()
    fails_with(tapefs(tmp_path, "mount", str(tmp_path / "mnt"), "--read-timeout", "-1"), "--read-timeout")


def test_unknown_drive_ends_the_server_with_its_name(tmp_path):
    (tmp_path / "mnt").mkdir()
    proc = tapefs(tmp_path, "mount", str(tmp_path / "mnt"), "--drive", "nosuch")
    fails_with(proc, "drive nosuch is not in tape.cfg (drives: none)")
    assert proc.stderr.count("error:") == 1, proc.stderr
    assert not os.path.ismount(tmp_path / "mnt")


def test_umount_of_a_directory_that_is_not_mounted(tmp_path):
    (tmp_path / "mnt").mkdir()
    fails_with(tapefs(tmp_path, "umount", str(tmp_path / "mnt")), "is not mounted")
