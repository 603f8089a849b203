"""S3 request counters zeroed on the datastore's `counter-reset-schedule` by the scheduler (its
`notification-threshold-reset` job, as PBS), driven through simulated days by an injected clock;
the schedule refused where it is wrong."""

import calendar
import json
import time
from types import SimpleNamespace

import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.errors import DatastoreOptionError
from tapefs.scheduler.daemon import Scheduler
from tapefs.scheduler.job_kinds import COUNTER_RESET
from tapefs.scheduler.job_state import JobStateFile
from tapefs.scheduler.runner import run_job
from tapefs.tasks import task_log, worker
from tests.helpers.commands import one_error_line, tapefs
from tests.helpers.s3_stores import make_s3_datastore

START = calendar.timegm((2026, 12, 1, 0, 0, 0))


@pytest.fixture
def s3_registry(tmp_path, monkeypatch, seaweed_server, s3_bucket):
    monkeypatch.setenv("TAPEFS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TAPEFS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    registry, _ = make_s3_datastore(tmp_path / "config", seaweed_server, s3_bucket)
    yield registry
    monkeypatch.delenv("TZ")
    time.tzset()


def requests_counted(registry) -> int:
    return registry.s3_telemetry("main").load().requests


def test_the_scheduler_resets_the_counters_on_schedule_once_per_slot(s3_registry, monkeypatch):
    s3_registry.update("main", {"counter-reset-schedule": "daily 00:30"})
    store = s3_registry.lookup("main")
    for _ in range(5):
        store.client.head_object("no-such-object")
    store.flush_telemetry()
    counted = requests_counted(s3_registry)
    assert counted >= 5

    now = START
    resets: list[int] = []

    def run_now(job):
        if job.kind == COUNTER_RESET:
            resets.append(now)
        run_job(job.kind, job.id)

    scheduler = Scheduler(clock=lambda: now, start=run_now)
    # the tasks' start times (the last run the next one counts from) follow the simulated clock too
    monkeypatch.setattr(worker, "time", SimpleNamespace(time=lambda: now))
    for now in range(START, START + 2 * 86400, 60):
        scheduler.tick()
        if now == START + 29 * 60:
            assert requests_counted(s3_registry) == counted  # not yet
    assert resets == [START + 30 * 60, START + 86400 + 30 * 60]
    assert requests_counted(s3_registry) == 0

    upid = JobStateFile(COUNTER_RESET, "main").load(now).upid
    assert upid is not None and upid.worker_type == COUNTER_RESET
    logs = [path.read_text() for found, path in task_log.all_task_logs() if found.worker_type == COUNTER_RESET]
    assert len(logs) == 2 and all(text.rstrip().endswith("TASK OK") for text in logs)
    [first] = [text for text in logs if f"{counted} requests (GET " in text]
    assert "S3 request counters of main since" in first


@pytest.mark.slow
def test_a_counter_reset_schedule_is_checked_and_only_for_s3_datastores(s3_registry, tmp_path, env):
    result = tapefs("datastore", "update", "main", "--counter-reset-schedule", "daily 25:00", env=env, check=False)
    assert "daily 25:00" in one_error_line(result, 2, "tapefs")
    Datastore.create(tmp_path / "plain", prefix_dirs=False)
    s3_registry.add("plain", tmp_path / "plain")
    with pytest.raises(DatastoreOptionError, match="'plain' has no S3 backend: counter-reset-schedule applies"):
        s3_registry.update("plain", {"counter-reset-schedule": "daily"})
    assert s3_registry.option("main", "counter-reset-schedule") is None
    tapefs("datastore", "update", "main", "--counter-reset-schedule", "sun 01:00", env=env)
    listed = json.loads(tapefs("job", "list", "--output-format", "json", env=env).stdout)
    jobs = {(job["kind"], job["id"]): job for job in listed}
    assert jobs[(COUNTER_RESET, "main")]["schedule"] == "sun 01:00"
