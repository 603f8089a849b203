"""``tapefs clean``, ``export-media``, ``media move``, ``media status`` and ``media destroy`` as
real subprocesses against a real vtape daemon: what they change, and that every refusal is one
line that says why and changes nothing."""
import time
import uuid as uuidlib

import pytest

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.media.inventory import Inventory
from tapefs.media.media_id import MediaId, MediaLabel, MediaSetLabel
from tests.helpers.commands import one_error_line, tapefs, tapefs_json

pytestmark = [pytest.mark.vtape, pytest.mark.slow]

DAY = 86400


@pytest.fixture
def labelled(configured, env):
    """VT0001L8..VT0004L8 labelled for pool daily, in slots 1-4; mail slots 17 and 18."""
    tapefs("barcode-label", "--pool", "daily", "--drive", "drive0", env=env)
    return configured


def changer_contents(env) -> dict:
    return {(e["entry-kind"], e["entry-id"]): e["label-text"] for e in tapefs_json("changer", "status", "lib0", env=env)}


def media_row(env, label_text: str) -> dict:
    return next(row for row in tapefs_json("media", "list", env=env) if row["label-text"] == label_text)


# -- clean -----------------------------------------------------------------------------------------

def test_clean_uses_the_cleaning_cartridge_and_puts_the_tape_back(labelled, env):
    tapefs("load-media", "VT0002L8", "--drive", "drive0", env=env)
    result = tapefs_json("clean", "--drive", "drive0", env=env)
    assert {k: result[k] for k in ("drive", "changer", "cleaning-cartridge", "slot", "cycles-left", "expired",
                                   "reloaded")} == {
        "drive": "drive0", "changer": "lib0", "cleaning-cartridge": "CLN001L1", "slot": 16, "cycles-left": 49,
        "expired": [], "reloaded": "VT0002L8"}
    assert tapefs_json("clean", "--drive", "drive0", env=env)["cycles-left"] == 48
    contents = changer_contents(env)
    assert contents[("drive", 0)] == "VT0002L8" and contents[("slot", 16)] == "CLN001L1"
    assert "CLN001L1" in tapefs("clean", "--drive", "drive0", env=env).stdout


def test_a_cleaning_cartridge_is_refused_as_a_data_tape(labelled, env):
    line = one_error_line(tapefs("load-media", "CLN001L1", "--drive", "drive0", env=env, check=False))
    assert line == "tapefs: error: CLN001L1 is a cleaning cartridge, not a data tape (use 'tapefs clean')"
    line = one_error_line(tapefs("load-media-from-slot", "16", "--drive", "drive0", env=env, check=False))
    assert "slot 16 holds cleaning cartridge CLN001L1" in line
    line = one_error_line(tapefs("label", "--label-text", "CLN002L1", "--drive", "drive0", env=env, check=False))
    assert "marks cleaning tapes" in line
    assert changer_contents(env)[("drive", 0)] is None


def test_clean_without_a_cleaning_cartridge_fails_and_moves_nothing(labelled, env):
    tapefs("export-media", "CLN001L1", "--drive", "drive0", env=env)
    tapefs("load-media", "VT0001L8", "--drive", "drive0", env=env)
    before = changer_contents(env)
    line = one_error_line(tapefs("clean", "--drive", "drive0", env=env, check=False))
    assert line == "tapefs: error: no cleaning cartridge (barcode CLN…) in a storage slot of changer lib0"
    assert changer_contents(env) == before


# -- export-media, media move ---------------------------------------------------------------------

def test_export_media_moves_tapes_out_and_a_full_mail_area_moves_nothing(labelled, env):
    tapefs("load-media", "VT0002L8", "--drive", "drive1", env=env)
    assert tapefs_json("export-media", "VT0001L8", "--drive", "drive0", env=env) == {
        "label-text": "VT0001L8", "changer": "lib0", "slot": 17, "location": "offline"}
    # From a drive: unloaded first.
    assert tapefs_json("export-media", "VT0002L8", "--drive", "drive0", env=env)["slot"] == 18
    contents = changer_contents(env)
    assert (contents[("import-export", 17)], contents[("import-export", 18)], contents[("drive", 1)]) == (
        "VT0001L8", "VT0002L8", None)
    assert media_row(env, "VT0001L8")["location"] == "offline"
    assert media_row(env, "VT0002L8")["location"] == "offline"

    line = one_error_line(tapefs("export-media", "VT0003L8", "--drive", "drive0", env=env, check=False))
    assert line == ("tapefs: error: no free import/export slot in changer lib0 (slots 17, 18 are full): "
                    "tape VT0003L8 not exported, nothing moved")
    assert changer_contents(env) == contents
    assert media_row(env, "VT0003L8")["location"] == "online-lib0"

    line = one_error_line(tapefs("export-media", "VT0099L8", "--drive", "drive0", env=env, check=False))
    assert line == "tapefs: error: tape VT0099L8 is not in changer lib0: nothing to export"


def test_media_move_records_a_vault_only_for_tapes_out_of_the_library(labelled, env):
    line = one_error_line(tapefs("media", "move", "VT0001L8", "--vault", "offsite", env=env, check=False))
    assert line == ("tapefs: error: tape VT0001L8 is online in changer lib0: "
                    "export it first (tapefs export-media VT0001L8)")
    assert media_row(env, "VT0001L8")["location"] == "online-lib0"

    tapefs("export-media", "VT0001L8", "--drive", "drive0", env=env)
    labelled.control("remove", barcode="VT0001L8")
    assert tapefs_json("media", "move", "VT0001L8", "--vault", "offsite", env=env)["location"] == "vault-offsite"
    assert media_row(env, "VT0001L8")["location"] == "vault-offsite"
    assert "vault-offsite" in tapefs("media", "list", env=env).stdout
    assert tapefs_json("media", "move", "VT0001L8", "--offline", env=env)["location"] == "offline"

    bad = tapefs("media", "move", "VT0001L8", "--vault", "x", env=env, check=False)
    assert bad.returncode == 2 and "invalid vault name 'x'" in bad.stderr
    neither = tapefs("media", "move", "VT0001L8", env=env, check=False)
    assert neither.returncode == 2 and "give either --vault NAME or --offline" in neither.stderr
    line = one_error_line(tapefs("media", "move", "NOPE01", "--offline", env=env, check=False))
    assert line == "tapefs: error: no media labelled 'NOPE01' in the inventory"
    assert media_row(env, "VT0001L8")["location"] == "offline"

    # Back through the mail slot: online again once the changer holds it in a storage slot.
    labelled.control("insert", barcode="VT0001L8")
    tapefs("changer", "transfer", "lib0", "--from", "17", "--to", "1", env=env)
    assert media_row(env, "VT0001L8")["location"] == "online-lib0"


# -- media status ---------------------------------------------------------------------------------

def test_media_status_set_and_clear(labelled, env):
    assert tapefs_json("media", "status", "VT0003L8", env=env)["status"] is None
    assert tapefs_json("media", "status", "VT0003L8", "--set", "damaged", env=env)["status"] == "damaged"
    assert media_row(env, "VT0003L8")["status"] == "damaged"
    tapefs("media", "status", "VT0003L8", "--set", "retired", env=env)
    assert media_row(env, "VT0003L8")["status"] == "retired"
    assert tapefs_json("media", "status", "VT0003L8", "--clear", env=env)["status"] is None
    assert media_row(env, "VT0003L8")["status"] == "writable"

    writable = tapefs("media", "status", "VT0003L8", "--set", "writable", env=env, check=False)
    assert writable.returncode == 2 and "'writable' is not one of" in writable.stderr
    both = tapefs("media", "status", "VT0003L8", "--set", "full", "--clear", env=env, check=False)
    assert both.returncode == 2 and "give --set or --clear, not both" in both.stderr
    line = one_error_line(tapefs("media", "status", "NOPE01", "--set", "full", env=env, check=False))
    assert line == "tapefs: error: no media labelled 'NOPE01' in the inventory"
    assert media_row(env, "VT0003L8")["status"] == "writable"


# -- media destroy --------------------------------------------------------------------------------

def store_set_member(status_dir, label_text: str, set_ctime: int) -> str:
    """A tape of pool daily, alone in a media set written at ``set_ctime``, with a catalog."""
    media_uuid, set_uuid = str(uuidlib.uuid4()), str(uuidlib.uuid4())
    with Inventory.open(status_dir) as inventory:
        inventory.store(MediaId(MediaLabel(media_uuid, label_text, set_ctime - 60, "daily"),
                                MediaSetLabel("daily", set_uuid, 0, set_ctime)))
    with MediaCatalog.open(status_dir) as catalog:
        catalog.reset_media(media_uuid, set_uuid, 0)
    (status_dir / f"{media_uuid}.log").write_bytes(b"catalog copy")
    return media_uuid


def test_media_destroy_refuses_unexpired_data_unless_forced(env, tmp_path):
    tapefs("pool", "create", "daily", "--allocation", "daily", "--retention", "6 days", env=env)
    status_dir = tmp_path / "state" / "tape"
    status_dir.mkdir(parents=True)
    now = int(time.time())
    # Each set's tapes are protected until 6 days after the next set started.
    old = store_set_member(status_dir, "OLD001", now - 30 * DAY)
    middle = store_set_member(status_dir, "MID001", now - 10 * DAY)
    new = store_set_member(status_dir, "NEW001", now - 2 * DAY)
    with Inventory.open(status_dir) as inventory:
        inventory.store(MediaId(MediaLabel(str(uuidlib.uuid4()), "FREE01", now, "daily")))

    line = one_error_line(tapefs("media", "destroy", "MID001", env=env, check=False))
    assert line.startswith("tapefs: error: media MID001 holds data of media set ")
    assert "that has not expired: pool daily protects it until " in line
    assert line.endswith("(nothing destroyed; use --force to destroy it anyway)")
    line = one_error_line(tapefs("media", "destroy", "NEW001", env=env, check=False))
    assert "has not expired" in line
    line = one_error_line(tapefs("media", "destroy", "NOPE01", env=env, check=False))
    assert line == "tapefs: error: no media labelled 'NOPE01' in the inventory"
    assert {row["label-text"] for row in tapefs_json("media", "list", env=env)} == {
        "OLD001", "MID001", "NEW001", "FREE01"}

    tapefs("media", "destroy", "OLD001", env=env)
    tapefs("media", "destroy", "FREE01", env=env)
    tapefs("media", "destroy", "NEW001", "--force", env=env)
    assert [row["label-text"] for row in tapefs_json("media", "list", env=env)] == ["MID001"]
    with MediaCatalog.open(status_dir) as catalog:
        assert (catalog.has_media(old), catalog.has_media(new), catalog.has_media(middle)) == (False, False, True)
    assert sorted(path.stem for path in status_dir.glob("*.log")) == [middle]
