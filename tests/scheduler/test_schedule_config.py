"""Schedules are checked when they are configured: a bad calendar event or a job naming
something missing is refused with one line, and nothing is written."""

import pytest

from tests.helpers.commands import one_error_line, tapefs, tapefs_json


def test_datastore_schedules_are_set_checked_and_removed(store, env):
    config = store.parent / "config" / "datastore.cfg"
    before = config.read_text()
    line = one_error_line(tapefs("datastore", "update", "main", "--gc-schedule", "daily 25:00", env=env, check=False), 2)
    assert line == ("tapefs: error: invalid calendar event 'daily 25:00': hour value 25 out of range 0..23 "
                    "(at '25:00', column 7)")
    assert config.read_text() == before
    tapefs("datastore", "update", "main", "--gc-schedule", "daily 02:00", "--verify-schedule", "monthly", env=env)
    assert "\tgc-schedule daily 02:00\n" in config.read_text()
    jobs = {(row["kind"], row["id"]): row for row in tapefs_json("job", "list", env=env)}
    assert jobs[("garbage_collection", "main")]["schedule"] == "daily 02:00"
    assert jobs[("verificationjob", "main")]["schedule"] == "monthly"
    tapefs("datastore", "update", "main", "--delete", "gc-schedule", env=env)
    assert "gc-schedule" not in config.read_text()
    line = one_error_line(tapefs("datastore", "update", "nope", "--gc-schedule", "daily", env=env, check=False), 3)
    assert "no datastore named 'nope'" in line


@pytest.mark.parametrize("args, message", [
    (("--schedule", "sun 4:00 xx"), "unexpected 'xx' after the time '4:00' (at 'xx', column 10)"),
    (("--schedule", "yearly 04:00"), None),
])
def test_prune_job_schedule_is_checked_at_create_time(store, env, args, message):
    proc = tapefs("datastore", "prune-job", "create", "nightly", "main", "--keep-daily", "7", *args, env=env,
                  check=message is None)
    if message is not None:
        assert message in one_error_line(proc, 2)
        assert not (store.parent / "config" / "prune.cfg").exists()
    else:
        (job,) = tapefs_json("datastore", "prune-job", "list", env=env)
        assert job["schedule"] == "yearly 04:00"
        rows = {(row["kind"], row["id"]): row for row in tapefs_json("job", "list", env=env)}
        assert rows[("prunejob", "nightly")]["schedule"] == "yearly 04:00"


def test_a_tape_job_naming_missing_things_or_a_bad_event_is_refused(store, env):
    proc = tapefs("backup-job", "create", "weekly", "--store", "main", "--pool", "nopool", "--drive", "nodrive",
                  "--schedule", "sun 04:30", env=env, check=False)
    line = one_error_line(proc)
    assert "nopool" in line or "nodrive" in line
    proc = tapefs("backup-job", "create", "weekly", "--store", "main", "--pool", "pool1", "--drive", "drive1",
                  "--schedule", "sun 4:99", env=env, check=False)
    assert "minute value 99 out of range 0..59" in one_error_line(proc, 2)
