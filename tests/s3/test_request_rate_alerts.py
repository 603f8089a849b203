"""The S3 request-rate alert on a real SeaweedFS bucket, delivered to a real webhook receiver: a
request storm gives exactly one `thresholds-exceeded` notification, whether a job run by the
scheduler, the scheduler's own tick or `tapefs datastore telemetry` notices it first."""

import json

import pytest

from tapefs.datastore.registry import DatastoreRegistry
from tapefs.notify.config import Matcher, Target, create_matcher, create_target
from tapefs.scheduler.daemon import Scheduler
from tapefs.scheduler.job_kinds import GARBAGE_COLLECTION
from tapefs.scheduler.job_state import JobStateFile
from tapefs.scheduler.runner import run_job
from tapefs.tasks import task_log
from tests.helpers.commands import tapefs
from tests.helpers.s3_stores import make_s3_datastore

THRESHOLD = 20
#: more than twice the threshold: a storm split by a minute boundary still exceeds it in one minute
STORM = 50
BODY = '{"type": {{ json fields.type }}, "datastore": {{ json fields.datastore }}, "title": {{ json title }}}'


@pytest.fixture
def s3_alerting(notify_config, http_receiver, seaweed_server, s3_bucket):
    """S3 datastore `main` with a request-rate threshold, and a webhook that gets the threshold
    notifications; returns the registry."""
    registry, _ = make_s3_datastore(notify_config, seaweed_server, s3_bucket)
    registry.set_options("main", {"request-rate-threshold": THRESHOLD})
    create_target(Target("hook", "webhook", url=http_receiver.url + "/alerts", body=BODY))
    create_matcher(Matcher("thresholds", targets=("hook",), match_field=("exact:type=thresholds",)))
    return registry


def request_storm(registry: DatastoreRegistry) -> None:
    """STORM requests from another user of the datastore, counted in its telemetry file."""
    store = registry.lookup("main")
    for _ in range(STORM):
        store.client.head_object("no-such-object")
    store.flush_telemetry()


def alerts(receiver) -> list[dict]:
    return [json.loads(request.body) for request in receiver.requests]


def test_a_scheduled_job_reports_a_storm_once_in_its_task_log_and_by_webhook(s3_alerting, http_receiver):
    request_storm(s3_alerting)
    run_job(GARBAGE_COLLECTION, "main")
    [alert] = alerts(http_receiver)
    assert alert == {
        "type": "thresholds",
        "datastore": "main",
        "title": "Datastore 'main': S3 request rate (requests per minute) above its limit",
    }
    upid = JobStateFile(GARBAGE_COLLECTION, "main").load(0).upid
    log_text = task_log.log_path(upid).read_text()
    assert "WARN: datastore main: S3 request rate above the threshold" in log_text
    assert log_text.rstrip().endswith("TASK WARNINGS: 1")

    # the same excursion again: the next run and a scheduler tick stay quiet
    run_job(GARBAGE_COLLECTION, "main")
    Scheduler(start=lambda job: None).tick()
    assert len(http_receiver.requests) == 1


def test_the_scheduler_tick_reports_a_storm_made_by_another_process_once(s3_alerting, http_receiver):
    scheduler = Scheduler(start=lambda job: None)
    scheduler.tick()
    assert http_receiver.requests == []
    request_storm(s3_alerting)
    scheduler.tick()
    scheduler.tick()
    [alert] = alerts(http_receiver)
    assert alert == {
        "type": "thresholds",
        "datastore": "main",
        "title": "Datastore 'main': S3 request rate (requests per minute) above its limit",
    }


@pytest.mark.slow
def test_the_telemetry_command_reports_a_storm_once(s3_alerting, http_receiver, env):
    request_storm(s3_alerting)
    first = tapefs("datastore", "telemetry", "main", "--output-format", "json", env=env)
    assert json.loads(first.stdout)["request-rate-warning"].startswith("datastore main: S3 request rate above")
    assert "S3 request rate above the threshold" in first.stderr
    second = tapefs("datastore", "telemetry", "main", "--output-format", "json", env=env)
    assert json.loads(second.stdout)["request-rate-warning"] is None
    assert len(http_receiver.requests) == 1
