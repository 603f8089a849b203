"""A real mount finds backups made while it runs (issue 21): its refresh task rebuilds the views in
a worker thread every few seconds, inode numbers stay with their paths."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tapefs.mount.tree import REFRESH_SECONDS
from tests.helpers.mount_archive import forget_recorded_snapshot, record_snapshot

pytestmark = [pytest.mark.slow, pytest.mark.fuse, pytest.mark.vtape, pytest.mark.xdist_group("mount")]

NEW_SNAPSHOT = "ct/999/2030-01-01T00:00:00Z"


def wait_for(condition, mounted, timeout: float = 4 * REFRESH_SECONDS) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, mounted.log()
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_snapshot_recorded_while_mounted_shows_up_within_seconds_and_goes_again(tape_archive, mount_tree):
    mounted = mount_tree()
    store = mounted.path / "snapshots" / "store"
    before = {name: os.stat(store / name).st_ino for name in os.listdir(store)}
    builds = mounted.status()["tree"]["view-builds"]
    status_dir = Path(tape_archive.env["TAPEFS_STATE_DIR"]) / "tape"
    record_snapshot(status_dir, tape_archive.tapes[0], "store", NEW_SNAPSHOT)
    try:
        took = wait_for(lambda: "ct" in os.listdir(store), mounted)
        assert took < 2 * REFRESH_SECONDS
        assert (store / NEW_SNAPSHOT).is_dir()
        assert {name: os.stat(store / name).st_ino for name in before} == before
        assert mounted.status()["tree"]["view-builds"] > builds
    finally:
        forget_recorded_snapshot(status_dir, "store", NEW_SNAPSHOT)
    # The next test's mount finds the archive as it was; this one lists it so again too.
    wait_for(lambda: "ct" not in os.listdir(store), mounted)
    assert sorted(os.listdir(store)) == sorted(before)
