"""The media pool rules of docs/media-pools.md: computed status, location availability, current set,
starting sets, allocation and expiry. Times are fixed epoch seconds so boundaries are exact."""
import calendar
import time

import pytest

from tapefs.media.errors import InventoryError, LockTimeoutError, MediaSetError, NoWritableMediaError
from tapefs.media.locks import lock_media_set, lock_pool
from tapefs.media.media_id import (
    ZERO_UUID,
    MediaId,
    MediaLocation,
    MediaSetLabel,
    MediaStatus,
    new_uuid,
)
from tapefs.media.policy import parse_allocation_policy, parse_retention_policy
from tapefs.media.pool import NEVER, MediaPool
from tapefs.media.tape_config import MediaPoolConfig
from tests.helpers.inventory_media import LIB, add

T0 = 1_700_000_000
HOUR = 3600
DAY = 86400
FP1 = ":".join(["11"] * 32)
FP2 = ":".join(["22"] * 32)
OFFLINE = MediaLocation.offline()
OTHER_LIB = MediaLocation.online("lib1")
VAULT = MediaLocation.vault("offsite")


@pytest.fixture
def make_pool(inventory):
    pools = []

    def make(name="p1", *, changer="lib0", allocation="continue", retention="keep", encrypt=None, **options):
        pool = MediaPool(name, inventory, changer=changer, allocation=parse_allocation_policy(allocation),
                         retention=parse_retention_policy(retention), encrypt_fingerprint=encrypt, **options)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def set_label_of(inventory, media) -> MediaSetLabel:
    return inventory.get(media.uuid).id.media_set_label


# -- computed media status ----------------------------------------------------------------------

def test_computed_status(inventory, make_pool):
    current = new_uuid()
    old = new_uuid()
    free = add(inventory, "FREE01", T0, pool="p1")
    unassigned = add(inventory, "UNAS01", T0)
    stored_full_free = add(inventory, "FULL01", T0, pool="p1", status=MediaStatus.FULL)
    damaged = add(inventory, "DAMG01", T0, pool="p1", status=MediaStatus.DAMAGED)
    retired = add(inventory, "RETI01", T0, set_uuid=current, seq_nr=0, pool="p1", status=MediaStatus.RETIRED)
    zero = add(inventory, "ZERO01", T0, set_uuid=ZERO_UUID, pool="p1")
    other_pool = add(inventory, "OTHR01", T0, set_uuid=new_uuid(), pool="p2")
    old_member = add(inventory, "OLD001", T0, set_uuid=old, pool="p1")
    first = add(inventory, "CUR001", T0 + 1, set_uuid=current, seq_nr=1, pool="p1")
    last = add(inventory, "CUR002", T0 + 2, set_uuid=current, seq_nr=2, pool="p1")
    pool = make_pool()
    assert pool.current_set.uuid == current

    def status(media):
        entry = inventory.get(media.uuid)
        return pool.compute_media_status(entry.id, entry.status)

    assert status(free) is MediaStatus.WRITABLE
    assert status(unassigned) is MediaStatus.WRITABLE
    assert status(stored_full_free) is MediaStatus.FULL
    assert status(damaged) is MediaStatus.DAMAGED
    assert status(retired) is MediaStatus.RETIRED
    assert status(zero) is MediaStatus.WRITABLE
    assert status(other_pool) is MediaStatus.UNKNOWN
    assert status(old_member) is MediaStatus.FULL
    assert status(first) is MediaStatus.FULL
    assert status(last) is MediaStatus.WRITABLE


# -- location availability ----------------------------------------------------------------------

@pytest.mark.parametrize("location, force, changer, available", [
    (LIB, True, "lib0", True),
    (OTHER_LIB, True, "lib0", True),
    (OFFLINE, True, "lib0", True),
    (VAULT, True, "lib0", False),
    (LIB, False, "lib0", True),
    (OTHER_LIB, False, "lib0", False),
    (OFFLINE, False, "lib0", False),
    (VAULT, False, "lib0", False),
    (LIB, False, None, False),
    (OFFLINE, False, None, True),
    (VAULT, False, None, False),
    (LIB, True, None, True),
])
def test_location_availability(make_pool, location, force, changer, available):
    pool = make_pool(changer=changer, force_media_availability=force)
    assert pool.location_is_available(location) is available


# -- empty pool ---------------------------------------------------------------------------------

def test_empty_pool(inventory, make_pool):
    pool = make_pool()
    assert pool.current_set.members == []
    assert pool.current_set_usable() is False
    assert pool.start_write_session(T0) is None
    with pytest.raises(NoWritableMediaError, match="alloc writable media in pool 'p1' failed: no usable media found"):
        pool.alloc_writable_media(T0)
    with pytest.raises(NoWritableMediaError):
        pool.guess_next_writable_media(T0)
    assert inventory.list_media() == []


# -- allocation order ---------------------------------------------------------------------------

def test_allocates_oldest_free_tape_then_label_text_and_fills_the_set(inventory, make_pool):
    newer = add(inventory, "AAA001", T0 + 10, pool="p1")
    second = add(inventory, "BBB001", T0, pool="p1")
    first = add(inventory, "AAA002", T0, pool="p1")
    added = []
    pool = make_pool(encrypt=FP1, on_media_added=added.append)
    assert pool.start_write_session(T0 + 100) is None
    assert pool.guess_next_writable_media(T0 + 100) == first.uuid
    assert pool.alloc_writable_media(T0 + 100) == first.uuid
    assert set_label_of(inventory, first) == MediaSetLabel("p1", pool.current_set.uuid, 0, T0 + 100, FP1)
    assert [media.uuid for media in added] == [first.uuid]
    assert added[0].media_set_label.seq_nr == 0
    # While the tape is writable, the job keeps writing it.
    assert pool.alloc_writable_media(T0 + 200) == first.uuid
    inventory.set_status(first.uuid, MediaStatus.FULL)
    assert pool.alloc_writable_media(T0 + 300) == second.uuid
    assert set_label_of(inventory, second).seq_nr == 1
    inventory.set_status(second.uuid, MediaStatus.FULL)
    assert pool.alloc_writable_media(T0 + 400) == newer.uuid
    assert inventory.compute_media_set_members(pool.current_set.uuid) == [first.uuid, second.uuid, newer.uuid]
    assert pool.current_set.members == [first.uuid, second.uuid, newer.uuid]


def test_a_new_pool_object_continues_the_latest_set(inventory, make_pool):
    tape1 = add(inventory, "TAPE01", T0, pool="p1")
    add(inventory, "TAPE02", T0, pool="p1")
    first_job = make_pool()
    assert first_job.alloc_writable_media(T0 + 1) == tape1.uuid
    set_uuid = first_job.current_set.uuid
    first_job.close()
    second_job = make_pool()
    assert second_job.current_set.uuid == set_uuid
    assert second_job.current_set_usable() is True
    assert second_job.start_write_session(T0 + 2) is None
    assert second_job.alloc_writable_media(T0 + 2) == tape1.uuid


def test_two_media_with_the_same_label_text(inventory, make_pool):
    older = add(inventory, "SAME01", T0, pool="p1")
    younger = add(inventory, "SAME01", T0 + 5, pool="p1")
    pool = make_pool()
    assert pool.alloc_writable_media(T0 + 10) == older.uuid
    inventory.set_status(older.uuid, MediaStatus.FULL)
    assert pool.alloc_writable_media(T0 + 20) == younger.uuid
    assert [set_label_of(inventory, m).seq_nr for m in (older, younger)] == [0, 1]
    assert pool.current_set.members == [older.uuid, younger.uuid]
    assert pool.current_set_usable() is True


def test_free_pool_tapes_before_unassigned_ones_and_unassigned_join_the_pool(inventory, make_pool):
    unassigned = add(inventory, "UNAS01", T0 - 100)
    in_pool = add(inventory, "POOL01", T0, pool="p1")
    pool = make_pool()
    assert pool.alloc_writable_media(T0 + 1) == in_pool.uuid
    inventory.set_status(in_pool.uuid, MediaStatus.FULL)
    assert pool.alloc_writable_media(T0 + 2) == unassigned.uuid
    entry = inventory.get(unassigned.uuid)
    assert entry.id.pool == "p1" and entry.id.label.pool is None
    assert entry.id.media_set_label.seq_nr == 1


def test_zero_uuid_set_label_counts_as_free_pool_tape(inventory, make_pool):
    zero = add(inventory, "ZERO01", T0, pool=None, set_uuid=ZERO_UUID, set_pool="p1")
    pool = make_pool()
    assert pool.alloc_writable_media(T0 + 1) == zero.uuid
    assert set_label_of(inventory, zero).uuid == pool.current_set.uuid


def test_media_of_other_pools_are_never_allocated(inventory, make_pool):
    add(inventory, "P2FREE", T0, pool="p2")
    add(inventory, "P2FULL", T0, pool="p2", set_uuid=new_uuid(), status=MediaStatus.FULL)
    pool = make_pool(retention="overwrite")
    with pytest.raises(NoWritableMediaError):
        pool.alloc_writable_media(T0 + 10 * DAY)
    assert pool.list_media() == []


def test_damaged_retired_and_stored_full_free_tapes_are_skipped(inventory, make_pool):
    add(inventory, "DAMG01", T0, pool="p1", status=MediaStatus.DAMAGED)
    add(inventory, "RETI01", T0, pool="p1", status=MediaStatus.RETIRED)
    add(inventory, "FULL01", T0, pool="p1", status=MediaStatus.FULL)
    add(inventory, "UDMG01", T0, status=MediaStatus.DAMAGED)
    pool = make_pool(retention="overwrite")
    with pytest.raises(NoWritableMediaError):
        pool.alloc_writable_media(T0 + DAY)


# -- offline and vaulted media ------------------------------------------------------------------

def test_changer_pool_uses_only_tapes_in_its_changer(inventory, make_pool):
    add(inventory, "OFFL01", T0 - 10, pool="p1", location=OFFLINE)
    add(inventory, "NOLO01", T0 - 10, pool="p1", location=None)  # no location = offline
    add(inventory, "OTHR01", T0 - 10, pool="p1", location=OTHER_LIB)
    add(inventory, "VALT01", T0 - 10, pool="p1", location=VAULT)
    add(inventory, "UNOF01", T0 - 10, location=OFFLINE)
    here = add(inventory, "HERE01", T0, pool="p1", location=LIB)
    pool = make_pool(changer="lib0")
    assert pool.alloc_writable_media(T0 + 1) == here.uuid
    inventory.set_status(here.uuid, MediaStatus.FULL)
    with pytest.raises(NoWritableMediaError):
        pool.alloc_writable_media(T0 + 2)


def test_standalone_pool_uses_only_offline_tapes(inventory, make_pool):
    add(inventory, "LIB001", T0 - 10, pool="p1", location=LIB)
    add(inventory, "VALT01", T0 - 10, pool="p1", location=VAULT)
    offline = add(inventory, "OFFL01", T0, pool="p1", location=OFFLINE)
    pool = make_pool(changer=None)
    assert pool.alloc_writable_media(T0 + 1) == offline.uuid


def test_continue_with_last_tape_offline_adds_a_tape_to_the_same_set(inventory, make_pool):
    """A consequence of the current-set rule: an exported last tape does not start a new set."""
    set_uuid = new_uuid()
    exported = add(inventory, "EXPO01", T0, pool="p1", set_uuid=set_uuid, location=OFFLINE)
    spare = add(inventory, "SPAR01", T0, pool="p1")
    pool = make_pool()
    assert pool.current_set_usable() is False
    assert pool.start_write_session(T0 + 1) is None
    assert pool.alloc_writable_media(T0 + 1) == spare.uuid
    assert set_label_of(inventory, spare) == MediaSetLabel("p1", set_uuid, 1, T0 + 1)
    assert pool.current_set.members == [exported.uuid, spare.uuid]


def test_last_tape_in_other_changer_is_not_usable_but_no_error(inventory, make_pool):
    add(inventory, "MOVD01", T0, pool="p1", set_uuid=new_uuid(), location=OTHER_LIB)
    pool = make_pool()
    assert pool.current_set_usable() is False


def test_vaulted_writable_last_tape_starts_a_new_set(inventory, make_pool):
    old_set = new_uuid()
    add(inventory, "VALT01", T0, pool="p1", set_uuid=old_set, location=VAULT)
    spare = add(inventory, "SPAR01", T0, pool="p1")
    pool = make_pool()
    with pytest.raises(MediaSetError, match="writable media offsite in vault 'offsite'"):
        pool.current_set_usable()
    with pytest.raises(MediaSetError):
        pool.alloc_writable_media(T0 + 1)
    assert pool.start_write_session(T0 + 1) == "writable media offsite in vault 'offsite'"
    assert pool.current_set.uuid != old_set and pool.current_set.members == []
    assert pool.alloc_writable_media(T0 + 1) == spare.uuid
    assert set_label_of(inventory, spare).seq_nr == 0


def test_full_tape_in_vault_is_fine_for_the_current_set(inventory, make_pool):
    set_uuid = new_uuid()
    add(inventory, "VALT01", T0, pool="p1", set_uuid=set_uuid, seq_nr=0, location=VAULT)
    add(inventory, "HERE01", T0 + 1, pool="p1", set_uuid=set_uuid, seq_nr=1, location=LIB)
    pool = make_pool()
    assert pool.current_set_usable() is True


# -- current set errors -------------------------------------------------------------------------

@pytest.mark.parametrize("status", [MediaStatus.DAMAGED, MediaStatus.RETIRED])
def test_damaged_or_retired_member_starts_a_new_set(inventory, make_pool, status):
    set_uuid = new_uuid()
    add(inventory, "MEMB00", T0, pool="p1", set_uuid=set_uuid, seq_nr=0, status=status)
    add(inventory, "MEMB01", T0 + 1, pool="p1", set_uuid=set_uuid, seq_nr=1)
    pool = make_pool()
    reason = pool.start_write_session(T0 + 2)
    assert reason == f"unable to use media set - wrong media status {status.value}"
    assert pool.current_set.uuid != set_uuid


def test_incomplete_set_starts_a_new_set(inventory, make_pool):
    set_uuid = new_uuid()
    add(inventory, "MEMB00", T0, pool="p1", set_uuid=set_uuid, seq_nr=0)
    add(inventory, "MEMB02", T0 + 1, pool="p1", set_uuid=set_uuid, seq_nr=2)
    pool = make_pool()
    assert pool.current_set.members[1] is None
    assert pool.start_write_session(T0 + 2) == "media set is incomplete (missing media information)"


def test_member_moved_to_another_pool_starts_a_new_set(inventory, make_pool):
    set_uuid = new_uuid()
    member = add(inventory, "MEMB00", T0, pool="p1", set_uuid=set_uuid)
    pool = make_pool()
    inventory.store(MediaId(member.label, MediaSetLabel("p2", set_uuid, 0, T0)))
    assert "does not belong to pool 'p1'" in pool.start_write_session(T0 + 1)


def test_pool_encryption_key_change_starts_a_new_set(inventory, make_pool):
    set_uuid = new_uuid()
    add(inventory, "MEMB00", T0, pool="p1", set_uuid=set_uuid, fingerprint=FP1)
    same_key = make_pool(encrypt=FP1)
    assert same_key.current_set_usable() is True
    same_key.close()
    for encrypt in (FP2, None):
        pool = make_pool(encrypt=encrypt, no_media_set_locking=True)
        assert pool.start_write_session(T0 + 1) == "pool encryption key changed"


def test_members_with_different_keys_fail_on_the_first_that_differs_from_the_pool(inventory, make_pool):
    set_uuid = new_uuid()
    add(inventory, "MEMB00", T0, pool="p1", set_uuid=set_uuid, seq_nr=0, fingerprint=FP1)
    add(inventory, "MEMB01", T0 + 1, pool="p1", set_uuid=set_uuid, seq_nr=1, fingerprint=FP2)
    for encrypt in (FP1, FP2):
        pool = make_pool(encrypt=encrypt, no_media_set_locking=True)
        with pytest.raises(MediaSetError, match="pool encryption key changed"):
            pool.current_set_usable()


def test_set_media_status_full_checks_the_pool(inventory, make_pool):
    mine = add(inventory, "MINE00", T0, pool="p1")
    theirs = add(inventory, "THEI00", T0, pool="p2")
    pool = make_pool()
    pool.set_media_status_full(mine.uuid)
    assert inventory.get(mine.uuid).status is MediaStatus.FULL
    with pytest.raises(InventoryError, match="does not belong to pool 'p1' but to 'p2'"):
        pool.set_media_status_full(theirs.uuid)
    assert inventory.get(theirs.uuid).status is None


def test_latest_set_tie_means_a_fresh_set(inventory, make_pool):
    add(inventory, "SETA00", T0, pool="p1", set_uuid=new_uuid())
    add(inventory, "SETB00", T0, pool="p1", set_uuid=new_uuid())
    pool = make_pool()
    assert pool.current_set.members == []


# -- allocation policies ------------------------------------------------------------------------

def test_always_starts_a_new_set_every_session(inventory, make_pool):
    tapes = [add(inventory, f"TAPE0{i}", T0 + i, pool="p1") for i in range(2)]
    pool = make_pool(allocation="always")
    first_set = pool.current_set.uuid
    assert pool.start_write_session(T0 + 10) == "policy is AlwaysCreate"
    assert pool.current_set.uuid != first_set
    assert pool.alloc_writable_media(T0 + 10) == tapes[0].uuid
    second_set = pool.current_set.uuid
    assert pool.start_write_session(T0 + 20) == "policy is AlwaysCreate"
    assert pool.current_set.uuid != second_set
    assert pool.alloc_writable_media(T0 + 20) == tapes[1].uuid
    assert set_label_of(inventory, tapes[1]).seq_nr == 0


def test_force_starts_a_new_set(inventory, make_pool):
    tape = add(inventory, "TAPE00", T0, pool="p1")
    pool = make_pool()
    pool.alloc_writable_media(T0 + 1)
    old_set = pool.current_set.uuid
    assert pool.start_write_session(T0 + 2, force=True) == "forced"
    assert pool.current_set.uuid != old_set
    with pytest.raises(NoWritableMediaError):
        pool.alloc_writable_media(T0 + 2)
    assert set_label_of(inventory, tape).uuid == old_set


def utc(year, month, day, hour=0, minute=0, second=0) -> int:
    return calendar.timegm((year, month, day, hour, minute, second))


def test_calendar_allocation_starts_a_new_set_at_the_exact_event(inventory, make_pool):
    start = utc(2026, 11, 22, 12)
    set_uuid = new_uuid()
    add(inventory, "MEMB00", start, pool="p1", set_uuid=set_uuid)
    midnight = utc(2026, 11, 23)
    pool = make_pool(allocation="daily UTC")
    assert pool.start_write_session(midnight - 1) is None
    assert pool.current_set.uuid == set_uuid
    assert pool.start_write_session(midnight) == "policy CreateAt event triggered"
    assert pool.current_set.uuid != set_uuid


def test_calendar_allocation_uses_the_set_start_not_the_last_member(inventory, make_pool):
    set_uuid = new_uuid()
    add(inventory, "MEMB00", utc(2026, 11, 20, 12), pool="p1", set_uuid=set_uuid, seq_nr=0,
        status=MediaStatus.FULL)
    add(inventory, "MEMB01", utc(2026, 11, 22, 12), pool="p1", set_uuid=set_uuid, seq_nr=1)
    pool = make_pool(allocation="daily UTC")
    assert pool.start_write_session(utc(2026, 11, 22, 13)) == "policy CreateAt event triggered"


def test_calendar_allocation_with_empty_set_does_not_trigger(make_pool):
    pool = make_pool(allocation="*:0/15 UTC")
    assert pool.start_write_session(T0) is None


# -- retention and expiry -----------------------------------------------------------------------

def two_sets(inventory, retention_test_pool="p1"):
    """Set A (started T0, one full tape) and the later current set B (started T0 + DAY, its only
    tape full, so the job needs another tape)."""
    set_a, set_b = new_uuid(), new_uuid()
    old = add(inventory, "OLDA00", T0, pool=retention_test_pool, set_uuid=set_a, set_ctime=T0)
    add(inventory, "CURB00", T0, pool=retention_test_pool, set_uuid=set_b, set_ctime=T0 + DAY,
        status=MediaStatus.FULL)
    return old, set_a, set_b


def test_keep_never_reuses_tapes(inventory, make_pool):
    old, _, set_b = two_sets(inventory)
    pool = make_pool(retention="keep")
    assert pool.current_set.uuid == set_b
    assert pool.media_expire_time(inventory.get(old.uuid).id) == NEVER
    with pytest.raises(NoWritableMediaError):
        pool.alloc_writable_media(T0 + 1000 * DAY)


def test_overwrite_reuses_a_tape_once_the_next_set_started(inventory, make_pool):
    old, _, set_b = two_sets(inventory)
    pool = make_pool(retention="overwrite")
    assert pool.media_expire_time(inventory.get(old.uuid).id) == T0 + DAY
    with pytest.raises(NoWritableMediaError):
        pool.alloc_writable_media(T0 + DAY - 1)
    assert pool.alloc_writable_media(T0 + DAY) == old.uuid
    entry = inventory.get(old.uuid)
    assert entry.id.media_set_label == MediaSetLabel("p1", set_b, 1, T0 + DAY)
    assert entry.status is None


def test_time_span_retention_expires_at_the_exact_boundary(inventory, make_pool):
    old, _, _ = two_sets(inventory)
    inventory.set_status(old.uuid, MediaStatus.FULL)
    pool = make_pool(retention="7days")
    expire = T0 + DAY + 7 * DAY
    assert pool.media_expire_time(inventory.get(old.uuid).id) == expire
    media = pool.lookup_media(old.uuid)
    assert not pool.media_is_expired(media, expire - 1)
    assert pool.media_is_expired(media, expire)
    with pytest.raises(NoWritableMediaError):
        pool.guess_next_writable_media(expire - 1)
    assert pool.guess_next_writable_media(expire) == old.uuid
    with pytest.raises(NoWritableMediaError):
        pool.alloc_writable_media(expire - 1)
    assert pool.alloc_writable_media(expire) == old.uuid
    # The stored Full status of the reused tape is cleared.
    assert inventory.get(old.uuid).status is None


def test_continue_without_a_later_set_never_expires(inventory, make_pool):
    set_a = new_uuid()
    tape = add(inventory, "ONLY00", T0, pool="p1", set_uuid=set_a, status=MediaStatus.FULL)
    pool = make_pool(retention="overwrite")
    assert pool.media_expire_time(inventory.get(tape.uuid).id) == NEVER


def test_always_expires_from_the_set_start(inventory, make_pool):
    set_a = new_uuid()
    tape = add(inventory, "ONLY00", T0, pool="p1", set_uuid=set_a, set_ctime=T0 + 50)
    pool = make_pool(allocation="always", retention="1h")
    assert pool.media_expire_time(inventory.get(tape.uuid).id) == T0 + 50 + HOUR
    # Even with a later set, "always" counts from the set's own start.
    add(inventory, "NEXT00", T0, pool="p1", set_uuid=new_uuid(), set_ctime=T0 + 5 * HOUR)
    assert pool.media_expire_time(inventory.get(tape.uuid).id) == T0 + 50 + HOUR
    pool.start_write_session(T0 + 50 + HOUR)
    assert pool.alloc_writable_media(T0 + 50 + HOUR) == tape.uuid


def test_calendar_retention_expires_at_the_next_event_after_the_set_start(inventory, make_pool):
    start = utc(2026, 11, 22, 12)
    set_a = new_uuid()
    tape = add(inventory, "ONLY00", start, pool="p1", set_uuid=set_a, status=MediaStatus.FULL)
    pool = make_pool(allocation="daily UTC", retention="overwrite")
    assert pool.media_expire_time(inventory.get(tape.uuid).id) == utc(2026, 11, 23)
    later = add(inventory, "LATE00", start, pool="p1", set_uuid=new_uuid(), set_ctime=utc(2026, 11, 25))
    # With a later set, the later set's start counts instead of the event.
    assert pool.media_expire_time(inventory.get(tape.uuid).id) == utc(2026, 11, 25)
    inventory.remove_media(later.uuid)
    assert pool.start_write_session(utc(2026, 11, 23)) == "policy CreateAt event triggered"
    assert pool.alloc_writable_media(utc(2026, 11, 23)) == tape.uuid


def test_set_start_falls_back_to_the_tapes_own_set_ctime(inventory, make_pool):
    # Member 0 is not in the inventory: the tape's own set-label ctime is the start.
    tape = add(inventory, "SEQ100", T0, pool="p1", set_uuid=new_uuid(), seq_nr=1, set_ctime=T0 + 77)
    pool = make_pool(allocation="always", retention="overwrite", no_media_set_locking=True)
    assert pool.media_expire_time(inventory.get(tape.uuid).id) == T0 + 77


def test_damaged_and_retired_tapes_never_expire(inventory, make_pool):
    damaged, _, _ = two_sets(inventory)
    inventory.set_status(damaged.uuid, MediaStatus.DAMAGED)
    retired = add(inventory, "RETI00", T0, pool="p1", set_uuid=new_uuid(), set_ctime=T0 + 10,
                  status=MediaStatus.RETIRED)
    pool = make_pool(retention="overwrite")
    for media in (damaged, retired):
        assert not pool.media_is_expired(pool.lookup_media(media.uuid), T0 + 1000 * DAY)
    with pytest.raises(NoWritableMediaError):
        pool.alloc_writable_media(T0 + 1000 * DAY)


def test_expired_tapes_are_reused_oldest_set_label_first_then_label_text(inventory, make_pool):
    sets = [new_uuid() for _ in range(3)]
    late = add(inventory, "AAA000", T0, pool="p1", set_uuid=sets[0], set_ctime=T0 + 20)
    early_b = add(inventory, "BBB000", T0, pool="p1", set_uuid=sets[1], set_ctime=T0 + 10)
    early_a = add(inventory, "ABB000", T0, pool="p1", set_uuid=sets[1], seq_nr=1, set_ctime=T0 + 10)
    add(inventory, "CUR000", T0, pool="p1", set_uuid=sets[2], set_ctime=T0 + 30, status=MediaStatus.FULL)
    pool = make_pool(retention="overwrite")
    now = T0 + 30
    assert [m.uuid for m in pool.expired_media_candidates(now)] == [early_a.uuid, early_b.uuid, late.uuid]
    assert pool.alloc_writable_media(now) == early_a.uuid


def test_expired_tapes_of_a_set_in_use_are_skipped(inventory, make_pool):
    old, set_a, _ = two_sets(inventory)
    pool = make_pool(retention="overwrite")
    restore_lock = lock_media_set(inventory.status_dir, set_a)
    try:
        assert pool.next_expired_media(T0 + DAY) is None
        with pytest.raises(NoWritableMediaError):
            pool.alloc_writable_media(T0 + DAY)
    finally:
        restore_lock.release()
    assert pool.alloc_writable_media(T0 + DAY) == old.uuid


def test_without_set_locking_a_set_in_use_is_guessed_but_nothing_is_allocated(inventory, make_pool):
    old, set_a, _ = two_sets(inventory)
    pool = make_pool(retention="overwrite", no_media_set_locking=True)
    with lock_media_set(inventory.status_dir, set_a):
        assert pool.guess_next_writable_media(T0 + DAY) == old.uuid
        with pytest.raises(MediaSetError, match="opened without locking"):
            pool.alloc_writable_media(T0 + DAY)


def test_free_tapes_come_before_expired_ones_and_expired_before_unassigned(inventory, make_pool):
    old, _, _ = two_sets(inventory)
    unassigned = add(inventory, "UNAS00", T0 - 500)
    free = add(inventory, "FREE00", T0 + 500, pool="p1")
    pool = make_pool(retention="overwrite")
    now = T0 + 2 * DAY
    assert pool.alloc_writable_media(now) == free.uuid
    inventory.set_status(free.uuid, MediaStatus.FULL)
    assert pool.alloc_writable_media(now) == old.uuid
    inventory.set_status(old.uuid, MediaStatus.FULL)
    assert pool.alloc_writable_media(now) == unassigned.uuid


# -- locks, lists, config -----------------------------------------------------------------------

def test_pool_holds_its_current_set_lock_until_closed(inventory, make_pool):
    add(inventory, "TAPE00", T0, pool="p1")
    pool = make_pool()
    with pytest.raises(LockTimeoutError, match=pool.current_set.uuid):
        lock_media_set(inventory.status_dir, pool.current_set.uuid, timeout=0)
    pool.close()
    lock_media_set(inventory.status_dir, pool.current_set.uuid, timeout=0).release()
    with pytest.raises(MediaSetError, match="lock is not held"):
        pool.alloc_writable_media(T0)


def test_new_set_takes_over_the_lock(inventory, make_pool):
    pool = make_pool()
    old_set = pool.current_set.uuid
    pool.start_write_session(T0, force=True)
    lock_media_set(inventory.status_dir, old_set, timeout=0).release()
    with pytest.raises(LockTimeoutError):
        lock_media_set(inventory.status_dir, pool.current_set.uuid, timeout=0)


def test_list_media_reports_computed_status_and_location(inventory, make_pool):
    set_uuid = new_uuid()
    first = add(inventory, "MEMB00", T0, pool="p1", set_uuid=set_uuid, seq_nr=0, location=VAULT)
    last = add(inventory, "MEMB01", T0 + 1, pool="p1", set_uuid=set_uuid, seq_nr=1, location=None)
    free = add(inventory, "FREE00", T0, pool="p1")
    add(inventory, "OTHER0", T0, pool="p2")
    pool = make_pool()
    listed = {m.uuid: (m.status, m.location) for m in pool.list_media()}
    assert listed == {
        first.uuid: (MediaStatus.FULL, VAULT),
        last.uuid: (MediaStatus.WRITABLE, OFFLINE),
        free.uuid: (MediaStatus.WRITABLE, LIB),
    }


def test_pool_from_config(inventory):
    config = MediaPoolConfig("weekly", allocation="always", retention="2 weeks", encrypt=FP1)
    add(inventory, "TAPE00", T0, pool="weekly")
    with MediaPool.from_config(config, inventory, changer="lib0") as pool:
        assert pool.start_write_session(T0) == "policy is AlwaysCreate"
        tape = pool.alloc_writable_media(T0)
        assert set_label_of(inventory, inventory.get(tape).id).encryption_key_fingerprint == FP1
        assert pool.retention.seconds == 14 * DAY


def test_lock_waits_then_times_out_and_pool_names_with_dots_do_not_share_a_lock(inventory):
    with lock_pool(inventory.status_dir, "a.b"):
        lock_pool(inventory.status_dir, "a.c", timeout=0).release()
        started = time.monotonic()
        with pytest.raises(LockTimeoutError, match=r"\.pool-a\.b\.lck"):
            lock_pool(inventory.status_dir, "a.b", timeout=0.2)
        assert time.monotonic() - started >= 0.2
    lock_pool(inventory.status_dir, "a.b", timeout=0).release()
