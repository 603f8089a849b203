"""The proxmox-tape style commands of ``tapefs`` (changer, drive, pool, media, label, barcode-label,
read-label, inventory, load/unload, format, status...) as real subprocesses of the installed
``tapefs`` against a real vtape daemon, with private config and state directories."""
import subprocess
import sys
import uuid as uuidlib
from pathlib import Path

import pytest

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.device.drive import Drive
from tapefs.media.inventory import Inventory
from tapefs.media.media_id import MediaId, MediaSetLabel
from tests.helpers.commands import one_error_line, tapefs, tapefs_json

# Every test here runs several tapefs subprocesses against a daemon: end to end, so slow.
pytestmark = [pytest.mark.vtape, pytest.mark.slow]


def slot_of(env, label_text):
    entries = tapefs_json("changer", "status", "lib0", env=env)
    return next(e for e in entries if e["label-text"] == label_text)


# -- configuration -------------------------------------------------------------------------------

@pytest.mark.slow
def test_changer_and_drive_config_round_trip(configured, env, library):
    changers = tapefs_json("changer", "list", env=env)
    assert [(c["name"], c["path"], c["vendor"]) for c in changers] == [("lib0", library.changer, "VTAPE")]
    drives = tapefs_json("drive", "list", env=env)
    assert [(d["name"], d["changer"], d["changer-drivenum"]) for d in drives] == [("drive0", "lib0", 0),
                                                                                  ("drive1", "lib0", 1)]
    assert drives[0]["serial"] and drives[0]["serial"] != drives[1]["serial"]
    text = tapefs("drive", "list", env=env).stdout
    assert "drive1" in text and library.drives[1] in text

    tapefs("changer", "update", "lib0", "--export-slots", "15,16", "--eject-before-unload", "true", env=env)
    config = tapefs_json("changer", "config", "lib0", env=env)
    assert config["export-slots"] == [15, 16] and config["eject-before-unload"] is True
    tapefs("changer", "update", "lib0", "--delete", "export-slots", "--digest", config["digest"], env=env)
    assert "export-slots" not in tapefs_json("changer", "config", "lib0", env=env)

    stale = tapefs("drive", "update", "drive1", "--changer-drivenum", "3", "--digest", config["digest"], env=env,
                   check=False)
    assert "digest mismatch" in one_error_line(stale)
    tapefs("drive", "update", "drive1", "--delete", "changer-drivenum", env=env)
    assert "changer-drivenum" not in tapefs_json("drive", "config", "drive1", env=env)
    assert "drive1" in tapefs("drive", "config", "drive1", env=env).stdout


@pytest.mark.slow
def test_remove_drive_and_changer(configured, env):
    in_use = tapefs("changer", "remove", "lib0", env=env, check=False)
    assert "used by drive(s) drive0, drive1" in one_error_line(in_use)
    tapefs("drive", "remove", "drive0", env=env)
    tapefs("drive", "remove", "drive1", env=env)
    tapefs("changer", "remove", "lib0", env=env)
    assert tapefs_json("drive", "list", env=env) == [] and tapefs_json("changer", "list", env=env) == []
    assert "no drives configured" in tapefs("drive", "list", env=env).stdout


@pytest.mark.slow
def test_scan_finds_the_vtape_library(library, env):
    changers = tapefs_json("changer", "scan", "--vtape-library", library.path, env=env)
    assert [c["path"] for c in changers] == [library.changer]
    drives = tapefs_json("drive", "scan", "--vtape-library", library.path, env=env)
    assert [d["path"] for d in drives] == library.drives
    assert library.drives[0] in tapefs("drive", "scan", "--vtape-library", library.path, env=env).stdout


@pytest.mark.slow
def test_pool_create_update_list_remove(env):
    tapefs("pool", "create", "weekly", "--allocation", "sat 06:00", "--retention", "5 weeks",
           "--template", "weekly-%Y-%W", "--comment", "offsite", env=env)
    pools = tapefs_json("pool", "list", env=env)
    assert pools == [{"name": "weekly", "allocation": "sat 06:00", "retention": "5 weeks",
                      "template": "weekly-%Y-%W", "encrypt": None, "comment": "offsite"}]
    tapefs("pool", "update", "weekly", "--retention", "keep", "--delete", "comment", env=env)
    config = tapefs_json("pool", "config", "weekly", env=env)
    assert config["retention"] == "keep" and "comment" not in config
    assert "weekly-%Y-%W" in tapefs("pool", "list", env=env).stdout
    tapefs("pool", "remove", "weekly", env=env)
    assert tapefs_json("pool", "list", env=env) == []


@pytest.mark.slow
def test_bad_configuration_input_is_one_line(env, tmp_path):
    bad_allocation = tapefs("pool", "create", "daily", "--allocation", "every full moon", env=env, check=False)
    assert "allocation" in one_error_line(bad_allocation)
    tapefs("pool", "create", "daily", env=env)
    taken = tapefs("pool", "create", "daily", env=env, check=False)
    assert "already has an entry named 'daily'" in one_error_line(taken)
    unknown_changer = tapefs("drive", "create", "drive0", "--path", "/dev/null", "--changer", "nope", env=env,
                             check=False)
    assert "no changer named 'nope'" in one_error_line(unknown_changer)
    unknown_pool = tapefs("pool", "config", "weekly", env=env, check=False)
    assert "no pool named 'weekly'" in one_error_line(unknown_pool)


def test_config_file_typo_names_file_line_and_property(configured, env, tmp_path):
    tape_cfg = tmp_path / "config" / "tape.cfg"
    tape_cfg.write_text(tape_cfg.read_text().replace("changer-drivenum 1", "changer-drivenumm 1"))
    for command in (("drive", "list"), ("status", "--drive", "drive0"), ("media", "list")):
        line = one_error_line(tapefs(*command, env=env, check=False))
        assert f"{tape_cfg}:" in line and "'changer-drivenumm'" in line and "did you mean 'changer-drivenum'" in line


# -- drive selection and devices -----------------------------------------------------------------

def test_unknown_drive_name_is_one_line(configured, env):
    line = one_error_line(tapefs("status", "--drive", "drive7", env=env, check=False))
    assert "no drive named 'drive7'" in line and "drive0, drive1" in line


def test_two_drives_need_a_drive_option(configured, env):
    assert "choose one with --drive" in one_error_line(tapefs("rewind", env=env, check=False))
    env["PROXMOX_TAPE_DRIVE"] = "drive1"
    assert tapefs_json("status", env=env)["medium-present"] is False


def test_missing_device_is_one_line(env, tmp_path):
    created = tapefs("drive", "create", "ghost", "--path", tmp_path / "no-such-socket", env=env)
    # saved (the device may be switched off), with a warning that names the path
    assert created.stderr.startswith(f"tapefs: warning: {tmp_path / 'no-such-socket'} does not exist now"), created.stderr
    assert tapefs("drive", "update", "ghost", "--path", "/dev/null", env=env).stderr == ""
    tapefs("drive", "update", "ghost", "--path", tmp_path / "no-such-socket", env=env)
    line = one_error_line(tapefs("status", env=env, check=False))
    assert "no-such-socket" in line
    # a list of configured devices still works when one of them is switched off
    assert tapefs_json("drive", "list", env=env)[0]["vendor"] is None
    line = one_error_line(tapefs("load-media", "VT0001L8", env=env, check=False))
    assert "drive 'ghost' is not in a changer" in line


@pytest.mark.slow
def test_load_unload_by_label_and_slot(configured, env):
    tapefs("load-media", "VT0003L8", "--drive", "drive1", env=env)
    drive = slot_of(env, "VT0003L8")
    assert (drive["entry-kind"], drive["entry-id"], drive["loaded-slot"]) == ("drive", 1, 3)
    status = tapefs("changer", "status", "--drive", "drive1", env=env).stdout
    assert any(line.split()[:3] == ["drive", "1", "VT0003L8"] for line in status.splitlines())
    # loading another tape puts the first one back first (ejecting it first, as this library now asks)
    tapefs("changer", "update", "lib0", "--eject-before-unload", "1", env=env)
    tapefs("load-media-from-slot", "2", "--drive", "drive1", env=env)
    assert slot_of(env, "VT0003L8")["entry-kind"] == "slot" and slot_of(env, "VT0002L8")["entry-kind"] == "drive"
    tapefs("unload", "--drive", "drive1", "--target-slot", "9", env=env)
    assert slot_of(env, "VT0002L8")["entry-id"] == 9
    tapefs("changer", "transfer", "lib0", "--from", "9", "--to", "2", env=env)
    assert slot_of(env, "VT0002L8")["entry-id"] == 2


@pytest.mark.slow
def test_bad_slots_and_labels_are_one_line(configured, env):
    assert "slot 40 does not exist" in one_error_line(
        tapefs("load-media-from-slot", "40", "--drive", "drive0", env=env, check=False))
    assert "slot 9 of changer 'lib0' is empty" in one_error_line(
        tapefs("load-media-from-slot", "9", "--drive", "drive0", env=env, check=False))
    assert "'VT0099L8' is not in a slot" in one_error_line(
        tapefs("load-media", "VT0099L8", "--drive", "drive0", env=env, check=False))
    assert "drive 0 is empty" in one_error_line(tapefs("unload", "--drive", "drive0", env=env, check=False))
    assert "slot 2 of changer 'lib0' is full" in one_error_line(
        tapefs("changer", "transfer", "--from", "1", "--to", "2", "--drive", "drive0", env=env, check=False))
    assert "has no tape loaded" in one_error_line(tapefs("rewind", "--drive", "drive0", env=env, check=False))


@pytest.mark.slow
def test_drive_status_cartridge_memory_volume_statistics(configured, env):
    tapefs("load-media", "VT0001L8", "--drive", "drive0", env=env)
    status = tapefs_json("status", "--drive", "drive0", env=env)
    assert status["medium-present"] is True and status["density"] == "LTO8"
    assert "medium-present" in tapefs("status", "--drive", "drive0", env=env).stdout
    attributes = tapefs_json("cartridge-memory", "--drive", "drive0", env=env)
    assert any(a["name"] == "Load Count" and a["value"] >= 1 for a in attributes)
    assert "Maximum Capacity In Partition" in tapefs("cartridge-memory", "--drive", "drive0", env=env).stdout
    statistics = tapefs_json("volume-statistics", "--drive", "drive0", env=env)
    assert statistics["volume-mounts"] >= 1
    pretty = tapefs("volume-statistics", "--drive", "drive0", "--output-format", "json-pretty", env=env).stdout
    assert pretty.startswith("{\n  ")
    tapefs("rewind", "--drive", "drive0", env=env)
    tapefs("eject", "--drive", "drive0", env=env)
    assert slot_of(env, "VT0001L8")["entry-kind"] == "slot"


HOLD_DRIVE = """
import sys, time
from tapefs.media.drive_lock import DriveLock
DriveLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(120)
"""


@pytest.mark.slow
def test_commands_that_move_or_write_a_tape_refuse_a_drive_another_process_uses(configured, env):
    tapefs("load-media", "VT0001L8", "--drive", "drive0", env=env)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_DRIVE, "drive0"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = f"drive drive0 is in use by another tapefs process (pid {holder.pid})"
        for command in (["load-media", "VT0002L8"], ["load-media-from-slot", "2"], ["unload"], ["eject"],
                        ["rewind"], ["format", "--label-text", "VT0001L8"], ["label", "--label-text", "VT0001L8"],
                        ["read-label"], ["clean"], ["export-media", "VT0001L8"]):
            assert busy in one_error_line(tapefs(*command, "--drive", "drive0", env=env, check=False)), command
        assert slot_of(env, "VT0001L8")["entry-kind"] == "drive"  # nothing moved
        # Queries neither move nor change the tape: they work while the drive is in use.
        assert tapefs_json("status", "--drive", "drive0", env=env)["medium-present"] is True
        assert tapefs_json("volume-statistics", "--drive", "drive0", env=env)["volume-mounts"] >= 1
        # The other drive is free.
        tapefs("load-media", "VT0002L8", "--drive", "drive1", env=env)
    finally:
        holder.kill()
        holder.wait()
    tapefs("eject", "--drive", "drive0", env=env)
    assert slot_of(env, "VT0001L8")["entry-kind"] == "slot"


# -- labels and inventory ------------------------------------------------------------------------

def test_label_read_label_and_refusal_of_a_tape_with_data(configured, env):
    tapefs("load-media", "VT0001L8", "--drive", "drive0", env=env)
    labelled = tapefs_json("label", "--label-text", "VT0001L8", "--pool", "daily", "--drive", "drive0", env=env)
    assert labelled["label-text"] == "VT0001L8" and labelled["pool"] == "daily"
    read = tapefs_json("read-label", "--drive", "drive0", env=env)
    assert read["uuid"] == labelled["uuid"] and read["inventorized"] is False

    again = one_error_line(tapefs("label", "--label-text", "OTHER1", "--drive", "drive0", env=env, check=False))
    assert "media is not empty" in again and "VT0001L8" in again and "--force" in again

    forced = tapefs_json("label", "--label-text", "OTHER1", "--drive", "drive0", "--force", env=env)
    assert forced["uuid"] != labelled["uuid"] and forced["pool"] is None
    media = tapefs_json("media", "list", env=env)
    assert [(m["label-text"], m["uuid"], m["location"]) for m in media] == [("OTHER1", forced["uuid"], "offline")]


def test_label_refuses_a_label_text_in_use_and_unknown_pool(configured, env):
    tapefs("load-media", "VT0001L8", "--drive", "drive0", env=env)
    tapefs("label", "--label-text", "VT0001L8", "--drive", "drive0", env=env)
    tapefs("load-media", "VT0002L8", "--drive", "drive1", env=env)
    taken = one_error_line(tapefs("label", "--label-text", "VT0001L8", "--drive", "drive1", env=env, check=False))
    assert "label text 'VT0001L8' is already used" in taken
    no_pool = one_error_line(tapefs("label", "--label-text", "VT0002L8", "--pool", "weekly", "--drive", "drive1",
                                    env=env, check=False))
    assert "no pool named 'weekly'" in no_pool
    bad_text = one_error_line(tapefs("label", "--label-text", "bad label", "--drive", "drive1", env=env, check=False))
    assert "invalid label text 'bad label'" in bad_text


def test_label_refuses_a_tape_with_foreign_data(configured, env, library):
    tapefs("load-media", "VT0004L8", "--drive", "drive0", env=env)
    write_foreign_data(library.drives[0])
    line = one_error_line(tapefs("label", "--label-text", "VT0004L8", "--drive", "drive0", env=env, check=False))
    assert "media is not empty" in line and "not a tapefs/PBS label" in line


def test_read_label_inventorize_and_unlabelled_tape(configured, env):
    tapefs("load-media", "VT0002L8", "--drive", "drive0", env=env)
    assert "not labelled" in one_error_line(tapefs("read-label", "--drive", "drive0", env=env, check=False))
    tapefs("label", "--label-text", "VT0002L8", "--drive", "drive0", env=env)
    uuid = tapefs_json("read-label", "--drive", "drive0", env=env)["uuid"]
    # forget it, then inventorize it back from the tape
    state = Path(env["TAPEFS_STATE_DIR"]) / "tape" / "inventory.db"
    state.unlink()
    assert tapefs_json("media", "list", env=env) == []
    read = tapefs_json("read-label", "--inventorize", "--drive", "drive0", env=env)
    assert read["inventorized"] is True
    assert [(m["label-text"], m["uuid"]) for m in tapefs_json("media", "list", env=env)] == [("VT0002L8", uuid)]
    assert "inventorized  yes" in tapefs("read-label", "--inventorize", "--drive", "drive0", env=env).stdout


@pytest.mark.slow
def test_barcode_label_then_inventory(configured, env):
    tapefs("load-media", "VT0003L8", "--drive", "drive0", env=env)
    tapefs("label", "--label-text", "VT0003L8", "--drive", "drive0", env=env)
    outcomes = tapefs_json("barcode-label", "--pool", "daily", "--drive", "drive0", env=env)
    assert [(o["label-text"], o["result"]) for o in outcomes] == [
        ("VT0001L8", "labelled"), ("VT0002L8", "labelled"), ("VT0004L8", "labelled")]
    media = {m["label-text"]: m for m in tapefs_json("media", "list", env=env)}
    assert sorted(media) == ["VT0001L8", "VT0002L8", "VT0003L8", "VT0004L8"]     # no cleaning tape
    assert media["VT0001L8"]["pool"] == "daily" and media["VT0003L8"]["pool"] is None
    assert {m["location"] for m in media.values()} == {"online-lib0"}
    # every tape went back to its slot
    for label_text in media:
        assert slot_of(env, label_text)["entry-kind"] == "slot"
    assert "no unlabelled tapes" in tapefs("barcode-label", "--drive", "drive0", env=env).stdout

    listing = tapefs_json("inventory", "--drive", "drive0", env=env)
    assert {(o["label-text"], o["result"], o["uuid"]) for o in listing} == {
        (text, "known", m["uuid"]) for text, m in media.items()}
    # a lost inventory is rebuilt by reading every label
    (Path(env["TAPEFS_STATE_DIR"]) / "tape" / "inventory.db").unlink()
    assert {o["result"] for o in tapefs_json("inventory", "--drive", "drive0", env=env)} == {"not-inventoried"}
    rebuilt = tapefs_json("inventory", "--read-labels", "--drive", "drive1", env=env)
    assert {(o["label-text"], o["result"], o["uuid"]) for o in rebuilt} == {
        (text, "read", m["uuid"]) for text, m in media.items()}
    again = tapefs_json("inventory", "--read-all-labels", "--drive", "drive1", env=env)
    assert {o["result"] for o in again} == {"read"}
    text = tapefs("media", "list", "--pool", "daily", env=env).stdout
    assert "VT0001L8" in text and "VT0003L8" not in text and "online-lib0" in text


def test_format_guard_and_inventory_removal(configured, env):
    tapefs("load-media", "VT0001L8", "--drive", "drive0", env=env)
    tapefs("label", "--label-text", "VT0001L8", "--drive", "drive0", env=env)
    wrong = one_error_line(tapefs("format", "--label-text", "VT0002L8", "--drive", "drive0", env=env, check=False))
    assert "has 'VT0001L8', not label 'VT0002L8'" in wrong
    tapefs("format", "--label-text", "VT0001L8", "--drive", "drive0", env=env)
    assert tapefs_json("media", "list", env=env) == []
    # a formatted tape is empty: labelling needs no --force
    tapefs("label", "--label-text", "VT0001L8", "--drive", "drive0", env=env)


def test_media_list_text_and_content_without_catalog(configured, env):
    assert "no media in the inventory" in tapefs("media", "list", env=env).stdout
    tapefs("load-media", "VT0001L8", "--drive", "drive0", env=env)
    tapefs("label", "--label-text", "VT0001L8", "--pool", "daily", "--drive", "drive0", env=env)
    text = tapefs("media", "list", env=env).stdout
    row = next(line for line in text.splitlines() if "VT0001L8" in line)
    assert "daily" in row and "writable" in row and "online-lib0" in row
    assert tapefs_json("media", "content", env=env) == []
    assert "no cataloged snapshots" in tapefs("media", "content", "--pool", "daily", env=env).stdout


def test_media_content_lists_cataloged_snapshots(configured, env):
    tapefs("load-media", "VT0002L8", "--drive", "drive0", env=env)
    labelled = tapefs_json("label", "--label-text", "VT0002L8", "--pool", "daily", "--drive", "drive0", env=env)
    # what a backup job records after writing one snapshot archive as file 2 of set member 0
    status_dir = Path(env["TAPEFS_STATE_DIR"]) / "tape"
    set_uuid = str(uuidlib.uuid4())
    with Inventory.open(status_dir) as inventory:
        media = inventory.get(labelled["uuid"]).id
        inventory.store(MediaId(media.label, MediaSetLabel("daily", set_uuid, 0, labelled["ctime"])))
    with MediaCatalog.open(status_dir) as catalog:
        catalog.reset_media(labelled["uuid"], set_uuid, 0)
        catalog.register_snapshot(labelled["uuid"], 2, uuidlib.uuid4(), "store1", "vm/100/2026-11-22T04:00:00Z")
    content = tapefs_json("media", "content", "--pool", "daily", env=env)
    assert content == [{"label-text": "VT0002L8", "uuid": labelled["uuid"], "pool": "daily",
                        "media-set-uuid": set_uuid, "seq-nr": 0, "store": "store1",
                        "snapshot": "vm/100/2026-11-22T04:00:00Z", "file-number": 2}]
    assert tapefs_json("media", "content", "--label-text", "VT0001L8", env=env) == []
    assert "vm/100/2026-11-22T04:00:00Z" in tapefs("media", "content", env=env).stdout


def write_foreign_data(drive_path: str) -> None:
    with Drive.open(drive_path) as drive:
        assert drive.is_ready()
        drive.write_block(b"not a tapefs label" * 100)
        drive.write_filemarks(1)


@pytest.mark.slow
def test_barcode_label_skips_tapes_with_data_and_inventory_skips_mismatched_labels(configured, env, library):
    tapefs("load-media", "VT0002L8", "--drive", "drive0", env=env)
    write_foreign_data(library.drives[0])
    tapefs("load-media", "VT0003L8", "--drive", "drive0", env=env)      # VT0002L8 goes back to slot 2
    tapefs("label", "--label-text", "OTHER3", "--drive", "drive0", env=env)
    tapefs("unload", "--drive", "drive0", env=env)
    outcomes = {o["label-text"]: o for o in tapefs_json("barcode-label", "--drive", "drive1", env=env)}
    assert {text: o["result"] for text, o in outcomes.items()} == {
        "VT0001L8": "labelled", "VT0002L8": "skipped", "VT0004L8": "labelled", "VT0003L8": "skipped"}
    assert "not a tapefs/PBS label" in outcomes["VT0002L8"]["message"]
    assert "labelled 'OTHER3'" in outcomes["VT0003L8"]["message"]
    # the tape with data is untouched: still not labelled
    tapefs("load-media", "VT0002L8", "--drive", "drive0", env=env)
    assert "not a tapefs/PBS label" in one_error_line(tapefs("label", "--label-text", "VT0002L8", "--drive", "drive0",
                                                             env=env, check=False))
    tapefs("unload", "--drive", "drive0", env=env)

    (Path(env["TAPEFS_STATE_DIR"]) / "tape" / "inventory.db").unlink()
    read = {o["label-text"]: o for o in tapefs_json("inventory", "--read-labels", "--drive", "drive0", env=env)}
    assert {text: o["result"] for text, o in read.items()} == {
        "VT0001L8": "read", "VT0002L8": "failed", "VT0003L8": "skipped", "VT0004L8": "read"}
    assert "label text 'OTHER3' does not match the barcode" in read["VT0003L8"]["message"]
    assert sorted(m["label-text"] for m in tapefs_json("media", "list", env=env)) == ["VT0001L8", "VT0004L8"]
