"""Mount tests: real FUSE mounts of one archive per test process (tests/helpers/mount_archive.py),
and an image backed up over three tapes for the read planner (tests/helpers/tape_image.py)."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers.fuse_mounts import mounts_of
from tests.helpers.mount_archive import TapeArchive, build_archive
from tests.helpers.tape_image import BackedUp, back_up_image


@pytest.fixture(scope="session")
def tape_archive(tmp_path_factory) -> TapeArchive:
    """Built once per test process: the mount tests share one xdist group, so one worker runs them."""
    archive = build_archive(tmp_path_factory.mktemp("archive"))
    yield archive
    try:
        code = archive.library.stop()
        assert code == 0, archive.library.log()
    finally:
        archive.library.cleanup()


@pytest.fixture
def mount_tree(tape_archive, tmp_path):
    """Factory: mount_tree(*options) → a MountedTree of the shared archive; unmounted at the end,
    its exit and log checked."""
    with mounts_of(tape_archive.env, tmp_path) as make:
        yield make
    tape_archive.empty_drives()


@pytest.fixture
def shared_mount_tree(tape_archive):
    """mount_tree, with mount points other users can reach (pytest's tmp_path is root's alone)."""
    directory = Path(tempfile.mkdtemp(prefix="tapefs-shared-mount-", dir="/tmp"))
    directory.chmod(0o755)
    try:
        with mounts_of(tape_archive.env, directory) as make:
            yield make
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    tape_archive.empty_drives()


@pytest.fixture
def backed_up(tape_setup, tmp_path) -> BackedUp:
    """An image of 9 random 4 MiB chunks backed up over three 16 MiB tapes; every drive empty."""
    return back_up_image(tape_setup, tmp_path)
