"""``tapefs changer reset`` (library reset) as real subprocesses against a real vtape daemon whose
changer was made to report a stale element status: the wrong status is visible, the reset clears
it, and the inventory then matches the library again."""
import json

import pytest

from tests.helpers.commands import one_error_line, tapefs, tapefs_json, vtape

pytestmark = [pytest.mark.vtape, pytest.mark.slow]

def contents(entries) -> dict:
    return {(e["entry-kind"], e["entry-id"]): e["label-text"] for e in entries}


def locations(env, update_status: str = "true") -> dict:
    rows = tapefs_json("media", "list", "--update-status", update_status, env=env)
    return {row["label-text"]: row["location"] for row in rows}


def test_reset_clears_a_stale_element_status_and_the_inventory_follows(configured, env):
    tapefs("barcode-label", "--pool", "daily", "--drive", "drive0", env=env)
    library_state = contents(tapefs_json("changer", "status", "lib0", env=env))
    assert library_state[("slot", 1)] == "VT0001L8" and library_state[("slot", 16)] == "CLN001L1"
    assert set(locations(env).values()) == {"online-lib0"}

    fault = json.loads(vtape("fault", configured.path, "changer", "--stale-inventory", env=env).stdout)
    assert fault["stale-slots"] == [1, 2, 3, 4, 16]
    stale = contents(tapefs_json("changer", "status", "lib0", env=env))
    assert all(stale[("slot", n)] is None for n in (1, 2, 3, 4, 16))
    # The inventory believes the changer: the tapes look gone.
    assert set(locations(env).values()) == {"offline"}

    reset = tapefs_json("changer", "reset", "lib0", env=env)
    assert contents(reset) == library_state
    assert contents(tapefs_json("changer", "status", "lib0", env=env)) == library_state
    # The reset itself recorded the tapes (no status update asked for here).
    assert locations(env, update_status="false") == {f"VT000{n}L8": "online-lib0" for n in range(1, 5)}
    assert "VT0003L8" in tapefs("changer", "reset", "--drive", "drive1", env=env).stdout


def test_reset_of_an_unknown_changer_is_one_error_line(configured, env):
    line = one_error_line(tapefs("changer", "reset", "nosuch", env=env, check=False))
    assert "nosuch" in line
