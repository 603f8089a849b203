"""`--include` of `tapefs backup` and tape backup jobs: group filters and retention selectors
(keep-yearly=*, keep-monthly=N ...) pick the snapshots that go to tape; a bad expression is one
line and moves no tape."""
import json
import time

import pytest

from tapefs.datastore.naming import BackupGroup, BackupSnapshot
from tapefs.datastore.snapshot_include import SnapshotIncludeError, parse_includes
from tapefs.media.tape_config import load_tape_job
from tests.helpers.commands import one_error_line, tapefs
from tests.helpers.tape_setup import add_cartridges


def at(text: str) -> int:
    return int(time.mktime(time.strptime(text, "%Y-%m-%d %H:%M")))


def snapshots(group: str, *times: str) -> list[BackupSnapshot]:
    return [BackupSnapshot(BackupGroup.parse(group), at(t)) for t in times]


TIMES = ("2023-03-01 04:00", "2023-12-31 04:00", "2024-06-01 04:00", "2025-01-10 04:00", "2025-02-10 04:00",
         "2025-02-20 04:00")


@pytest.mark.parametrize("includes, expected", [
    ([], TIMES),
    (["keep-yearly=*"], ("2023-12-31 04:00", "2024-06-01 04:00", "2025-02-20 04:00")),
    (["keep-yearly=2"], ("2024-06-01 04:00", "2025-02-20 04:00")),
    (["keep-monthly=2"], ("2025-01-10 04:00", "2025-02-20 04:00")),
    (["keep-last=1,keep-yearly=*"], ("2023-12-31 04:00", "2024-06-01 04:00", "2025-02-20 04:00")),
    # the month keep-last took uses up no keep-monthly slot
    (["keep-last=1", "keep-monthly=3"], ("2023-12-31 04:00", "2024-06-01 04:00", "2025-01-10 04:00", "2025-02-20 04:00")),
])
def test_retention_selectors_take_what_prune_would_keep(includes, expected):
    include = parse_includes(includes)
    assert include.select(snapshots("vm/100", *TIMES)) == snapshots("vm/100", *expected)


@pytest.mark.parametrize("text, message", [
    ("keep-yearly", "invalid retention selector 'keep-yearly'"),
    ("keep-forever=1", "invalid retention selector 'keep-forever=1'"),
    ("keep-daily=0", "keep-daily=0 would keep nothing"),
    ("keep-daily=1,keep-daily=2", "keep-daily is given twice"),
    ("vm/100", "invalid --include 'vm/100': neither a group filter"),
    ("regex:(", "invalid --include 'regex:('"),
])
def test_bad_expressions(text, message):
    with pytest.raises(SnapshotIncludeError, match=message.replace("(", r"\(")):
        parse_includes([text])


@pytest.mark.vtape
@pytest.mark.slow
def test_yearly_snapshots_of_every_group_go_to_tape(tape_setup):
    add_cartridges(tape_setup.library, 1, "32MiB", "4MiB")
    tape_setup.label("SM0001L8")
    made = {}
    for group in ("vm/100", "ct/200", "host/web"):
        for when in TIMES:
            made[(group, when)] = tape_setup.add_snapshot(group, data=f"{group} {when}".encode(),
                                                         backup_time=at(when))
    bad = tapefs("backup", "store", "daily", "--drive", "drive0", "--include", "keep-yearly=always", check=False)
    assert "invalid retention selector 'keep-yearly=always'" in one_error_line(bad, 2, "tapefs")

    tapefs("backup-job", "create", "yearly", "--store", "store", "--pool", "daily", "--drive", "drive0",
           "--include", "keep-yearly=*", "--include", "exclude:type:host")
    assert load_tape_job("yearly").include == ("keep-yearly=*", "exclude:type:host")
    result = json.loads(tapefs("backup-job", "run", "yearly", "--output-format", "json").stdout)
    yearly = ("2023-12-31 04:00", "2024-06-01 04:00", "2025-02-20 04:00")
    assert result["snapshots"] == [made[(group, when)] for group in ("ct/200", "vm/100") for when in yearly]
    assert result["tapes"] == ["SM0001L8"]


def test_backup_job_refuses_a_bad_include_at_create_time(tmp_path, env):
    proc = tapefs("backup-job", "create", "yearly", "--store", "store", "--pool", "daily", "--drive", "drive0",
                  "--include", "keep-yearly=-1", env=env, check=False)
    line = one_error_line(proc, 2, "tapefs")
    assert "property 'include': invalid retention selector 'keep-yearly=-1'" in line
    assert not (tmp_path / "config" / "tape-job.cfg").exists()
