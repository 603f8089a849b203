import os

import pytest

from tapefs.config import section_config
from tapefs.config.section_config import Section, SectionConfig, SectionConfigError

PBS_DATASTORE_CFG = """\
datastore: store1
\tcomment Main store with spaces
\tgc-schedule daily
\tpath /mnt/datastore/store1

# a comment between sections
datastore: store2
\tpath /srv/store2
"""


def test_parse_pbs_file():
    config = section_config.parse(PBS_DATASTORE_CFG)
    assert [s.id for s in config] == ["store1", "store2"]
    store1 = config.get("store1")
    assert store1.type == "datastore"
    assert store1.properties == {
        "comment": "Main store with spaces",
        "gc-schedule": "daily",
        "path": "/mnt/datastore/store1",
    }
    assert config.get("store2").properties == {"path": "/srv/store2"}


def test_format_round_trip():
    config = section_config.parse(PBS_DATASTORE_CFG)
    text = config.format()
    assert text == PBS_DATASTORE_CFG.replace("# a comment between sections\n", "")
    assert section_config.parse(text).get("store1").properties == config.get("store1").properties


def test_empty_value_round_trips():
    config = SectionConfig([Section("pool", "p", {"flag": "", "x": "1"})])
    assert section_config.parse(config.format()).get("p").properties == {"flag": "", "x": "1"}


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("\tpath /x\n", 1, "outside of a section"),
        ("datastore: a\n\tpath /x\nnot a header\n", 3, "section header"),
        ("datastore: a\n\tpath /x\n\tpath /y\n", 3, "duplicate property"),
        ("datastore: a\n\ndatastore: a\n", 3, "duplicate section id"),
        ("datastore: a\n\t!bad\n", 2, "malformed property"),
    ],
)
def test_errors_name_file_and_line(text, line, fragment):
    with pytest.raises(SectionConfigError) as info:
        section_config.parse(text, "/etc/tapefs/datastore.cfg")
    assert info.value.line_number == line
    assert str(info.value).startswith(f"/etc/tapefs/datastore.cfg:{line}:")
    assert fragment in str(info.value)


def test_value_with_newline_is_refused(tmp_path):
    config = SectionConfig([Section("datastore", "a", {"comment": "two\nlines"})])
    with pytest.raises(ValueError):
        section_config.save(tmp_path / "datastore.cfg", config)
    assert not (tmp_path / "datastore.cfg").exists()


def test_save_and_load(tmp_path):
    path = tmp_path / "sub" / "datastore.cfg"
    config = SectionConfig([Section("datastore", "s", {"path": "/p"})])
    section_config.save(path, config)
    assert path.read_text() == "datastore: s\n\tpath /p\n"
    assert section_config.load(path).get("s").properties == {"path": "/p"}
    assert os.listdir(path.parent) == ["datastore.cfg"]


def test_missing_file_is_empty(tmp_path):
    assert len(section_config.load(tmp_path / "none.cfg")) == 0


def test_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "x.cfg"
    path.write_bytes(b"datastore: a\n\tcomment \xff\n")
    with pytest.raises(SectionConfigError) as info:
        section_config.load(path)
    assert info.value.line_number == 2


def test_save_failure_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "datastore.cfg"
    section_config.save(path, SectionConfig([Section("datastore", "old", {"path": "/o"})]))

    def failing_rename(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError):
        section_config.save(path, SectionConfig([Section("datastore", "new", {"path": "/n"})]))
    assert section_config.load(path).get("old") is not None
    assert os.listdir(tmp_path) == ["datastore.cfg"]


def test_set_keeps_place_and_remove():
    config = section_config.parse(PBS_DATASTORE_CFG)
    config.set(Section("datastore", "store1", {"path": "/new"}))
    assert [s.id for s in config] == ["store1", "store2"]
    assert config.get("store1").properties == {"path": "/new"}
    assert config.remove("store1").id == "store1"
    assert "store1" not in config and [s.id for s in config.of_type("datastore")] == ["store2"]
    with pytest.raises(ValueError):
        config.add(Section("media-pool", "store2"))


PBS_TAPE_JOB_CFG = """\
backup: nightly
\tstore store1
\tgroup-filter type:vm
\tpool daily
\tgroup-filter exclude:group:vm/100
\tgroup-filter regex:^ct/

backup: weekly
\tstore store1
"""
TAPE_JOB_ARRAYS = {"backup": {"group-filter"}}


def test_repeated_array_key_is_a_list_in_file_order():
    config = section_config.parse(PBS_TAPE_JOB_CFG, array_keys=TAPE_JOB_ARRAYS)
    assert config.get("nightly").properties == {
        "store": "store1", "pool": "daily",
        "group-filter": ["type:vm", "exclude:group:vm/100", "regex:^ct/"],
    }
    assert "group-filter" not in config.get("weekly").properties


def test_array_key_given_once_is_a_list_of_one():
    config = section_config.parse("backup: a\n\tgroup-filter type:ct\n", array_keys=TAPE_JOB_ARRAYS)
    assert config.get("a").properties == {"group-filter": ["type:ct"]}


def test_array_round_trips_one_line_per_item():
    config = section_config.parse(PBS_TAPE_JOB_CFG, array_keys=TAPE_JOB_ARRAYS)
    text = config.format()
    # Items stay on their own lines in their order; the other properties keep their order too.
    assert text == (
        "backup: nightly\n\tstore store1\n\tgroup-filter type:vm\n\tgroup-filter exclude:group:vm/100\n"
        "\tgroup-filter regex:^ct/\n\tpool daily\n\nbackup: weekly\n\tstore store1\n")
    assert section_config.parse(text, array_keys=TAPE_JOB_ARRAYS).get("nightly").properties == \
        config.get("nightly").properties


def test_empty_array_writes_no_line():
    config = SectionConfig([Section("backup", "a", {"store": "s", "group-filter": []})])
    assert config.format() == "backup: a\n\tstore s\n"


def test_array_keys_are_per_section_type():
    text = "pool: a\n\tgroup-filter type:vm\n\tgroup-filter type:ct\n"
    with pytest.raises(SectionConfigError) as info:
        section_config.parse(text, "/etc/tapefs/media-pool.cfg", array_keys=TAPE_JOB_ARRAYS)
    assert str(info.value) == ("/etc/tapefs/media-pool.cfg:3: duplicate property 'group-filter' in section 'a' "
                               "(first at line 2; only list properties may repeat)")


def test_repeated_key_that_is_not_an_array_names_file_line_and_key(tmp_path):
    path = tmp_path / "tape-job.cfg"
    path.write_text("backup: a\n\tstore s1\n\tgroup-filter type:vm\n\n# x\n\tstore s2\n".replace("\n\n# x\n", "\n"))
    with pytest.raises(SectionConfigError) as info:
        section_config.load(path, TAPE_JOB_ARRAYS)
    assert info.value.line_number == 4
    assert str(info.value).startswith(f"{path}:4: duplicate property 'store' in section 'a' (first at line 2")


def test_array_value_with_newline_is_refused():
    config = SectionConfig([Section("backup", "a", {"group-filter": ["type:vm", "type:ct\ntype:host"]})])
    with pytest.raises(ValueError, match="line break"):
        config.format()
