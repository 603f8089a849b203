import time

from tapefs.media.media_id import MediaLocation, MediaStatus, new_uuid
from tapefs.media.media_list import list_media
from tapefs.media.tape_config import MediaPoolConfig
from tests.helpers.inventory_media import add

T0 = 1_700_000_000
DAY = 86400
POOLS = {"p1": MediaPoolConfig("p1", allocation="continue", retention="overwrite", template="set-%id%")}


def test_media_list_shows_what_a_job_would_see(inventory):
    old_set, current_set = new_uuid(), new_uuid()
    old = add(inventory, "OLD000", T0, pool="p1", set_uuid=old_set, location=MediaLocation.vault("safe"))
    current = add(inventory, "CUR000", T0, pool="p1", set_uuid=current_set, set_ctime=T0 + DAY, location=None)
    free = add(inventory, "FREE00", T0, pool="p1")
    unassigned = add(inventory, "UNAS00", T0)
    damaged_unassigned = add(inventory, "UDMG00", T0, status=MediaStatus.DAMAGED)
    orphan = add(inventory, "ORPH00", T0, pool="gone", set_uuid=new_uuid())
    (inventory.status_dir / f"{current.uuid}.log").write_bytes(b"")

    rows = {row.label_text: row for row in list_media(inventory, POOLS, T0 + DAY)}
    assert set(rows) == {"OLD000", "CUR000", "FREE00", "UNAS00", "UDMG00", "ORPH00"}
    assert (rows["OLD000"].status, rows["OLD000"].expired, rows["OLD000"].catalog) == (MediaStatus.FULL, True, False)
    assert rows["OLD000"].location == MediaLocation.vault("safe")
    # Offline, but counted as reachable: still the writable end of the current set.
    assert (rows["CUR000"].status, rows["CUR000"].expired, rows["CUR000"].catalog) == (
        MediaStatus.WRITABLE, False, True)
    assert rows["CUR000"].media_set_name == f"set-{current_set}"
    assert (rows["CUR000"].seq_nr, rows["CUR000"].media_set_ctime) == (0, T0 + DAY)
    assert (rows["FREE00"].status, rows["FREE00"].media_set_uuid, rows["FREE00"].catalog) == (
        MediaStatus.WRITABLE, None, True)
    assert (rows["UNAS00"].pool, rows["UNAS00"].status) == (None, MediaStatus.WRITABLE)
    assert rows["UDMG00"].status is MediaStatus.DAMAGED
    assert (rows["ORPH00"].pool, rows["ORPH00"].status) == ("gone", MediaStatus.UNKNOWN)
    # An unconfigured pool has no template: the set is named by PBS's default, %c of its start.
    assert rows["ORPH00"].media_set_name == time.strftime("%c", time.localtime(T0))
    assert rows["ORPH00"].catalog is False
    assert {rows[name].uuid for name in rows} == {m.uuid for m in (old, current, free, unassigned,
                                                                       damaged_unassigned, orphan)}


def test_media_list_of_one_pool_and_a_set_the_job_would_close(inventory):
    vaulted_set = new_uuid()
    add(inventory, "VALT00", T0, pool="p1", set_uuid=vaulted_set, location=MediaLocation.vault("safe"))
    add(inventory, "UNAS00", T0)
    add(inventory, "OTHR00", T0, pool="p2")
    rows = list_media(inventory, POOLS, T0, pool="p1")
    # The job would start a new set (its writable last tape is in a vault), so the tape is full.
    assert [(row.label_text, row.status) for row in rows] == [("VALT00", MediaStatus.FULL)]
    # Listing takes no locks and changes nothing.
    assert inventory.latest_media_set("p1") == vaulted_set
