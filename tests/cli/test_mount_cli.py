"""`tapefs mount` and `tapefs umount` refuse bad input with one line and start nothing."""
import os
from pathlib import Path

import pytest

from tests.helpers.commands import tapefs


def fails_with(proc, text: str) -> None:
    assert proc.returncode != 0
    assert text in proc.stderr, proc.stderr


def test_missing_mount_point(tmp_path, env):
    fails_with(tapefs("mount", str(tmp_path / "nowhere"), env=env, check=False), "is not a directory")


def test_mount_point_that_is_a_file(tmp_path, env):
    (tmp_path / "file").write_text("x")
    fails_with(tapefs("mount", str(tmp_path / "file"), env=env, check=False), "is a file")


def test_mount_point_that_is_not_empty(tmp_path, env):
    (tmp_path / "mnt").mkdir()
    (tmp_path / "mnt" / "something").write_text("keep me")
    fails_with(tapefs("mount", str(tmp_path / "mnt"), env=env, check=False), "is not empty")
    assert (tmp_path / "mnt" / "something").read_text() == "keep me"


@pytest.mark.parametrize("size, message", [("lots", "bad size 'lots'"), ("1MiB", "less than one chunk")])
def test_bad_cache_size(tmp_path, env, size, message):
    (tmp_path / "mnt").mkdir()
    fails_with(tapefs("mount", str(tmp_path / "mnt"), "--cache-size", size, env=env, check=False), message)


def test_negative_read_timeout(tmp_path, env):
    (tmp_path / "mnt").mkdir()
    fails_with(tapefs("mount", str(tmp_path / "mnt"), "--read-timeout", "-1", env=env, check=False), "--read-timeout")


def test_unknown_drive_ends_the_server_with_its_name(tmp_path, env):
    (tmp_path / "mnt").mkdir()
    proc = tapefs("mount", str(tmp_path / "mnt"), "--drive", "nosuch", env=env, check=False)
    fails_with(proc, "drive nosuch is not in tape.cfg (drives: none)")
    assert proc.stderr.count("error:") == 1, proc.stderr
    assert not os.path.ismount(tmp_path / "mnt")


def test_umount_of_a_directory_that_is_not_mounted(tmp_path, env):
    (tmp_path / "mnt").mkdir()
    fails_with(tapefs("umount", str(tmp_path / "mnt"), env=env, check=False), "is not mounted")


def test_help_and_docs_name_the_same_default_paths(env):
    help_text = " ".join(tapefs("mount", "--help", env=env).stdout.split())
    docs = (Path(__file__).parents[2] / "docs" / "mount.md").read_text()
    for option, default in (("--cache-dir", "STATE_DIR/tape/mount-cache"), ("--log-file", "STATE_DIR/tape/mount.log")):
        assert f"[default: {default}]" in help_text
        assert f"| `{option} " in docs and f"| `{default}` |" in docs
