"""``tapefs datastore sync`` and ``gc`` as a user runs them, including the ways they fail."""

import json
import os
import random
import signal
import subprocess
import time

import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tapefs.datastore.verify import verify_datastore
from tests.helpers.commands import command_path, one_error_line, tapefs
from tests.helpers.synthetic_snapshots import make_snapshot

GROUP = BackupGroup(BackupNamespace(), "host", "x")


def listing(datastore: Datastore) -> list[tuple[str, bool]]:
    return [(str(info.snapshot), info.finished) for ns in datastore.list_namespaces() for g in datastore.list_groups(ns)
            for info in datastore.list_snapshots(g, include_unfinished=True)]


def every_file(root) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file() and p.name != ".lock"}


@pytest.fixture
def second(tmp_path, env):
    Datastore.create(tmp_path / "second", prefix_dirs=False)
    tapefs("datastore", "add", "second", tmp_path / "second", env=env)
    return Datastore.open(tmp_path / "second")


def random_pieces(seed: int, count: int, size: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(size) for _ in range(count)]


def test_sync_command(store, second, env):
    source = Datastore.open(store)
    for t in (100, 200):
        make_snapshot(source, BackupSnapshot(GROUP, t), pieces=random_pieces(t, 3, 1000))
    stats = json.loads(tapefs("datastore", "sync", "main", "second", "--output-format", "json", env=env).stdout)
    assert (stats["snapshots-copied"], stats["chunks-copied"], stats["errors"]) == (2, 6, [])
    assert listing(second) == listing(source)
    text = tapefs("datastore", "sync", "main", "second", env=env).stdout
    assert text.startswith("0 snapshots copied, 2 already there, 0 removed; 0 chunks copied")


@pytest.mark.slow
def test_sync_job_update_changes_what_is_given_and_refuses_bad_results(store, second, env, tmp_path):
    config = tmp_path / "config" / "sync.cfg"
    tapefs("datastore", "sync-job", "create", "weekly", "--store", "second", "--remote-store", "main",
           "--group-filter", "type:vm", "--schedule", "sun 04:30", "--comment", "to S3", env=env)
    tapefs("datastore", "sync-job", "update", "weekly", "--group-filter", "type:ct", "--group-filter", "type:host",
           "--remove-vanished", "true", "--transfer-last", "2", "--delete", "comment", env=env)
    (job,) = json.loads(tapefs("datastore", "sync-job", "list", "--output-format", "json", env=env).stdout)
    assert (job["group-filter"], job["remove-vanished"], job["transfer-last"], job["schedule"], job["comment"]) == (
        ["type:ct", "type:host"], True, 2, "sun 04:30", "")
    before = config.read_text()
    for args, message in [
        (["--store", "main"], "source and target are both 'main'"),
        (["--remote-store", "nope"], "nope"),
        (["--schedule", "sun 4:61"], "4:61"),
        (["--group-filter", "kind:vm"], "kind:vm"),
    ]:
        line = one_error_line(tapefs("datastore", "sync-job", "update", "weekly", *args, env=env, check=False),
                              3 if message == "nope" else 2)
        assert message in line and str(config) not in line
    assert "no sync job named 'ghost'" in one_error_line(
        tapefs("datastore", "sync-job", "update", "ghost", "--comment", "x", env=env, check=False), 3)
    assert config.read_text() == before


def test_bad_sync_input_is_one_line_and_changes_nothing(store, second, env):
    make_snapshot(Datastore.open(store), BackupSnapshot(GROUP, 100), pieces=random_pieces(1, 2, 100))
    before = (every_file(store), every_file(second.root))
    for args, message in [
        (("main", "second", "--group-filter", "regex:("), "group filter 'regex:(': missing )"),
        (("main", "second", "--group-filter", "host/x"), "invalid group filter 'host/x'"),
        (("main", "missing"), "no datastore named 'missing'"),
        (("main", "main"), "source and target are the same datastore"),
        (("main", "second", "--ns", "nope"), "namespace nope not found in datastore main"),
        (("main", "second", "--target-ns", "bad..ns/x/../"), "invalid namespace component"),
    ]:
        line = one_error_line(tapefs("datastore", "sync", *args, env=env, check=False))
        assert line.startswith("tapefs: error: ") and message in line, line
    usage = tapefs("datastore", "sync", "main", "second", "--transfer-last", "0", env=env, check=False)
    assert usage.returncode == 2 and "--transfer-last" in usage.stderr
    assert (every_file(store), every_file(second.root)) == before


@pytest.fixture
def tiny_target(tmp_path, env):
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        Datastore.create(mount_point / "store", prefix_dirs=False)
        tapefs("datastore", "add", "tiny", mount_point / "store", env=env)
        yield Datastore.open(mount_point / "store")
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.mark.slow
def test_disk_full_in_the_target(store, tiny_target, env):
    source = Datastore.open(store)
    make_snapshot(source, BackupSnapshot(GROUP, 100), pieces=random_pieces(2, 8, 64 << 10))   # fits
    make_snapshot(source, BackupSnapshot(GROUP, 200), pieces=random_pieces(3, 64, 64 << 10))  # 4 MiB: does not
    source_before = every_file(store)
    line = one_error_line(tapefs("datastore", "sync", "main", "tiny", env=env, check=False))
    assert line == ("tapefs: error: target datastore tiny: No space left on device while copying "
                    "host/x/1970-01-01T00:03:20Z; nothing of it was published")
    assert listing(tiny_target) == [("host/x/1970-01-01T00:01:40Z", True)]
    assert not list(tiny_target.root.rglob("*.tmp_sync")) and not list(tiny_target.root.rglob("*.tmp_*"))
    assert verify_datastore(tiny_target).ok
    assert every_file(store) == source_before


@pytest.mark.slow
def test_sync_killed_midway_then_rerun(store, second, env):
    source = Datastore.open(store)
    for t in range(1, 7):
        make_snapshot(source, BackupSnapshot(GROUP, t * 100), pieces=random_pieces(t, 300, 4096))

    def chunk_count():
        return sum(len(os.listdir(d)) for d in second.chunk_store.chunk_dir.iterdir()) if second.chunk_store.chunk_dir.exists() else 0

    for attempt in range(2):
        sync = subprocess.Popen([command_path("tapefs"), "datastore", "sync", "main", "second"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while sync.poll() is None and chunk_count() < 500 * (attempt + 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(sync.pid, signal.SIGKILL)
        sync.wait()
        # whatever is listed is complete
        assert all(finished for _, finished in listing(second))
        assert verify_datastore(second).ok
    tapefs("datastore", "sync", "main", "second", env=env)
    assert listing(second) == listing(source)
    assert not list(second.root.rglob("*.tmp_sync"))
    assert verify_datastore(second).ok
