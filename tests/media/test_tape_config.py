import pytest

from tapefs.config import section_config
from tapefs.media import tape_config
from tapefs.config.calendar_event import CalendarEvent
from tapefs.media.errors import LockTimeoutError
from tapefs.media.locks import FileLock
from tapefs.media.policy import AlwaysCreate, ContinueCurrent, CreateAt, KeepForever, OverwriteAlways, ProtectFor
from tapefs.media.tape_config import (
    ChangerConfig,
    ConfigChangeError,
    DriveConfig,
    MediaPoolConfig,
    TapeConfigError,
    TapeDeviceConfig,
    TapeJobConfig,
    config_digest,
    config_keys,
    create_section,
    load_media_pool_config,
    load_tape_config,
    load_tape_job_config,
    remove_section,
    save_media_pool_config,
    save_tape_config,
    save_tape_job_config,
    update_section,
)

TAPE_CFG = """\
changer: lib0
\tpath /run/vtape/lib0/changer
\texport-slots 15,16
\teject-before-unload 1

lto: drive0
\tchanger lib0
\tchanger-drivenum 0
\tpath /run/vtape/lib0/drive0

lto: drive1
\tchanger lib0
\tchanger-drivenum 1
\tpath /run/vtape/lib0/drive1

lto: standalone
\tpath /dev/tape/by-id/scsi-HUJ1234567-sg
"""

FP = ":".join(["ab"] * 32)


def write(tmp_path, name, text):
    path = tmp_path / "config" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_load_tape_cfg_from_the_config_dir(tmp_path):
    write(tmp_path, "tape.cfg", TAPE_CFG)
    config = load_tape_config()
    assert config.changer("lib0") == ChangerConfig("lib0", "/run/vtape/lib0/changer", (15, 16), True)
    assert config.drive("drive1") == DriveConfig("drive1", "/run/vtape/lib0/drive1", "lib0", 1)
    assert config.drive("standalone") == DriveConfig("standalone", "/dev/tape/by-id/scsi-HUJ1234567-sg")
    assert [d.name for d in config.drives_of_changer("lib0")] == ["drive0", "drive1"]
    with pytest.raises(KeyError, match="no drive named 'drive9'"):
        config.drive("drive9")


def test_missing_files_are_empty_configs():
    assert load_tape_config() == TapeDeviceConfig({}, {})
    assert load_media_pool_config() == {}
    assert load_tape_job_config() == {}


def test_tape_cfg_round_trips(tmp_path):
    path = write(tmp_path, "tape.cfg", TAPE_CFG)
    config = load_tape_config(path)
    save_tape_config(config, tmp_path / "copy.cfg")
    assert load_tape_config(tmp_path / "copy.cfg") == config
    text = (tmp_path / "copy.cfg").read_text()
    assert "\texport-slots 15,16\n" in text and "\teject-before-unload true\n" in text
    assert section_config.parse(text).get("drive0").type == "lto"


def test_save_refuses_invalid_objects(tmp_path):
    with pytest.raises(ValueError, match="drive 'd': invalid drive name 'd'"):
        save_tape_config(TapeDeviceConfig({"d": DriveConfig("d", "/dev/nst0")}, {}), tmp_path / "t.cfg")
    with pytest.raises(ValueError, match="drive 'drive0': no changer named 'nolib'"):
        save_tape_config(TapeDeviceConfig({"drive0": DriveConfig("drive0", "/dev/nst0", "nolib")}, {}),
                         tmp_path / "t.cfg")
    with pytest.raises(ValueError, match="pool 'p1': property 'retention': invalid time span '2 fortnights'"):
        save_media_pool_config({"p1": MediaPoolConfig("p1", retention="2 fortnights")}, tmp_path / "m.cfg")
    assert not (tmp_path / "t.cfg").exists() and not (tmp_path / "m.cfg").exists()


@pytest.mark.parametrize("text, line, message", [
    (TAPE_CFG.replace("\tchanger-drivenum 1", "\tchanger-drivenmu 1"), 13,
     "drive 'drive1': property 'changer-drivenmu': unknown property; did you mean 'changer-drivenum'?"),
    (TAPE_CFG.replace("\tchanger-drivenum 1", "\tchanger-drivenum one"), 13,
     "drive 'drive1': property 'changer-drivenum': expected an integer 0..255, got 'one'"),
    (TAPE_CFG.replace("\tchanger-drivenum 1", "\tchanger-drivenum 256"), 13,
     "drive 'drive1': property 'changer-drivenum': 256 is out of range 0..255"),
    (TAPE_CFG.replace("\teject-before-unload 1", "\teject-before-unload maybe"), 4,
     "changer 'lib0': property 'eject-before-unload': expected a boolean"),
    (TAPE_CFG.replace("\texport-slots 15,16", "\texport-slots 15,x"), 3,
     "changer 'lib0': property 'export-slots': expected an integer 1..65535, got 'x'"),
    (TAPE_CFG.replace("\tchanger lib0\n\tchanger-drivenum 1", "\tchanger lib9\n\tchanger-drivenum 1"), 12,
     "drive 'drive1': property 'changer': no changer named 'lib9' in this file"),
    (TAPE_CFG.replace("\tpath /dev/tape/by-id/scsi-HUJ1234567-sg\n", "\tcomment no path\n"), 17,
     "drive 'standalone': property 'comment': unknown property (known: path, changer, changer-drivenum)"),
    (TAPE_CFG.replace("\tpath /dev/tape/by-id/scsi-HUJ1234567-sg\n", ""), 16,
     "drive 'standalone': missing required property 'path'"),
    (TAPE_CFG.replace("lto: standalone", "tlo: standalone"), 16,
     "unknown section type 'tlo' (expected 'lto', 'changer')"),
    (TAPE_CFG.replace("lto: standalone", "lto: x"), 16, "drive 'x': invalid drive name 'x'"),
])
def test_tape_cfg_errors_name_file_line_and_property(tmp_path, text, line, message):
    path = write(tmp_path, "tape.cfg", text)
    with pytest.raises(TapeConfigError) as info:
        load_tape_config()
    assert info.value.filename == str(path)
    assert info.value.line_number == line
    assert str(info.value).startswith(f"{path}:{line}: {message}")


def test_section_config_syntax_errors_come_through(tmp_path):
    write(tmp_path, "tape.cfg", "lto drive0\n\tpath /dev/nst0\n")
    with pytest.raises(section_config.SectionConfigError, match="tape.cfg:1: expected 'type: id'"):
        load_tape_config()


MEDIA_POOL_CFG = f"""\
pool: daily
\tallocation daily
\tretention 7days
\tcomment rotates every day

pool: weekly
\tallocation mon 18:00
\tretention 2 weeks
\ttemplate weekly-%Y-%W
\tencrypt {FP}

pool: archive

pool: scratch
\tallocation always
\tretention overwrite
"""


def test_load_media_pool_cfg_and_policies(tmp_path):
    write(tmp_path, "media-pool.cfg", MEDIA_POOL_CFG)
    pools = load_media_pool_config()
    assert list(pools) == ["daily", "weekly", "archive", "scratch"]
    assert pools["daily"].allocation_policy == CreateAt(CalendarEvent.parse("daily"))
    assert pools["daily"].retention_policy == ProtectFor(7 * 86400, "7days")
    assert pools["weekly"].encrypt == FP and pools["weekly"].template == "weekly-%Y-%W"
    assert pools["archive"].allocation_policy == ContinueCurrent()
    assert pools["archive"].retention_policy == KeepForever()
    assert pools["scratch"].allocation_policy == AlwaysCreate()
    assert pools["scratch"].retention_policy == OverwriteAlways()
    save_media_pool_config(pools, tmp_path / "copy.cfg")
    assert load_media_pool_config(tmp_path / "copy.cfg") == pools


@pytest.mark.parametrize("old, new, line, message", [
    ("\tallocation daily", "\tallocation dialy", 2,
     "pool 'daily': property 'allocation': invalid calendar event 'dialy': unknown weekday 'dialy'"),
    ("\tretention 7days", "\tretention 7 dayz", 3,
     "pool 'daily': property 'retention': invalid time span '7 dayz': unknown unit 'dayz'"),
    ("\tretention 7days", "\tretension 7days", 3,
     "pool 'daily': property 'retension': unknown property; did you mean 'retention'?"),
    ("\ttemplate weekly-%Y-%W", "\ttemplate x", 9, "pool 'weekly': property 'template': template must have 2 to 64"),
    (f"\tencrypt {FP}", "\tencrypt abcd", 10, "pool 'weekly': property 'encrypt': invalid key fingerprint 'abcd'"),
    ("pool: archive", "pool: a", 12, "pool 'a': invalid pool name 'a'"),
])
def test_media_pool_cfg_errors(tmp_path, old, new, line, message):
    path = write(tmp_path, "media-pool.cfg", MEDIA_POOL_CFG.replace(old, new))
    with pytest.raises(TapeConfigError) as info:
        load_media_pool_config()
    assert str(info.value).startswith(f"{path}:{line}: {message}")


TAPE_JOB_CFG = """\
backup: nightly
\tstore store1
\tpool daily
\tdrive drive0
\tschedule mon..fri 22:00
\teject-media true
\texport-media-set 0
\tlatest-only 1
\tnotify-user root@pam
\tnotification-mode notification-system
\tgroup-filter exclude:type:ct
\tns prod/web
\tmax-depth 2
\tcomment weeknights
"""


def test_load_tape_job_cfg(tmp_path):
    write(tmp_path, "tape-job.cfg", TAPE_JOB_CFG)
    jobs = load_tape_job_config()
    assert jobs["nightly"] == TapeJobConfig(
        id="nightly", store="store1", pool="daily", drive="drive0", schedule="mon..fri 22:00", eject_media=True,
        export_media_set=False, latest_only=True, notify_user="root@pam", notification_mode="notification-system",
        group_filter=("exclude:type:ct",), ns="prod/web", max_depth=2, comment="weeknights")
    save_tape_job_config(jobs, tmp_path / "copy.cfg")
    assert load_tape_job_config(tmp_path / "copy.cfg") == jobs


@pytest.mark.parametrize("old, new, line, message", [
    ("\tschedule mon..fri 22:00", "\tschedule mon..fry 22:00", 5, "property 'schedule': invalid calendar event"),
    ("\tmax-depth 2", "\tmax-depth 8", 13, "property 'max-depth': 8 is out of range 0..7"),
    ("\tgroup-filter exclude:type:ct", "\tgroup-filter type:lxc", 11, "property 'group-filter': invalid group filter"),
    ("\tgroup-filter exclude:type:ct", "\tgroup-filter regex:(", 11, "invalid regular expression"),
    ("\tns prod/web", "\tns prod//web", 12, "property 'ns': invalid namespace"),
    ("\tpool daily\n", "", 1, "tape backup job 'nightly': missing required property 'pool'"),
    ("\tnotification-mode notification-system", "\tnotification-mode email", 10,
     "property 'notification-mode': expected one of legacy-sendmail, notification-system"),
])
def test_tape_job_cfg_errors(tmp_path, old, new, line, message):
    path = write(tmp_path, "tape-job.cfg", TAPE_JOB_CFG.replace(old, new))
    with pytest.raises(TapeConfigError) as info:
        load_tape_job_config()
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert message in str(info.value)


def test_config_keys_for_delete_options():
    assert config_keys(DriveConfig) == ["path", "changer", "changer-drivenum"]
    assert config_keys(MediaPoolConfig) == ["allocation", "retention", "template", "encrypt", "comment"]


def test_create_update_remove_drives_and_changers(tmp_path):
    create_section(ChangerConfig("lib0", "/run/vtape/lib0/changer", (15,)))
    create_section(DriveConfig("drive0", "/run/vtape/lib0/drive0", "lib0", 0))
    with pytest.raises(ConfigChangeError, match="already has an entry named 'lib0'"):
        create_section(DriveConfig("lib0", "/dev/nst0"))
    with pytest.raises(ValueError, match="no changer named 'nolib'"):
        create_section(DriveConfig("drive1", "/dev/nst1", "nolib"))
    update_section(DriveConfig, "drive0", {"changer_drivenum": 3})
    assert load_tape_config().drive("drive0").changer_drivenum == 3
    with pytest.raises(ConfigChangeError, match="changer 'lib0' is used by drive\\(s\\) drive0"):
        remove_section(ChangerConfig, "lib0")
    update_section(DriveConfig, "drive0", delete=["changer", "changer-drivenum"])
    assert load_tape_config().drive("drive0") == DriveConfig("drive0", "/run/vtape/lib0/drive0")
    update_section(ChangerConfig, "lib0", delete=["export-slots"])
    assert load_tape_config().changer("lib0").export_slots == ()
    remove_section(ChangerConfig, "lib0")
    assert load_tape_config().changers == {}
    with pytest.raises(ConfigChangeError, match="property 'path' is required"):
        update_section(DriveConfig, "drive0", delete=["path"])
    with pytest.raises(ConfigChangeError, match="cannot delete unknown property 'pth'"):
        update_section(DriveConfig, "drive0", delete=["pth"])
    with pytest.raises(ConfigChangeError, match="no drive named 'drive9'"):
        remove_section(DriveConfig, "drive9")


def test_update_with_a_stale_digest_is_refused(tmp_path):
    create_section(MediaPoolConfig("daily", allocation="daily"))
    path = tmp_path / "config" / "media-pool.cfg"
    digest = config_digest(path)
    update_section(MediaPoolConfig, "daily", {"retention": "7days"}, digest=digest)
    with pytest.raises(ConfigChangeError, match="digest mismatch"):
        update_section(MediaPoolConfig, "daily", {"retention": "keep"}, digest=digest)
    assert load_media_pool_config()["daily"].retention == "7days"
    with pytest.raises(ValueError, match="invalid calendar event 'sometimes'"):
        update_section(MediaPoolConfig, "daily", {"allocation": "sometimes"})
    assert load_media_pool_config()["daily"].allocation == "daily"
    remove_section(MediaPoolConfig, "daily", digest=config_digest(path))
    assert load_media_pool_config() == {}


def test_create_tape_job(tmp_path):
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "datastore.cfg").write_text(f"datastore: store1\n\tpath {tmp_path / 'store1'}\n")
    (config / "media-pool.cfg").write_text("pool: daily\n")
    (config / "tape.cfg").write_text("lto: drive0\n\tpath /dev/null\n")
    job = TapeJobConfig("nightly", store="store1", pool="daily", drive="drive0", schedule="21:00")
    create_section(job)
    assert load_tape_job_config() == {"nightly": job}
    assert (tmp_path / "config" / "tape-job.cfg").read_text() == (
        "backup: nightly\n\tstore store1\n\tpool daily\n\tdrive drive0\n\tschedule 21:00\n")


def test_edits_wait_for_the_config_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(tape_config, "CONFIG_LOCK_TIMEOUT", 0.1)
    lock_path = tmp_path / "config" / ".media-pool.cfg.lck"
    with FileLock(lock_path):
        with pytest.raises(LockTimeoutError, match="media-pool.cfg.lck"):
            create_section(MediaPoolConfig("daily"))
    create_section(MediaPoolConfig("daily"))
    assert list(load_media_pool_config()) == ["daily"]
