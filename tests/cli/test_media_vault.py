"""``tapefs media vault record`` and ``media vault list`` as real subprocesses against a real
vtape daemon: the round trip, and every bad input as one error line that changes nothing."""
import time

import pytest

from tests.helpers.commands import one_error_line, tapefs, tapefs_json

pytestmark = [pytest.mark.vtape, pytest.mark.slow]


@pytest.fixture
def out_of_library(configured, env):
    """VT0001L8..VT0004L8 labelled for pool daily; VT0001L8 and VT0002L8 exported and taken out."""
    tapefs("barcode-label", "--pool", "daily", "--drive", "drive0", env=env)
    for label_text in ("VT0001L8", "VT0002L8"):
        tapefs("export-media", label_text, "--drive", "drive0", env=env)
        configured.control("remove", barcode=label_text)
    return configured


def location(env, label_text: str) -> str:
    rows = tapefs_json("media", "list", "--update-status", "false", env=env)
    return next(row["location"] for row in rows if row["label-text"] == label_text)


def test_vault_record_and_list_round_trip(out_of_library, env):
    before = int(time.time())
    recorded = tapefs_json("media", "vault", "record", "VT0001L8", "--vault", "offsite",
                           "--note", "box 7, shelf [B]", env=env)
    assert (recorded["label-text"], recorded["vault"], recorded["note"], recorded["pool"]) == (
        "VT0001L8", "offsite", "box 7, shelf [B]", "daily")
    assert before <= recorded["recorded"] <= int(time.time())
    tapefs("media", "vault", "record", "VT0002L8", "--vault", "bank-safe", env=env)
    assert location(env, "VT0001L8") == "vault-offsite" and location(env, "VT0002L8") == "vault-bank-safe"

    listed = tapefs_json("media", "vault", "list", env=env)
    assert [(r["vault"], r["label-text"], r["note"]) for r in listed] == [
        ("bank-safe", "VT0002L8", None), ("offsite", "VT0001L8", "box 7, shelf [B]")]
    assert listed[1]["recorded"] == recorded["recorded"]
    only = tapefs_json("media", "vault", "list", "--vault", "offsite", env=env)
    assert [r["label-text"] for r in only] == ["VT0001L8"]
    text = tapefs("media", "vault", "list", env=env).stdout
    assert "box 7, shelf [B]" in text and "bank-safe" in text

    # Moved elsewhere on paper: the old note no longer describes where it is.
    tapefs("media", "move", "VT0001L8", "--vault", "bank-safe", env=env)
    assert [(r["label-text"], r["note"]) for r in tapefs_json("media", "vault", "list", "--vault", "bank-safe",
                                                              env=env)] == [("VT0001L8", None), ("VT0002L8", None)]
    # Back in the library: in no vault any more.
    out_of_library.control("insert", barcode="VT0001L8")
    tapefs("changer", "transfer", "lib0", "--from", "17", "--to", "1", env=env)
    assert [r["label-text"] for r in tapefs_json("media", "vault", "list", env=env)] == ["VT0002L8"]


def test_vault_bad_input_is_one_error_line_and_changes_nothing(out_of_library, env):
    tapefs("media", "vault", "record", "VT0001L8", "--vault", "offsite", env=env)
    unchanged = tapefs_json("media", "vault", "list", env=env)

    line = one_error_line(tapefs("media", "vault", "record", "NOPE01", "--vault", "offsite", env=env, check=False))
    assert line == "tapefs: error: no media labelled 'NOPE01' in the inventory"
    bad_name = tapefs("media", "vault", "record", "VT0002L8", "--vault", "x/y", env=env, check=False)
    assert bad_name.returncode == 2
    assert "invalid vault name 'x/y'" in one_error_line(bad_name)
    bad_note = tapefs("media", "vault", "record", "VT0002L8", "--vault", "offsite", "--note", "two\nlines",
                      env=env, check=False)
    assert bad_note.returncode == 2 and "one line of printable text" in one_error_line(bad_note)
    online = tapefs("media", "vault", "record", "VT0003L8", "--vault", "offsite", env=env, check=False)
    assert one_error_line(online) == ("tapefs: error: tape VT0003L8 is online in changer lib0: "
                                      "export it first (tapefs export-media VT0003L8)")
    unknown = tapefs("media", "vault", "list", "--vault", "nowhere", env=env, check=False)
    assert unknown.returncode == 3
    assert one_error_line(unknown) == "tapefs: error: no tapes in vault 'nowhere' (vaults: offsite)"

    assert tapefs_json("media", "vault", "list", env=env) == unchanged
    assert location(env, "VT0002L8") == "offline" and location(env, "VT0003L8") == "online-lib0"
