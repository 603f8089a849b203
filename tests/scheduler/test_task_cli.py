"""`tapefs task list|log|stop` over the tasks that real commands leave."""

import json
import subprocess
import time

import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tests.helpers.commands import command_path, one_error_line, tapefs, tapefs_json
from tests.helpers.scheduler_daemon import blocking_snapshot, release
from tests.helpers.synthetic_snapshots import make_snapshot


def test_a_command_is_a_task_with_a_log(store, env):
    tapefs("datastore", "gc", "main", env=env)
    (task,) = tapefs_json("task", "list", env=env)
    assert (task["worker-type"], task["worker-id"], task["status"]) == ("garbage_collection", "main", "ok")
    assert task["upid"].startswith("UPID:") and ":garbage_collection:main:root@pam:" in task["upid"]
    lines = tapefs("task", "log", task["upid"], env=env).stdout.splitlines()
    assert lines[0].endswith(": starting garbage_collection main")
    assert lines[-1].endswith(": TASK OK")
    assert tapefs_json("task", "list", "--running", env=env) == []
    assert tapefs_json("task", "list", "--since", int(time.time()) + 60, env=env) == []
    assert "is not running (OK)" in tapefs("task", "stop", task["upid"], env=env).stdout


def test_a_verify_that_finds_damage_ends_its_task_with_an_error(store, env):
    datastore = Datastore.open(store)
    snapshot = BackupSnapshot(BackupGroup(BackupNamespace(), "host", "a"), 1_700_000_000)
    (digest,) = make_snapshot(datastore, snapshot, pieces=[b"damaged soon" * 1000])
    chunk = datastore.chunk_store.chunk_path(digest)
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF
    chunk.write_bytes(bytes(data))
    assert tapefs("datastore", "verify", "main", env=env, check=False).returncode == 1
    (task,) = tapefs_json("task", "list", env=env)
    assert (task["worker-type"], task["status"]) == ("verify", "error")
    last = tapefs("task", "log", task["upid"], env=env).stdout.splitlines()[-1]
    assert last.endswith(": TASK ERROR: verification of main failed: 1 bad chunks, 1 snapshots affected"), last


def test_bad_upids_are_one_line_errors(store, env):
    assert "invalid UPID 'nope'" in one_error_line(tapefs("task", "log", "nope", env=env, check=False), 2)
    missing = "UPID:node:00000001:00000001:00000000:5CA78B83:garbage_collection:main:root@pam:"
    assert "no task" in one_error_line(tapefs("task", "log", missing, env=env, check=False), 3)
    assert "invalid --since" in one_error_line(tapefs("task", "list", "--since", "soon", env=env, check=False), 2)


@pytest.mark.slow
def test_task_stop_ends_a_verify_at_the_next_snapshot(store, env):
    fifo = blocking_snapshot(store, "a")
    make_snapshot(Datastore.open(store), BackupSnapshot(BackupGroup(BackupNamespace(), "host", "b"), 1_700_000_000))
    verify = subprocess.Popen([command_path("tapefs"), "datastore", "verify", "main"], env=env, text=True,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (running := tapefs_json("task", "list", "--running", env=env)):
            assert time.monotonic() < deadline and verify.poll() is None, verify.communicate()
            time.sleep(0.1)
        (task,) = running
        assert "asked" in tapefs("task", "stop", task["upid"], env=env).stdout
        release(fifo)  # verify reads on to the next safe point, and stops there
        _, stderr = verify.communicate(timeout=60)
    finally:
        verify.kill()
    assert verify.returncode == 130, stderr
    assert stderr.strip() == f"tapefs: error: task {task['upid']} stopped by request"
    (ended,) = tapefs_json("task", "list", env=env)
    assert (ended["status"], ended["message"]) == ("error", f"task {task['upid']} stopped by request")
    log = tapefs("task", "log", task["upid"], env=env).stdout
    assert log.splitlines()[-1].endswith(f"TASK ERROR: task {task['upid']} stopped by request")
    assert json.loads(tapefs("datastore", "snapshots", "main", "--output-format", "json", env=env).stdout)
