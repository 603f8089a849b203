"""The scheduler's decisions with an injected clock: which jobs are due, missed runs after
downtime, overlapping triggers, runs that died; and job runs through the real runner."""

import calendar
import json
import threading
import time

import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.errors import Busy
from tapefs.scheduler import job_kinds
from tapefs.scheduler.daemon import Scheduler
from tapefs.scheduler.job_kinds import GARBAGE_COLLECTION, LOG_ROTATE, VERIFICATION_JOB
from tapefs.scheduler.job_state import JobState, JobStateFile
from tapefs.scheduler.runner import run_job
from tapefs.tasks import task_log
from tapefs.tasks.task_log import TaskStatus
from tapefs.tasks.upid import Upid


def utc(year, month, day, hour=0, minute=0) -> int:
    return calendar.timegm((year, month, day, hour, minute, 0))


START = utc(2026, 12, 1)  # a Tuesday


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEFS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TAPEFS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    (tmp_path / "config").mkdir()
    Datastore.create(tmp_path / "store", prefix_dirs=False)
    DatastoreRegistry().add("main", tmp_path / "store")
    yield tmp_path
    monkeypatch.delenv("TZ")
    time.tzset()


class SimulatedRuns:
    """A scheduler's `start`: records each start and writes the state a finished run leaves."""

    def __init__(self):
        self.now = START
        self.runs: list[tuple[str, str, int]] = []

    def __call__(self, job):
        self.runs.append((job.kind, job.id, self.now))
        upid = Upid("node", 1, 1, len(self.runs), self.now, job.kind, job.id)
        JobStateFile(job.kind, job.id).save(JobState("finished", upid=upid, result=TaskStatus(upid, "ok", self.now)))

    def scheduler(self) -> Scheduler:
        return Scheduler(clock=lambda: self.now, start=self)

    def run_ticks(self, scheduler, until: int, step: int = 60) -> None:
        while self.now < until:
            scheduler.tick()
            self.now += step


def schedule(gc=None, verify=None):
    changes = {key: value for key, value in (("gc-schedule", gc), ("verify-schedule", verify)) if value}
    DatastoreRegistry().update("main", changes)


def runs_of(sim, kind):
    return [when for run_kind, _, when in sim.runs if run_kind == kind]


def test_due_jobs_follow_their_calendar_over_simulated_days(dirs):
    schedule(gc="daily 02:00", verify="sat 03:30")
    sim = SimulatedRuns()
    sim.run_ticks(sim.scheduler(), START + 9 * 86400, step=900)
    assert runs_of(sim, GARBAGE_COLLECTION) == [START + day * 86400 + 7200 for day in range(9)]
    assert runs_of(sim, VERIFICATION_JOB) == [utc(2026, 12, 5, 3, 30)]
    # first seen 30 s before midnight (as PBS counts a new job), so the first rotation is at START
    assert runs_of(sim, LOG_ROTATE) == [START + day * 86400 for day in range(9)]


def test_a_new_job_waits_for_its_first_slot(dirs):
    sim = SimulatedRuns()
    scheduler = sim.scheduler()
    sim.now = utc(2026, 12, 1, 1, 0)
    schedule(gc="daily 02:00")
    assert scheduler.tick() == []
    sim.now = utc(2026, 12, 1, 2, 0)
    assert [job.kind for job in scheduler.tick()] == [GARBAGE_COLLECTION]


def test_downtime_across_three_slots_gives_exactly_one_catch_up(dirs):
    schedule(gc="daily 02:00")
    sim = SimulatedRuns()
    sim.run_ticks(sim.scheduler(), utc(2026, 12, 1, 3, 0), step=300)
    assert runs_of(sim, GARBAGE_COLLECTION) == [utc(2026, 12, 1, 2, 0)]
    # down from Dec 1 03:00 to Dec 4 10:00: the slots of Dec 2, 3 and 4 are missed
    sim.now = utc(2026, 12, 4, 10, 0)
    sim.run_ticks(sim.scheduler(), utc(2026, 12, 6, 3, 0), step=300)
    assert runs_of(sim, GARBAGE_COLLECTION) == [
        utc(2026, 12, 1, 2, 0), utc(2026, 12, 4, 10, 0), utc(2026, 12, 5, 2, 0), utc(2026, 12, 6, 2, 0),
    ]


def test_a_run_killed_midway_reads_as_unknown_and_the_next_slot_runs(dirs, tmp_path):
    """What kill -9 of the scheduler leaves: a "started" state, a log without a result line, no lock holder."""
    schedule(gc="daily 02:00")
    dead = Upid("node", 999999, 12345, 0, utc(2026, 12, 1, 2, 0), GARBAGE_COLLECTION, "main")
    path = task_log.log_path(dead)
    path.parent.mkdir(parents=True)
    path.write_text(task_log.log_line("starting garbage_collection main"))
    JobStateFile(GARBAGE_COLLECTION, "main").save(JobState("started", upid=dead))
    state = JobStateFile(GARBAGE_COLLECTION, "main").load(utc(2026, 12, 1, 12))
    assert (state.kind, state.result.status) == ("finished", "unknown")
    sim = SimulatedRuns()
    sim.now = utc(2026, 12, 1, 12, 0)
    scheduler = sim.scheduler()
    sim.run_ticks(scheduler, utc(2026, 12, 2, 3, 0), step=300)
    assert runs_of(sim, GARBAGE_COLLECTION) == [utc(2026, 12, 2, 2, 0)]


def mid_slot(moment: float) -> int:
    """Two minutes past the first 5-minute mark after `moment`: a job first seen then counts as
    created 30 s earlier (SCHEDULE_FALLBACK_OFFSET), and no `*:0/5` event falls in between, so
    the first tick never starts it (at real times just past a mark it did)."""
    return (int(moment) // 300 + 1) * 300 + 120


def test_overlapping_triggers_start_one_run(dirs, monkeypatch):
    schedule(gc="*:0/5")
    release, entered = threading.Event(), threading.Event()
    calls = []

    def slow_gc(job_id, task, options):
        calls.append(job_id)
        entered.set()
        assert release.wait(10)

    monkeypatch.setitem(job_kinds.RUNNERS, GARBAGE_COLLECTION, slow_gc)
    now = [float(mid_slot(time.time() + 3600))]
    scheduler = Scheduler(clock=lambda: now[0])
    scheduler.tick()  # sees the job for the first time
    now[0] += 300
    started = scheduler.tick()
    assert GARBAGE_COLLECTION in [job.kind for job in started]
    assert entered.wait(10)
    now[0] += 600  # two more slots pass while it runs
    assert GARBAGE_COLLECTION not in [job.kind for job in scheduler.tick()]
    with pytest.raises(Busy, match="garbage_collection main is running already"):
        run_job(GARBAGE_COLLECTION, "main")  # a manual run meanwhile
    release.set()
    for thread in scheduler._threads.values():
        thread.join(10)
    assert calls == ["main"]
    assert JobStateFile(GARBAGE_COLLECTION, "main").load(0).result.status == "ok"


def test_a_run_records_its_state_and_task_log(dirs):
    result = run_job(GARBAGE_COLLECTION, "main")
    assert result.removed_chunks == 0
    state_file = JobStateFile(GARBAGE_COLLECTION, "main")
    value = json.loads(state_file.path.read_text())
    upid = value["finished"]["upid"]
    assert set(value["finished"]["state"]) == {"OK"}
    assert Upid.parse(upid).worker_type == "garbage_collection"
    lines = task_log.log_path(Upid.parse(upid)).read_text().splitlines()
    assert lines[0].endswith(": starting garbage_collection main")
    assert lines[-1].endswith(": TASK OK")


def test_a_failed_run_ends_its_log_with_task_error(dirs, monkeypatch):
    def failing_gc(job_id, task, options):
        raise OSError("disk on fire\nsecond line")

    monkeypatch.setitem(job_kinds.RUNNERS, GARBAGE_COLLECTION, failing_gc)
    with pytest.raises(OSError):
        run_job(GARBAGE_COLLECTION, "main")
    state = JobStateFile(GARBAGE_COLLECTION, "main").load(0)
    assert (state.result.status, state.result.message) == ("error", "disk on fire")
    assert task_log.log_path(state.upid).read_text().splitlines()[-1].split(": ", 1)[1] == "TASK ERROR: disk on fire"


def test_an_unknown_job_is_refused_before_anything_is_written(dirs, tmp_path):
    with pytest.raises(Exception, match="no datastore named 'nope'"):
        run_job(GARBAGE_COLLECTION, "nope")
    assert not (tmp_path / "state" / "jobstates").exists()


def test_a_scheduled_sync_job_copies_through_the_real_runner(dirs, tmp_path):
    from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
    from tapefs.datastore.sync_job import SyncJob, SyncJobConfig
    from tests.helpers.synthetic_snapshots import make_snapshot

    Datastore.create(tmp_path / "copy", prefix_dirs=False)
    DatastoreRegistry().add("copy", tmp_path / "copy")
    snapshot = BackupSnapshot(BackupGroup(BackupNamespace(), "host", "web"), 1_700_000_000)
    make_snapshot(Datastore.open(tmp_path / "store"), snapshot, pieces=[b"data" * 100])
    with pytest.raises(Exception, match="no datastore named 'nowhere'"):
        SyncJobConfig().add(SyncJob("weekly", "nowhere", "main", schedule="sun 04:30"))
    with pytest.raises(Exception, match="invalid calendar event 'sun 4:61'"):
        SyncJobConfig().add(SyncJob("weekly", "copy", "main", schedule="sun 4:61"))
    SyncJobConfig().add(SyncJob("weekly", "copy", "main", schedule="*:0/5"))
    now = [float(mid_slot(time.time()))]
    scheduler = Scheduler(clock=lambda: now[0])
    scheduler.tick()
    now[0] += 600
    assert "syncjob" in [job.kind for job in scheduler.tick()]
    for thread in scheduler._threads.values():
        thread.join(30)
    assert JobStateFile("syncjob", "weekly").load(0).result.status == "ok"
    assert [info.snapshot for info in Datastore.open(tmp_path / "copy").list_snapshots(snapshot.group)] == [snapshot]
