"""The real `tapefs scheduler` daemon as a subprocess: it fires a job scheduled a few seconds
ahead, survives being killed in the middle of a job, and runs one at a time per state directory."""

import os
import signal
import time

import pytest

from tests.helpers.commands import isolated_env, one_error_line, tapefs, tapefs_json
from tests.helpers.scheduler_daemon import (
    a_few_seconds_ahead,
    blocking_snapshot,
    job_state,
    start_scheduler,
    wait_for_state,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def utc_env(env):
    return {**env, "TZ": "UTC"}


def stop(daemon) -> str:
    daemon.send_signal(signal.SIGTERM)
    _, stderr = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, stderr
    return stderr


def test_the_daemon_fires_a_job_scheduled_a_few_seconds_ahead(store, utc_env):
    tapefs("datastore", "update", "main", "--gc-schedule", a_few_seconds_ahead(3), env=utc_env)
    daemon = start_scheduler(utc_env)
    try:
        state = wait_for_state(utc_env, "garbage_collection", "main", "finished")
    finally:
        stderr = stop(daemon)
    assert "Traceback" not in stderr
    assert set(state["finished"]["state"]) == {"OK"}
    rows = {(row["kind"], row["id"]): row for row in tapefs_json("job", "list", env=utc_env)}
    gc = rows[("garbage_collection", "main")]
    assert (gc["result"], gc["upid"], gc["next-run"]) == ("OK", state["finished"]["upid"], None)
    assert [task["worker-type"] for task in tapefs_json("task", "list", env=utc_env)] == ["garbage_collection"]


def test_kill_9_during_a_job_leaves_it_unknown_and_the_next_slot_runs(store, utc_env):
    fifo = blocking_snapshot(store)  # verify blocks reading it: the job runs until killed
    tapefs("datastore", "update", "main", "--verify-schedule", a_few_seconds_ahead(2), env=utc_env)
    daemon = start_scheduler(utc_env)
    try:
        started = wait_for_state(utc_env, "verificationjob", "main", "started")
    finally:
        daemon.kill()
        daemon.communicate(timeout=60)
    assert job_state(utc_env, "verificationjob", "main") == started  # nobody recorded an end
    rows = {(row["kind"], row["id"]): row for row in tapefs_json("job", "list", env=utc_env)}
    assert rows[("verificationjob", "main")]["result"] == "unknown"
    (task,) = tapefs_json("task", "list", env=utc_env)
    assert (task["upid"], task["status"]) == (started["started"]["upid"], "unknown")

    os.unlink(fifo)
    tapefs("datastore", "forget", "main", f"host/a/{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(1_700_000_000))}",
           env=utc_env)
    tapefs("datastore", "update", "main", "--verify-schedule", a_few_seconds_ahead(3), env=utc_env)
    daemon = start_scheduler(utc_env)
    try:
        deadline = time.monotonic() + 60
        while (state := job_state(utc_env, "verificationjob", "main")) == started or "finished" not in state:
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
    finally:
        stop(daemon)
    assert set(state["finished"]["state"]) == {"OK"}
    assert state["finished"]["upid"] != started["started"]["upid"]


def test_background_mode_writes_a_pid_file_and_one_scheduler_runs_at_a_time(store, utc_env, tmp_path):
    pid_file = tmp_path / "scheduler.pid"
    tapefs("scheduler", "--background", "--pid-file", pid_file, "--tick", "1", env=utc_env)
    deadline = time.monotonic() + 30
    while not pid_file.exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    try:
        second = tapefs("scheduler", env=utc_env, check=False)
        assert "a scheduler is running already" in one_error_line(second, 4)
    finally:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while pid_file.exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_background_needs_a_pid_file(tmp_path):
    proc = tapefs("scheduler", "--background", env=isolated_env(tmp_path), check=False)
    assert proc.returncode == 2 and "--background needs --pid-file" in proc.stderr
