"""``tapefs datastore`` maintenance commands as a user runs them: real subprocesses."""

import json

import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupGroup, BackupNamespace, BackupSnapshot
from tests.helpers.commands import one_error_line, tapefs
from tests.helpers.synthetic_snapshots import make_snapshot

GROUP = BackupGroup(BackupNamespace(), "host", "web")
TIMES = [1_700_000_000 + day * 86400 for day in range(5)]


@pytest.fixture
def history(store):
    datastore = Datastore.open(store)
    for t in TIMES:
        make_snapshot(datastore, BackupSnapshot(GROUP, t))
    return [str(BackupSnapshot(GROUP, t)) for t in TIMES]


def listed(env):
    return [row["snapshot"] for row in json.loads(tapefs("datastore", "snapshots", "main", "--output-format", "json", env=env).stdout)]


def test_forget_protect_unprotect(history, env):
    tapefs("datastore", "protect", "main", history[0], env=env)
    line = one_error_line(tapefs("datastore", "forget", "main", history[0], env=env, check=False))
    assert line == f"tapefs: error: snapshot {history[0]} is protected; unprotect it first"
    assert listed(env) == history
    tapefs("datastore", "unprotect", "main", history[0], env=env)
    assert tapefs("datastore", "forget", "main", history[0], env=env).stdout == f"removed {history[0]}\n"
    assert listed(env) == history[1:]


BAD_INPUTS = [
    (("forget", "main", "host/web/2001-01-01T00:00:00Z"), "snapshot host/web/2001-01-01T00:00:00Z not found in datastore main"),
    (("forget", "main", "host/web"), "invalid snapshot 'host/web' (expected TYPE/ID/TIME)"),
    (("protect", "nosuch", "host/web/2001-01-01T00:00:00Z"), "no datastore named 'nosuch'"),
    (("owner", "main", "host/web", "--set", "nobody"), "invalid owner 'nobody'"),
    (("notes", "main", "host/db", "--set", "x"), "group host/db not found in datastore main"),
    (("prune", "main", "--keep-last", "1", "--ns", "nope"), "namespace nope not found in datastore main"),
    (("prune-job", "run", "nightly"), "no prune job named 'nightly'"),
    (("prune-job", "create", "nightly", "main"), "prune job 'nightly': give at least one of --keep-last"),
]


@pytest.mark.slow
def test_bad_input_is_one_line_and_changes_nothing(history, env, store):
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    for args, message in BAD_INPUTS:
        line = one_error_line(tapefs("datastore", *args, env=env, check=False))
        assert line.startswith("tapefs: error: ") and message in line, line
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before


@pytest.mark.slow
def test_notes_and_owner(history, env, store):
    tapefs("datastore", "notes", "main", history[1], "--set", "before upgrade", env=env)
    assert tapefs("datastore", "notes", "main", history[1], env=env).stdout == "before upgrade\n"
    tapefs("datastore", "notes", "main", "host/web", "--set", "web servers", env=env)
    assert json.loads(tapefs("datastore", "notes", "main", "host/web", "--output-format", "json", env=env).stdout) == {"notes": "web servers"}
    assert (store / "host/web/notes").read_text() == "web servers"
    tapefs("datastore", "notes", "main", "host/web", "--clear", env=env)
    assert not (store / "host/web/notes").exists()
    assert tapefs("datastore", "owner", "main", "host/web", env=env).stdout == "root@pam\n"
    tapefs("datastore", "owner", "main", "host/web", "--set", "backup@pbs!job", env=env)
    assert (store / "host/web/owner").read_text() == "backup@pbs!job\n"


def test_prune_dry_run_then_prune(history, env):
    tapefs("datastore", "protect", "main", history[0], env=env)
    dry = json.loads(tapefs("datastore", "prune", "main", "--keep-last", "2", "--dry-run", "--output-format", "json", env=env).stdout)
    assert dry["dry-run"] is True
    assert [(row["snapshot"], row["action"], row["rule"]) for row in dry["snapshots"]] == [
        (history[4], "keep", "keep-last"), (history[3], "keep", "keep-last"),
        (history[2], "remove", None), (history[1], "remove", None), (history[0], "protected", None)]
    assert listed(env) == history
    text = tapefs("datastore", "prune", "main", "host/web", "--keep-last", "2", env=env).stdout
    assert "removed 2 of 5 snapshots in 1 groups" in text
    assert listed(env) == [history[0], history[3], history[4]]


@pytest.mark.slow
def test_prune_job_config(history, env, tmp_path):
    tapefs("datastore", "prune-job", "create", "nightly", "main", "--keep-last", "1", "--keep-daily", "2",
           "--max-depth", "0", "--comment", "every night", env=env)
    assert (tmp_path / "config" / "prune.cfg").read_text() == (
        "prune: nightly\n\tstore main\n\tmax-depth 0\n\tkeep-last 1\n\tkeep-daily 2\n\tcomment every night\n")
    jobs = json.loads(tapefs("datastore", "prune-job", "list", "--output-format", "json", env=env).stdout)
    assert jobs == [{"id": "nightly", "store": "main", "ns": "", "max-depth": 0, "keep-last": 1, "keep-daily": 2,
                     "comment": "every night"}]
    tapefs("datastore", "prune-job", "run", "nightly", "--dry-run", env=env)
    assert listed(env) == history
    tapefs("datastore", "prune-job", "run", "nightly", env=env)
    assert listed(env) == history[2:]
    # update: given options change, --delete removes, a job that would keep nothing is refused
    tapefs("datastore", "prune-job", "update", "nightly", "--keep-weekly", "3", "--delete", "keep-last",
           "--delete", "comment", "--schedule", "daily", env=env)
    assert (tmp_path / "config" / "prune.cfg").read_text() == (
        "prune: nightly\n\tstore main\n\tmax-depth 0\n\tkeep-daily 2\n\tkeep-weekly 3\n\tschedule daily\n")
    before = (tmp_path / "config" / "prune.cfg").read_text()
    for args, message, code in [
        (["--delete", "keep-daily", "--delete", "keep-weekly"], "would keep nothing", 2),
        (["--schedule", "someday"], "prune job 'nightly': invalid calendar event 'someday'", 2),
        (["--store", "nope"], "nope", 3),
        (["--keep-daily", "1", "--delete", "keep-daily"], "both set and deleted", 2),
    ]:
        result = tapefs("datastore", "prune-job", "update", "nightly", *args, env=env, check=False)
        assert message in one_error_line(result, code)
    assert "no prune job named 'ghost'" in one_error_line(
        tapefs("datastore", "prune-job", "update", "ghost", "--keep-last", "1", env=env, check=False))
    assert (tmp_path / "config" / "prune.cfg").read_text() == before
    tapefs("datastore", "prune-job", "remove", "nightly", env=env)
    assert "no prune jobs" in tapefs("datastore", "prune-job", "list", env=env).stdout
