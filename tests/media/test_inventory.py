import json
import logging
import sqlite3
import threading

import pytest

from tapefs.media.errors import InventoryError
from tapefs.media.inventory import Inventory
from tapefs.media.media_id import (
    ZERO_UUID,
    InventoryEntry,
    LocationKind,
    MediaId,
    MediaLabel,
    MediaLocation,
    MediaSetLabel,
    MediaStatus,
    new_uuid,
)
from tests.helpers.inventory_media import make_media_id

SET_A = "aaaaaaaa-0000-4000-8000-000000000001"
SET_B = "bbbbbbbb-0000-4000-8000-000000000002"


def set_label(set_uuid, seq_nr, ctime, pool="p1", fingerprint=None):
    return MediaSetLabel(pool, set_uuid, seq_nr, ctime, fingerprint)


def test_store_and_lookup_survive_reopening(inventory, tmp_path):
    media = make_media_id("TAPE01L8", 1000, pool="p1")
    inventory.store(media)
    inventory.set_location(media.uuid, MediaLocation.vault("offsite"))
    inventory.set_bytes_used(media.uuid, 12345)
    inventory.close()
    with Inventory.open() as reopened:
        entry = reopened.get(media.uuid)
    assert entry == InventoryEntry(media, MediaLocation.vault("offsite"), None, 12345)


def test_new_entry_has_no_status_no_location_and_defaults_to_unknown_offline(inventory):
    media = make_media_id("TAPE01L8", 1000)
    inventory.store(media)
    entry = inventory.get(media.uuid)
    assert (entry.status, entry.location, entry.bytes_used) == (None, None, None)
    assert entry.effective_status is MediaStatus.UNKNOWN
    assert entry.effective_location == MediaLocation.offline()


def test_store_keeps_location_bytes_and_status_unless_cleared(inventory):
    media = make_media_id("TAPE01L8", 1000, pool="p1")
    inventory.store(media)
    inventory.set_location(media.uuid, MediaLocation.online("changer0"))
    inventory.set_bytes_used(media.uuid, 99)
    inventory.set_status(media.uuid, MediaStatus.FULL)
    relabelled = MediaId(media.label, set_label(SET_A, 0, 2000))
    inventory.store(relabelled)
    entry = inventory.get(media.uuid)
    assert entry.id == relabelled
    assert (entry.status, entry.location, entry.bytes_used) == (MediaStatus.FULL, MediaLocation.online("changer0"), 99)
    inventory.store(relabelled, clear_status=True)
    assert inventory.get(media.uuid).status is None
    assert inventory.get(media.uuid).location == MediaLocation.online("changer0")


def test_store_without_set_label_keeps_an_unsaved_pool_assignment(inventory):
    media = make_media_id("TAPE01L8", 1000, set_label=set_label(ZERO_UUID, 0, 1000))
    inventory.store(media)
    inventory.store(MediaId(media.label, None))
    assert inventory.get(media.uuid).id.media_set_label.uuid == ZERO_UUID
    # A real set label is replaced by "none" as asked.
    inventory.store(MediaId(media.label, set_label(SET_A, 0, 2000)))
    inventory.store(MediaId(media.label, None))
    assert inventory.get(media.uuid).id.media_set_label is None


def test_uuids_are_normalized(inventory):
    media = make_media_id("TAPE01L8", 1000, uuid="AABBCCDD00004000800000000000000F")
    inventory.store(media)
    assert inventory.get("aabbccdd-0000-4000-8000-00000000000f").uuid == "aabbccdd-0000-4000-8000-00000000000f"
    assert inventory.lookup("AABBCCDD-0000-4000-8000-00000000000F") is not None
    with pytest.raises(InventoryError, match="invalid UUID 'nonsense'"):
        inventory.lookup("nonsense")


@pytest.mark.parametrize("operation", [
    lambda inv, uuid: inv.remove_media(uuid),
    lambda inv, uuid: inv.set_status(uuid, MediaStatus.DAMAGED),
    lambda inv, uuid: inv.clear_status(uuid),
    lambda inv, uuid: inv.set_location(uuid, MediaLocation.offline()),
    lambda inv, uuid: inv.set_bytes_used(uuid, 1),
    lambda inv, uuid: inv.get(uuid),
])
def test_operations_on_unknown_media_fail(inventory, operation):
    uuid = new_uuid()
    with pytest.raises(InventoryError, match=f"no such media {uuid}"):
        operation(inventory, uuid)


def test_only_full_damaged_and_retired_can_be_stored(inventory):
    media = make_media_id("TAPE01L8", 1000)
    inventory.store(media)
    for status in (MediaStatus.FULL, MediaStatus.DAMAGED, MediaStatus.RETIRED):
        inventory.set_status(media.uuid, status)
        assert inventory.get(media.uuid).status is status
    for status in (MediaStatus.WRITABLE, MediaStatus.UNKNOWN):
        with pytest.raises(InventoryError, match=f"cannot store media status '{status.value}'"):
            inventory.set_status(media.uuid, status)
    inventory.clear_status(media.uuid)
    assert inventory.get(media.uuid).status is None


def test_remove_media(inventory):
    media = make_media_id("TAPE01L8", 1000)
    inventory.store(media)
    inventory.remove_media(media.uuid)
    assert inventory.lookup(media.uuid) is None
    assert inventory.list_media() == []


def test_two_media_with_the_same_label_text(inventory):
    first = make_media_id("DUP001L8", 1000, pool="p1")
    second = make_media_id("DUP001L8", 2000, pool="p2")
    inventory.store(first)
    inventory.store(second)
    assert {e.uuid for e in inventory.find_all_media_by_label_text("DUP001L8")} == {first.uuid, second.uuid}
    with pytest.raises(InventoryError, match="label text 'DUP001L8' is ambiguous: 2 media"):
        inventory.find_media_by_label_text("DUP001L8")
    # Each is still reachable by UUID and by pool.
    assert inventory.get(first.uuid).id == first
    assert [e.uuid for e in inventory.list_pool_media("p2")] == [second.uuid]
    assert inventory.find_media_by_label_text("NOSUCH") is None


def test_pool_of_media_and_pool_lists(inventory):
    free_in_pool = make_media_id("FREE01", 1, pool="p1")
    unassigned = make_media_id("NONE01", 2)
    pool_assigned = make_media_id("ZERO01", 3, set_label=set_label(ZERO_UUID, 0, 3))
    member = make_media_id("MEMB01", 4, pool="p1", set_label=set_label(SET_A, 0, 4))
    # The set label's pool wins over the media label's pool.
    moved = make_media_id("MOVE01", 5, pool="p1", set_label=set_label(SET_B, 0, 5, pool="p2"))
    for media in (free_in_pool, unassigned, pool_assigned, member, moved):
        inventory.store(media)
    assert moved.pool == "p2"
    p1 = {e.uuid: e for e in inventory.list_pool_media("p1")}
    assert set(p1) == {free_in_pool.uuid, pool_assigned.uuid, member.uuid}
    assert p1[pool_assigned.uuid].id.media_set_label is None  # zero UUID reported as no set label
    assert [e.uuid for e in inventory.list_unassigned_media()] == [unassigned.uuid]
    assert {e.uuid for e in inventory.list_used_media()} == {member.uuid, moved.uuid}


def test_media_set_members_start_time_and_gaps(inventory):
    for seq_nr, ctime in ((0, 100), (2, 300)):
        inventory.store(make_media_id(f"T{seq_nr}", ctime, set_label=set_label(SET_A, seq_nr, ctime)))
    members = inventory.compute_media_set_members(SET_A)
    assert len(members) == 3 and members[1] is None and None not in (members[0], members[2])
    assert inventory.media_set_start_time(SET_A) == 100
    assert inventory.media_set_start_time(SET_B) is None
    assert inventory.compute_media_set_members(SET_B) == []
    assert inventory.lookup_media_set_pool(SET_A) == "p1"
    with pytest.raises(InventoryError, match="is incomplete"):
        inventory.lookup_media_set_pool(SET_B)


def test_set_start_time_unknown_without_member_zero(inventory):
    inventory.store(make_media_id("T1", 200, set_label=set_label(SET_A, 1, 200)))
    assert inventory.media_set_start_time(SET_A) is None


def test_duplicate_sequence_number_is_an_error(inventory):
    for name in ("T1", "T2"):
        inventory.store(make_media_id(name, 100, set_label=set_label(SET_A, 0, 100)))
    with pytest.raises(InventoryError, match="sequence number 0 is used by both"):
        inventory.compute_media_set_members(SET_A)


def test_latest_media_set_and_tie(inventory, caplog):
    inventory.store(make_media_id("A0", 100, set_label=set_label(SET_A, 0, 100)))
    inventory.store(make_media_id("A1", 300, set_label=set_label(SET_A, 1, 300)))
    inventory.store(make_media_id("B0", 200, set_label=set_label(SET_B, 0, 200)))
    inventory.store(make_media_id("OTHER", 900, set_label=set_label(new_uuid(), 0, 900, pool="p2")))
    assert inventory.latest_media_set("p1") == SET_A
    assert inventory.latest_media_set("nopool") is None
    inventory.store(make_media_id("B1", 300, set_label=set_label(SET_B, 1, 300)))
    with caplog.at_level(logging.WARNING):
        assert inventory.latest_media_set("p1") is None
    assert "no latest set" in caplog.text


def test_next_start_time_uses_the_first_member_in_uuid_order(inventory):
    # Set A: members at ctime 100 (seq 0) and 500 (seq 1); the seq-1 tape has the smaller UUID.
    inventory.store(make_media_id("A0", 100, uuid="f0000000-0000-4000-8000-000000000000",
                                  set_label=set_label(SET_A, 0, 100)))
    inventory.store(make_media_id("A1", 500, uuid="00000000-0000-4000-8000-000000000001",
                                  set_label=set_label(SET_A, 1, 500)))
    inventory.store(make_media_id("B0", 300, set_label=set_label(SET_B, 0, 300)))
    inventory.store(make_media_id("C0", 700, set_label=set_label(new_uuid(), 0, 700)))
    inventory.store(make_media_id("X0", 600, set_label=set_label(new_uuid(), 0, 600, pool="p2")))
    # PBS compares against the ctime of A's first member in UUID order (500), so B (300) is
    # not "next" although it started after A; C (700) is.
    assert inventory.media_set_next_start_time(SET_A) == 700
    assert inventory.media_set_next_start_time(SET_B) == 500
    assert inventory.media_set_next_start_time(new_uuid()) is None


def test_next_start_time_counts_a_later_zero_uuid_pool_assignment_as_pbs_does(inventory):
    inventory.store(make_media_id("A0", 100, set_label=set_label(SET_A, 0, 100)))
    inventory.store(make_media_id("Z0", 400, set_label=set_label(ZERO_UUID, 0, 400)))
    inventory.store(make_media_id("Y0", 500, set_label=set_label(ZERO_UUID, 0, 500, pool="p2")))
    assert inventory.media_set_next_start_time(SET_A) == 400


def test_set_start_time_with_two_members_zero_takes_the_greater_uuid(inventory):
    inventory.store(make_media_id("A", 1, uuid="aaaaaaaa-0000-4000-8000-000000000000",
                                  set_label=set_label(SET_A, 0, 100)))
    inventory.store(make_media_id("B", 1, uuid="bbbbbbbb-0000-4000-8000-000000000000",
                                  set_label=set_label(SET_A, 0, 200)))
    assert inventory.media_set_start_time(SET_A) == 200


def test_media_set_name(inventory, monkeypatch):
    assert inventory.media_set_name(SET_A) == SET_A
    inventory.store(make_media_id("A0", 0, set_label=set_label(SET_A, 0, 86400)))
    monkeypatch.setenv("TZ", "UTC")
    import time
    time.tzset()
    try:
        assert inventory.media_set_name(SET_A, "%Y-%m-%d %id%") == f"1970-01-02 {SET_A}"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_update_online_status(inventory):
    in_changer = make_media_id("IN0001", 1)
    gone = make_media_id("GONE01", 2)
    lost_changer = make_media_id("LOST01", 3)
    unreachable = make_media_id("UNRE01", 4)
    vaulted = make_media_id("VAULT1", 5)
    for media in (in_changer, gone, lost_changer, unreachable, vaulted):
        inventory.store(media)
    inventory.set_location(gone.uuid, MediaLocation.online("lib1"))
    inventory.set_location(lost_changer.uuid, MediaLocation.online("removed"))
    inventory.set_location(unreachable.uuid, MediaLocation.online("lib2"))
    inventory.set_location(vaulted.uuid, MediaLocation.vault("offsite"))
    changes = inventory.update_online_status({"lib1": ["IN0001", "CLN001L1", "UNKNOWN1"], "lib2": None})
    assert changes == {
        in_changer.uuid: MediaLocation.online("lib1"),
        gone.uuid: MediaLocation.offline(),
        lost_changer.uuid: MediaLocation.offline(),
    }
    assert inventory.get(unreachable.uuid).location == MediaLocation.online("lib2")
    assert inventory.get(vaulted.uuid).location == MediaLocation.vault("offsite")
    # A vaulted tape that shows up in a changer is back online.
    inventory.update_online_status({"lib1": ["VAULT1"], "lib2": None})
    assert inventory.get(vaulted.uuid).location == MediaLocation.online("lib1")
    assert inventory.get(in_changer.uuid).location == MediaLocation.offline()


def test_update_online_status_leaves_duplicate_label_texts_alone(inventory, caplog):
    first = make_media_id("DUP001", 1)
    second = make_media_id("DUP001", 2)
    inventory.store(first)
    inventory.store(second)
    inventory.set_location(first.uuid, MediaLocation.online("lib1"))
    with caplog.at_level(logging.WARNING):
        assert inventory.update_online_status({"lib1": ["DUP001"]}) == {}
    assert "2 media carry that label text" in caplog.text
    assert inventory.get(first.uuid).location == MediaLocation.online("lib1")
    assert inventory.get(second.uuid).location is None


def test_location_strings():
    assert str(MediaLocation.parse("online-lib-1")) == "online-lib-1"
    assert MediaLocation.parse("online-lib-1").name == "lib-1"
    assert MediaLocation.parse("vault-offsite").kind is LocationKind.VAULT
    for bad in ("online-", "vault-x", "nowhere", "vault-" + "v" * 33):
        with pytest.raises(ValueError, match="invalid"):
            MediaLocation.parse(bad)


#: As PBS writes it: through a serde_json Value, so every object's keys are sorted.
PBS_INVENTORY = """[
  {
    "bytes_used": 123456789,
    "id": {
      "label": {
        "ctime": 1700000000,
        "label_text": "TAPE01L8",
        "pool": "daily",
        "uuid": "0c6e2c8e-8c4b-4b0e-9b8a-2f6c1b6c2a01"
      },
      "media_set_label": {
        "ctime": 1700000100,
        "encryption_key_fingerprint": "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89",
        "pool": "daily",
        "seq_nr": 0,
        "uuid": "5d3a8c3e-1f1e-4c4e-8d2c-7b4a7d1e9f10"
      }
    },
    "location": "online-lib0",
    "status": "full"
  },
  {
    "id": {
      "label": {
        "ctime": 1700000001,
        "label_text": "TAPE02L8",
        "uuid": "7a0e2c8e-8c4b-4b0e-9b8a-2f6c1b6c2a02"
      }
    }
  }
]"""
#: The same in struct field order, as a hand-edited or older file may have it.
STRUCT_ORDER_INVENTORY = """[
  {
    "id": {
      "label": {
        "uuid": "0c6e2c8e-8c4b-4b0e-9b8a-2f6c1b6c2a01",
        "label_text": "TAPE01L8",
        "ctime": 1700000000,
        "pool": "daily"
      },
      "media_set_label": {
        "pool": "daily",
        "uuid": "5d3a8c3e-1f1e-4c4e-8d2c-7b4a7d1e9f10",
        "seq_nr": 0,
        "ctime": 1700000100,
        "encryption_key_fingerprint": "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89"
      }
    },
    "location": "online-lib0",
    "status": "full",
    "bytes_used": 123456789
  },
  {
    "id": {
      "label": {
        "uuid": "7a0e2c8e-8c4b-4b0e-9b8a-2f6c1b6c2a02",
        "label_text": "TAPE02L8",
        "ctime": 1700000001
      }
    }
  }
]"""


def test_pbs_inventory_json_round_trips_byte_for_byte(inventory):
    assert inventory.import_pbs_json(PBS_INVENTORY) == 2
    assert inventory.export_pbs_json() == PBS_INVENTORY
    first = inventory.find_media_by_label_text("TAPE01L8")
    assert first.status is MediaStatus.FULL
    assert first.location == MediaLocation.online("lib0")
    assert first.id.media_set_label.encryption_key_fingerprint.startswith("ab:cd")
    second = inventory.find_media_by_label_text("TAPE02L8")
    assert (second.id.label.pool, second.id.media_set_label, second.location) == (None, None, None)


def test_struct_order_imports_and_exports_key_sorted(inventory):
    assert inventory.import_pbs_json(STRUCT_ORDER_INVENTORY) == 2
    assert inventory.export_pbs_json() == PBS_INVENTORY


def test_export_sorts_by_uuid_and_omits_absent_keys(inventory):
    inventory.store(make_media_id("B", 2, uuid="bbbbbbbb-0000-4000-8000-000000000000"))
    inventory.store(make_media_id("A", 1, uuid="aaaaaaaa-0000-4000-8000-000000000000"))
    data = json.loads(inventory.export_pbs_json())
    assert [entry["id"]["label"]["label_text"] for entry in data] == ["A", "B"]
    assert data[0] == {"id": {"label": {"uuid": "aaaaaaaa-0000-4000-8000-000000000000", "label_text": "A", "ctime": 1}}}
    assert not inventory.export_pbs_json().endswith("\n")


def test_import_pbs_file_missing_is_empty(inventory, tmp_path):
    assert inventory.import_pbs_file(tmp_path / "nope" / "inventory.json") == 0
    path = tmp_path / "inventory.json"
    path.write_text(PBS_INVENTORY)
    assert inventory.import_pbs_file(path) == 2


@pytest.mark.parametrize("document, message", [
    ("{", "not valid JSON"),
    ("{}", "expected a JSON array"),
    ('[{"id": {}}]', "entry 0: id: missing 'label'"),
    ('[{"id": {"label": {"uuid": "x", "label_text": "T", "ctime": 1}}}]', "entry 0: invalid UUID 'x'"),
    ('[{"id": {"label": {"uuid": "aaaaaaaa-0000-4000-8000-000000000000", "label_text": "T", "ctime": "1"}}}]',
     "entry 0: id.label: 'ctime' has the wrong type (str)"),
    ('[{"id": {"label": {"uuid": "aaaaaaaa-0000-4000-8000-000000000000", "label_text": "T", "ctime": 1}},'
     ' "location": "moon"}]', "entry 0: invalid media location 'moon'"),
    ('[{"id": {"label": {"uuid": "aaaaaaaa-0000-4000-8000-000000000000", "label_text": "T", "ctime": 1}},'
     ' "status": "shiny"}]', "entry 0: 'shiny' is not a valid MediaStatus"),
])
def test_import_rejects_bad_documents_and_changes_nothing(inventory, document, message):
    inventory.store(make_media_id("KEEP", 1))
    with pytest.raises(InventoryError) as info:
        inventory.import_pbs_json(document, "x/inventory.json")
    assert message in str(info.value)
    assert str(info.value).startswith("x/inventory.json")
    assert [e.id.label_text for e in inventory.list_media()] == ["KEEP"]


def test_two_connections_see_each_others_changes(inventory):
    media = make_media_id("TAPE01", 1)
    with Inventory.open() as other:
        other.store(media)
        assert inventory.get(media.uuid).id == media
        inventory.set_status(media.uuid, MediaStatus.RETIRED)
        assert other.get(media.uuid).status is MediaStatus.RETIRED


def test_store_label_round_trip_with_set_label_and_fingerprint(inventory):
    media = MediaId(MediaLabel(new_uuid(), "T", 5, "p1"), set_label(SET_A, 3, 6, fingerprint="aa:" * 31 + "aa"))
    inventory.store(media)
    assert inventory.get(media.uuid).id == media


def test_inventory_file_is_not_world_readable(inventory):
    assert inventory.db_path.stat().st_mode & 0o777 == 0o640
    assert inventory.status_dir.stat().st_mode & 0o007 == 0


def test_members_in_several_pools_are_an_error(inventory):
    inventory.store(make_media_id("A0", 1, set_label=set_label(SET_A, 0, 1, pool="p1")))
    inventory.store(make_media_id("A1", 2, set_label=set_label(SET_A, 1, 2, pool="p2")))
    with pytest.raises(InventoryError, match="has members in several pools \\(p1, p2\\)"):
        inventory.lookup_media_set_pool(SET_A)


def test_inventory_can_be_used_from_another_thread(inventory):
    media = make_media_id("THRD01", 1)
    worker = threading.Thread(target=inventory.store, args=(media,))
    worker.start()
    worker.join()
    assert inventory.get(media.uuid).id == media


def test_list_media_sets_oldest_first_per_pool(inventory):
    set_c = new_uuid()
    a0 = make_media_id("A0", 1, set_label=set_label(SET_A, 0, 300))
    a1 = make_media_id("A1", 1, set_label=set_label(SET_A, 1, 400))
    b1 = make_media_id("B1", 1, set_label=set_label(SET_B, 1, 200))  # member 0 unknown
    c0 = make_media_id("C0", 1, set_label=set_label(set_c, 0, 100, pool="p2"))
    for media in (a0, a1, b1, c0, make_media_id("FREE", 1), make_media_id("Z", 1, set_label=set_label(ZERO_UUID, 0, 9))):
        inventory.store(media)
    sets = inventory.list_media_sets()
    assert [(s.uuid, s.pool, s.ctime) for s in sets] == [(set_c, "p2", 100), (SET_B, "p1", 200), (SET_A, "p1", 300)]
    assert sets[2].members == [a0.uuid, a1.uuid]
    assert sets[1].members == [None, b1.uuid]
    assert [s.uuid for s in inventory.list_media_sets("p1")] == [SET_B, SET_A]


def test_destroy_media_refuses_tapes_with_data_unless_forced(inventory):
    member = make_media_id("MEMB", 1, set_label=set_label(SET_A, 0, 1))
    assigned = make_media_id("ASSG", 1, set_label=set_label(ZERO_UUID, 0, 1))
    for media in (member, assigned):
        inventory.store(media)
    with pytest.raises(InventoryError, match=f"media MEMB \\({member.uuid}\\) contains data of media set {SET_A}"):
        inventory.destroy_media(member.uuid)
    assert inventory.destroy_media(assigned.uuid).id == assigned
    assert inventory.destroy_media(member.uuid, force=True).id == member
    assert inventory.list_media() == []


def test_a_version_1_inventory_gains_vault_records_and_keeps_its_tapes(tmp_path):
    media = make_media_id("TAPE01L8", 1000, pool="p1")
    with Inventory(tmp_path / "inventory.db") as current:
        current.store(media)
    db = sqlite3.connect(tmp_path / "inventory.db")  # as tapefs with schema version 1 left it
    db.execute("DROP TABLE vault_record")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Inventory(tmp_path / "inventory.db") as upgraded:
        assert upgraded.get(media.uuid).id == media
        upgraded.record_vault_entry(media.uuid, MediaLocation.vault("offsite"), "box 3", 2000)
        upgraded.store(media)  # rereading the labels keeps the record
        assert upgraded.vault_records() == {media.uuid: ("offsite", "box 3", 2000)}
        assert upgraded.get(media.uuid).location == MediaLocation.vault("offsite")
        upgraded.remove_media(media.uuid)
        assert upgraded.vault_records() == {}
