"""`tapefs inventory import-pbs FILE` and `export-pbs FILE`: a PBS server's inventory.json taken
over and handed back as real subprocesses; bad files are one line each and change nothing."""
import json

import pytest

from tests.helpers.commands import one_error_line, tapefs, tapefs_json

PBS_INVENTORY = [
    {
        "id": {
            "label": {"uuid": "0c6e2c8e-8c4b-4b0e-9b8a-2f6c1b6c2a01", "label_text": "TAPE01L8",
                      "ctime": 1700000000, "pool": "daily"},
            "media_set_label": {"pool": "daily", "uuid": "5d3a8c3e-1f1e-4c4e-8d2c-7b4a7d1e9f10", "seq_nr": 0,
                                "ctime": 1700000100},
        },
        "location": "vault-offsite",
        "status": "full",
        "bytes_used": 123456789,
    },
    {"id": {"label": {"uuid": "7a0e2c8e-8c4b-4b0e-9b8a-2f6c1b6c2a02", "label_text": "TAPE02L8",
                      "ctime": 1700000001}}},
]


def test_import_then_export_gives_the_same_inventory(env, tmp_path):
    source = tmp_path / "inventory.json"
    source.write_text(json.dumps(PBS_INVENTORY, indent=2))
    assert tapefs_json("inventory", "import-pbs", source, env=env) == {"file": str(source), "imported": 2}
    media = {m["label-text"]: m for m in tapefs_json("media", "list", env=env)}
    assert set(media) == {"TAPE01L8", "TAPE02L8"}
    assert media["TAPE01L8"]["location"] == "vault-offsite" and media["TAPE02L8"]["location"] == "offline"

    target = tmp_path / "out" / "inventory.json"
    target.parent.mkdir()
    tapefs("inventory", "export-pbs", target, env=env)
    assert json.loads(target.read_text()) == PBS_INVENTORY
    assert json.loads(tapefs("inventory", "export-pbs", "-", env=env).stdout) == PBS_INVENTORY
    assert (target.stat().st_mode & 0o777) == 0o640


@pytest.mark.parametrize("content, status, message", [
    (None, 3, "{path}: No such file or directory"),
    (b"[{", 2, "{path}: not valid JSON: "),
    (b"\xff\xfe", 2, "{path}: not UTF-8 text, not a PBS inventory.json"),
    (json.dumps([{"id": {"label": {"uuid": "x", "label_text": "T", "ctime": 1}}}]).encode(), 2,
     "{path}: entry 0: "),
])
def test_a_bad_file_is_one_line_and_changes_nothing(env, tmp_path, content, status, message):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(PBS_INVENTORY[1:]))
    tapefs("inventory", "import-pbs", good, env=env)
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_bytes(content)
    line = one_error_line(tapefs("inventory", "import-pbs", path, env=env, check=False), status=status)
    assert line.startswith("tapefs: error: " + message.format(path=path)), line
    assert [m["label-text"] for m in tapefs_json("media", "list", env=env)] == ["TAPE02L8"]


def test_listing_options_do_not_apply_to_the_subcommands(env, tmp_path):
    proc = tapefs("inventory", "--read-labels", "export-pbs", "-", env=env, check=False)
    assert proc.returncode == 2
    assert "the options of 'inventory' do not apply to 'inventory export-pbs'" in proc.stderr
