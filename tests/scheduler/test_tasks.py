"""Tasks in-process: UPIDs, the finish hook, warnings, stop requests."""

import logging

import pytest

from tapefs.tasks import task_log
from tapefs.tasks.upid import Upid
from tapefs.tasks.worker import TaskStopped, add_finish_hook, check_stop, remove_finish_hook, run_task


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEFS_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def test_upid_round_trip_in_pbs_form():
    text = "UPID:elsa:00004F37:0039E469:00000000:5CA78B83:garbage_collection::root@pam:"
    upid = Upid.parse(text)
    assert (upid.node, upid.pid, upid.starttime, upid.worker_type, upid.worker_id) == (
        "elsa", 0x4F37, 0x5CA78B83, "garbage_collection", "")
    assert str(upid) == text
    odd = Upid("n", 1, 2, 3, 4, "sync", "main/s3:x y")
    assert ":sync:main-s3\\x3ax\\x20y:" in str(odd)
    assert Upid.parse(str(odd)) == odd


def test_the_finish_hook_gets_the_task_and_a_failing_hook_never_fails_it(state):
    seen = []

    def broken_hook(finished):
        raise ConnectionRefusedError("smtp server down")

    add_finish_hook(seen.append)
    add_finish_hook(broken_hook)
    try:
        with run_task("tape-backup-job", "weekly") as task:
            task.fields["used-tapes-list"] = ["TAPE01"]
            logging.getLogger("tapefs.test").warning("tape TAPE02 is not online")
    finally:
        remove_finish_hook(seen.append)
        remove_finish_hook(broken_hook)
    (finished,) = seen
    assert (finished.kind, finished.id, finished.status, finished.warnings) == ("tape-backup-job", "weekly", "warning", 1)
    assert finished.fields == {"used-tapes-list": ["TAPE01"]} and finished.duration >= 0
    lines = task_log.log_path(task.upid).read_text().splitlines()
    assert lines[1].endswith("WARN: tape TAPE02 is not online")
    assert "finish hook 'broken_hook' failed: smtp server down" in lines[-2]
    assert lines[-1].endswith("TASK WARNINGS: 1")
    assert task_log.read_status(task.upid).summary == "WARNINGS: 1"


def test_a_stop_request_raises_at_the_next_safe_point(state):
    with pytest.raises(TaskStopped, match="stopped by request"):
        with run_task("verify", "main") as task:
            check_stop()  # not asked yet: nothing happens
            assert task_log.request_stop(task.upid).status == "running"
            check_stop()
    status = task_log.read_status(task.upid)
    assert (status.status, status.message) == ("error", f"task {task.upid} stopped by request")
    assert not task.stop_path.exists()


def test_rotation_removes_old_finished_logs_only(state):
    with run_task("prune", "old") as old:
        pass
    with run_task("verify", "running") as running:
        later = old.path.stat().st_mtime + 86400
        assert task_log.rotate_task_logs(2, now=later) == 0
        assert task_log.rotate_task_logs(0.5, now=later) == 1
        assert running.path.exists() and not old.path.exists()
