"""tape-job.cfg backup jobs: the file (repeated group-filter lines as PBS writes them) and
`tapefs backup-job list|show|create|update|remove|run` as a user runs them."""
import json

import pytest

from tapefs.config.section_config import SectionConfigError
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.media.tape_config import (
    TapeJobConfig,
    UnknownTapeJobError,
    load_tape_job,
    load_tape_job_config,
    save_tape_job_config,
)
from tests.helpers.commands import tapefs
from tests.helpers.tape_setup import add_cartridges

PBS_TAPE_JOB_CFG = """\
backup: nightly
\tstore store
\tpool daily
\tdrive drive0
\tschedule mon..fri 22:00
\tgroup-filter type:vm
\tgroup-filter exclude:group:vm/101
\tgroup-filter include:regex:^ct/2
\tlatest-only true
\tnotify-user root@pam
"""


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEFS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TAPEFS_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "config").mkdir()
    return tmp_path / "config"


def test_repeated_group_filter_lines_load_in_order_and_save_back(config_dir):
    path = config_dir / "tape-job.cfg"
    path.write_text(PBS_TAPE_JOB_CFG)
    job = load_tape_job("nightly")
    assert job.group_filter == ("type:vm", "exclude:group:vm/101", "include:regex:^ct/2")
    save_tape_job_config(load_tape_job_config())
    assert path.read_text() == (
        "backup: nightly\n\tstore store\n\tpool daily\n\tdrive drive0\n\tschedule mon..fri 22:00\n"
        "\tlatest-only true\n\tnotify-user root@pam\n\tgroup-filter type:vm\n"
        "\tgroup-filter exclude:group:vm/101\n\tgroup-filter include:regex:^ct/2\n")
    assert load_tape_job_config() == {"nightly": job}


@pytest.mark.parametrize("old, new, line, message", [
    ("\tgroup-filter include:regex:^ct/2", "\tgroup-filter include:vm/100", 8,
     "tape backup job 'nightly': property 'group-filter': invalid group filter 'include:vm/100'"),
    ("\tlatest-only true", "\tlatest-onyl true", 9,
     "tape backup job 'nightly': property 'latest-onyl': unknown property; did you mean 'latest-only'?"),
    ("\tschedule mon..fri 22:00", "\tstore other", 5,
     "duplicate property 'store' in section 'nightly' (first at line 2; only list properties may repeat)"),
])
def test_a_typo_in_tape_job_cfg_names_file_line_and_key(config_dir, old, new, line, message):
    path = config_dir / "tape-job.cfg"
    path.write_text(PBS_TAPE_JOB_CFG.replace(old, new))
    with pytest.raises(SectionConfigError) as info:
        load_tape_job_config()
    assert str(info.value).startswith(f"{path}:{line}: {message}")


def test_unknown_job_names_the_file_and_the_jobs(config_dir):
    (config_dir / "tape-job.cfg").write_text(PBS_TAPE_JOB_CFG)
    with pytest.raises(UnknownTapeJobError, match=r"no tape backup job named 'weekly' in .*tape-job.cfg "
                                                  r"\(jobs: nightly\)"):
        load_tape_job("weekly")


def test_next_run_follows_the_schedule():
    job = TapeJobConfig("nightly", "store", "daily", "drive0", schedule="22:00 UTC")
    assert job.next_run(0) == 22 * 3600
    assert job.next_run(22 * 3600) == 46 * 3600
    assert TapeJobConfig("manual", "store", "daily", "drive0").next_run(0) is None


@pytest.fixture
def job_references(config_dir, tmp_path):
    """The datastore, pool and drive the jobs below name: a job may only name ones that exist."""
    Datastore.create(tmp_path / "store", prefix_dirs=False)
    DatastoreRegistry().add("store", tmp_path / "store")
    (config_dir / "media-pool.cfg").write_text("pool: daily\n")
    (config_dir / "tape.cfg").write_text("lto: drive0\n\tpath /dev/null\n")


def test_create_list_show_update_remove_commands(config_dir, job_references):
    tapefs("backup-job", "create", "nightly", "--store", "store", "--pool", "daily", "--drive", "drive0",
           "--schedule", "daily", "--group-filter", "type:vm", "--group-filter", "exclude:group:vm/101",
           "--latest-only", "true", "--ns", "site", "--max-depth", "1", "--comment", "every night")
    assert (config_dir / "tape-job.cfg").read_text() == (
        "backup: nightly\n\tstore store\n\tpool daily\n\tdrive drive0\n\tschedule daily\n\tlatest-only true\n"
        "\tgroup-filter type:vm\n\tgroup-filter exclude:group:vm/101\n\tns site\n\tmax-depth 1\n"
        "\tcomment every night\n")
    listed = json.loads(tapefs("backup-job", "list", "--output-format", "json").stdout)
    assert [row["id"] for row in listed] == ["nightly"]
    assert listed[0]["group-filter"] == ["type:vm", "exclude:group:vm/101"] and listed[0]["next-run"] > 0
    assert "nightly" in tapefs("backup-job", "list").stdout

    shown = json.loads(tapefs("backup-job", "show", "nightly", "--output-format", "json").stdout)
    # --group-filter on update replaces the list, as in PBS.
    tapefs("backup-job", "update", "nightly", "--group-filter", "type:ct", "--delete", "comment",
           "--digest", shown["digest"])
    job = load_tape_job("nightly")
    assert job.group_filter == ("type:ct",) and job.comment is None and job.ns == "site"
    stale = tapefs("backup-job", "update", "nightly", "--eject-media", "true", "--digest", shown["digest"],
                   check=False)
    assert stale.returncode == 2 and "digest mismatch" in stale.stderr
    tapefs("backup-job", "update", "nightly", "--delete", "group-filter", "--delete", "max-depth")
    assert load_tape_job("nightly").group_filter == () and load_tape_job("nightly").max_depth is None

    tapefs("backup-job", "remove", "nightly")
    assert load_tape_job_config() == {}
    assert tapefs("backup-job", "list").stdout.strip() == "no tape backup jobs configured"


def test_notify_user_is_kept_with_a_note(config_dir, job_references):
    done = tapefs("backup-job", "create", "mailer", "--store", "store", "--pool", "daily", "--drive", "drive0",
                  "--notify-user", "admin@pbs", "--notification-mode", "legacy-sendmail")
    assert "notify-user and notification-mode are kept in tape-job.cfg for PBS and ignored" in done.stderr
    assert load_tape_job("mailer").notify_user == "admin@pbs"


@pytest.mark.parametrize("args, message", [
    (["show", "weekly"], "tapefs: error: no tape backup job named 'weekly' in "),
    (["run", "weekly"], "tapefs: error: no tape backup job named 'weekly' in "),
    (["update", "weekly", "--comment", "x"], "tapefs: error: no tape backup job named 'weekly'"),
    (["remove", "weekly"], "tapefs: error: no tape backup job named 'weekly'"),
    (["create", "nightly", "--store", "store", "--pool", "daily", "--drive", "drive0"],
     "tapefs: error: tape-job.cfg already has an entry named 'nightly'"),
    (["create", "other", "--store", "store", "--pool", "daily", "--drive", "drive0", "--group-filter", "vm/1"],
     "tapefs: error: tape backup job 'other': property 'group-filter': invalid group filter 'vm/1'"),
    (["create", "other", "--store", "store", "--pool", "daily", "--drive", "drive0", "--max-depth", "8"],
     "tapefs: error: tape backup job 'other': property 'max-depth': 8 is out of range 0..7"),
    (["update", "nightly", "--delete", "pool"], "Invalid value for '--delete'"),
    (["create", "other", "--store", "store", "--pool", "daily"], "Missing option '--drive'"),
])
def test_bad_job_commands_fail_with_one_clear_line(config_dir, args, message):
    (config_dir / "tape-job.cfg").write_text(PBS_TAPE_JOB_CFG)
    done = tapefs("backup-job", *args, check=False)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert (config_dir / "tape-job.cfg").read_text() == PBS_TAPE_JOB_CFG


def test_run_with_a_typo_in_the_file_names_file_and_line(config_dir):
    path = config_dir / "tape-job.cfg"
    path.write_text(PBS_TAPE_JOB_CFG.replace("\tlatest-only true", "\tlatest-only maybe"))
    done = tapefs("backup-job", "run", "nightly", check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"tapefs: error: {path}:9: tape backup job 'nightly': property 'latest-only': "
                                   "expected a boolean (1/0, true/false, yes/no, on/off), got 'maybe'")


@pytest.mark.vtape
@pytest.mark.slow
def test_run_backs_up_what_the_job_selects(tape_setup, tmp_path):
    add_cartridges(tape_setup.library, 2, "32MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8")
    tape_setup.add_snapshot("vm/100", 1, backup_time=1_700_000_000)
    newest = tape_setup.add_snapshot("vm/100", 1, backup_time=1_700_000_100)
    tape_setup.add_snapshot("vm/101", 1)
    ct = tape_setup.add_snapshot("ct/200", 1)
    tape_setup.add_snapshot("ct/300", 1)
    tape_setup.add_snapshot("host/other", 1)
    site = tape_setup.add_snapshot("vm/100", 1, ns="site")
    (tmp_path / "config" / "tape-job.cfg").write_text(PBS_TAPE_JOB_CFG)
    result = json.loads(tapefs("backup-job", "run", "nightly", "--output-format", "json").stdout)
    # type:vm or regex:^ct/2, not vm/101, newest only, namespaces below root included.
    assert result["snapshots"] == [ct, newest, f"ns/site/{site}"]
    assert result["tapes"] == ["SM0001L8"]
    again = tapefs("backup-job", "run", "nightly").stdout
    assert f"already on the set: {newest}" in again and "0 snapshots" in again

    tapefs("backup-job", "update", "nightly", "--ns", "site", "--delete", "group-filter",
           "--eject-media", "true")
    later = tape_setup.add_snapshot("host/web", 1, ns="site")
    third = json.loads(tapefs("backup-job", "run", "nightly", "--output-format", "json").stdout)
    assert third["snapshots"] == [f"ns/site/{later}"] and third["skipped"] == [f"ns/site/{site}"]
    status = tape_setup.library.control("status")
    assert all(drive["barcode"] is None for drive in status["drives"]), status


def test_run_names_a_missing_datastore_or_pool_of_the_job(config_dir, tmp_path):
    (config_dir / "tape-job.cfg").write_text(PBS_TAPE_JOB_CFG)
    no_store = tapefs("backup-job", "run", "nightly", check=False)
    assert no_store.returncode == 3 and no_store.stderr.startswith("tapefs: error: no datastore named 'store'")
    DatastoreRegistry().create("store", tmp_path / "store")
    no_pool = tapefs("backup-job", "run", "nightly", check=False)
    assert no_pool.returncode == 3
    assert no_pool.stderr.strip() == "tapefs: error: no media pool named 'daily' in media-pool.cfg"
