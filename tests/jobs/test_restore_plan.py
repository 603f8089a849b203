"""``tapefs restore --plan`` as a user runs it against a real vtape library: the tapes a restore
needs and where each one is (drive, slot, vault with its note, offline), without a drive moving."""
import json

import pytest

from tests.helpers.commands import one_error_line, tapefs
from tests.helpers.tape_setup import add_cartridges

pytestmark = [pytest.mark.vtape, pytest.mark.slow]


def plan(*args, check=True):
    return tapefs("restore", *args, "--plan", "--output-format", "json", check=check)


def drive_contents(changer_name="lib"):
    entries = json.loads(tapefs("changer", "status", changer_name, "--output-format", "json").stdout)
    return [e["label-text"] for e in entries if e["entry-kind"] == "drive"]


def test_plan_lists_every_tape_of_the_set_with_where_it_is(tape_setup):
    add_cartridges(tape_setup.library, 3, "24MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8", "SM0003L8")
    first = tape_setup.add_snapshot("vm/100", 3)
    tape_setup.add_snapshot("vm/101", 3)
    last = tape_setup.add_snapshot("vm/102", 3)
    result = json.loads(tapefs("backup", "store", "daily", "--drive", "drive0", "--output-format", "json").stdout)
    media_set, tapes = result["media-set"], result["tapes"]
    assert len(tapes) >= 2, tapes  # 36 MiB of chunks on 24 MiB tapes
    with tape_setup.catalog() as catalog:
        archive_tape = {p.snapshot: p.seq_nr for p in catalog.snapshots_in_set(media_set)}

    # The last tape written stays in drive0; take the first out of the library into a vault.
    tapefs("export-media", tapes[0], "--drive", "drive1")
    tape_setup.library.control("remove", barcode=tapes[0])
    tapefs("media", "vault", "record", tapes[0], "--vault", "offsite", "--note", "crate 12")
    before = drive_contents()

    rows = json.loads(plan(media_set, "store").stdout)
    assert [(r["seq-nr"], r["label-text"]) for r in rows] == list(enumerate(tapes))
    assert {k: rows[0][k] for k in ("place", "where", "element", "note")} == {
        "place": "vault", "where": "offsite", "element": None, "note": "crate 12"}
    assert {k: rows[-1][k] for k in ("place", "where", "element")} == {
        "place": "drive", "where": "lib", "element": "drive0"}
    assert all(r["reason"] == "the whole media set" for r in rows)
    text = tapefs("restore", media_set, "store", "--plan").stdout
    assert "crate 12" in text and f"to bring into the library first: {tapes[0]}" in text

    # A named snapshot: its archive's tape and the set's earlier tapes (shared chunks).
    named = json.loads(plan(media_set, "store", f"store:{last}").stdout)
    assert [r["seq-nr"] for r in named] == list(range(archive_tape[last] + 1))
    assert named[-1]["reason"] == "snapshot archive"
    only_first = json.loads(plan(media_set, "store", first).stdout)
    assert [r["seq-nr"] for r in only_first] == list(range(archive_tape[first] + 1))

    # The tape goes offline (out of the vault, not back yet).
    tapefs("media", "move", tapes[0], "--offline")
    assert json.loads(plan(media_set, "store").stdout)[0]["place"] == "offline"
    assert drive_contents() == before  # nothing was loaded or unloaded for a plan


def test_plan_bad_input_is_one_error_line(tape_setup):
    add_cartridges(tape_setup.library, 1, "24MiB", "4MiB")
    tape_setup.label("SM0001L8")
    tape_setup.add_snapshot("vm/100", 1)
    media_set = json.loads(tapefs("backup", "store", "daily", "--drive", "drive0",
                                  "--output-format", "json").stdout)["media-set"]
    unknown_set = plan("00000000-0000-4000-8000-000000000099", "store", check=False)
    assert one_error_line(unknown_set) == (
        "tapefs: error: media set 00000000-0000-4000-8000-000000000099 is not in the inventory")
    unknown_snapshot = plan(media_set, "store", "vm/999/2020-01-01T00:00:00Z", check=False)
    assert one_error_line(unknown_snapshot) == (
        f"tapefs: error: snapshot vm/999/2020-01-01T00:00:00Z is not in the catalog of media set {media_set}")
    unknown_store = plan(media_set, "nosuchstore", check=False)
    assert unknown_store.returncode != 0 and "nosuchstore" in one_error_line(unknown_store)
