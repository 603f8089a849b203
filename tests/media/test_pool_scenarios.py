"""The scenarios PBS's own media-pool tests check, on tapes that are offline (no
location stored) and a standalone drive unless a changer is named, with times near the epoch."""
import pytest

from tapefs.config.calendar_event import CalendarEvent
from tapefs.media.errors import MediaSetError, NoWritableMediaError
from tapefs.media.media_id import MediaStatus, new_uuid
from tapefs.media.policy import AlwaysCreate, ContinueCurrent, CreateAt, KeepForever, ProtectFor
from tapefs.media.pool import MediaPool
from tests.helpers.inventory_media import add


@pytest.fixture
def open_pool(inventory):
    pools = []

    def make(allocation=AlwaysCreate(), retention=KeepForever(), changer=None):
        pool = MediaPool("p1", inventory, changer=changer, allocation=allocation, retention=retention)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def free_tape(inventory, label_text, ctime):
    return add(inventory, label_text, ctime, pool="p1", location=None)


def used_tape(inventory, label_text, set_uuid, seq_nr, set_ctime, pool="p1"):
    return add(inventory, label_text, 0, set_uuid=set_uuid, seq_nr=seq_nr, set_ctime=set_ctime, pool=pool,
               location=None)


# -- allocation ---------------------------------------------------------------------------------

def test_alloc_from_a_pool_without_media_fails(open_pool):
    pool = open_pool(allocation=ContinueCurrent())
    pool.start_write_session(10)
    with pytest.raises(NoWritableMediaError):
        pool.alloc_writable_media(10)


def test_alloc_one_free_tape_until_it_is_full(inventory, open_pool):
    tape1 = free_tape(inventory, "tape1", 0)
    pool = open_pool(allocation=ContinueCurrent())
    pool.start_write_session(10)
    assert pool.alloc_writable_media(10) == tape1.uuid
    assert pool.alloc_writable_media(10) == tape1.uuid
    inventory.set_status(tape1.uuid, MediaStatus.FULL)
    with pytest.raises(NoWritableMediaError):
        pool.alloc_writable_media(10)


def test_alloc_two_free_tapes_with_the_same_label_text_in_turn(inventory, open_pool):
    tape1 = free_tape(inventory, "tape1", 0)
    tape2 = free_tape(inventory, "tape1", 1)
    pool = open_pool(allocation=ContinueCurrent())
    pool.start_write_session(10)
    assert pool.alloc_writable_media(10) == tape1.uuid
    assert pool.alloc_writable_media(11) == tape1.uuid
    inventory.set_status(tape1.uuid, MediaStatus.FULL)
    assert pool.alloc_writable_media(12) == tape2.uuid
    inventory.set_status(tape2.uuid, MediaStatus.FULL)
    with pytest.raises(NoWritableMediaError):
        pool.alloc_writable_media(13)


def test_always_with_12s_protection_reuses_the_tape_12s_after_its_set_started(inventory, open_pool):
    tape1 = free_tape(inventory, "tape1", 0)
    pool = open_pool(allocation=AlwaysCreate(), retention=ProtectFor(12, "12s"))
    pool.start_write_session(10)
    assert pool.alloc_writable_media(10) == tape1.uuid
    assert pool.alloc_writable_media(13) == tape1.uuid
    inventory.set_status(tape1.uuid, MediaStatus.FULL)
    # Still the current set: not expired, whatever the time.
    with pytest.raises(NoWritableMediaError):
        pool.alloc_writable_media(15)
    pool.start_write_session(20)
    for now in (20, 21):
        with pytest.raises(NoWritableMediaError):
            pool.alloc_writable_media(now)
    assert pool.alloc_writable_media(22) == tape1.uuid


# -- computed status and expiry ------------------------------------------------------------------

def test_computed_status_of_free_intermediate_and_last_tapes(inventory, open_pool):
    tape1 = free_tape(inventory, "tape1", 0)
    tape2 = used_tape(inventory, "tape2", new_uuid(), 0, 10)
    tape3 = used_tape(inventory, "tape3", new_uuid(), 0, 20)
    current = new_uuid()
    tape4 = used_tape(inventory, "tape4", current, 0, 30)
    tape5 = used_tape(inventory, "tape5", current, 1, 35)
    pool = open_pool()
    statuses = [pool.lookup_media(t.uuid).status for t in (tape1, tape2, tape3, tape4, tape5)]
    assert statuses == [MediaStatus.WRITABLE, MediaStatus.FULL, MediaStatus.FULL, MediaStatus.FULL,
                        MediaStatus.WRITABLE]


def test_expiry_with_calendar_allocation_and_protection(inventory, open_pool):
    tape0 = used_tape(inventory, "tape0", new_uuid(), 0, 0)
    tape1 = used_tape(inventory, "tape1", new_uuid(), 0, 60)
    tape2 = used_tape(inventory, "tape2", new_uuid(), 0, 120)
    pool = open_pool(allocation=CreateAt(CalendarEvent.parse("*:0/2")), retention=ProtectFor(120, "120 seconds"))
    assert [pool.lookup_media(t.uuid).status for t in (tape0, tape1, tape2)] == [
        MediaStatus.FULL, MediaStatus.FULL, MediaStatus.WRITABLE]
    media0 = pool.lookup_media(tape0.uuid)
    assert [pool.media_is_expired(media0, now) for now in (0, 60, 120, 179, 180)] == [False] * 4 + [True]
    media1 = pool.lookup_media(tape1.uuid)
    assert [pool.media_is_expired(media1, now) for now in (0, 60, 120, 180, 190, 239, 240)] == [False] * 6 + [True]
    assert not pool.media_is_expired(pool.lookup_media(tape2.uuid), 10**9)


# -- current set usable --------------------------------------------------------------------------

def test_usable_pool_without_media(open_pool):
    assert open_pool().current_set_usable() is False


def test_usable_pool_with_only_a_free_tape(inventory, open_pool):
    free_tape(inventory, "tape1", 0)
    assert open_pool().current_set_usable() is False


def test_usable_offline_tape_with_and_without_changer(inventory, open_pool):
    used_tape(inventory, "tape1", new_uuid(), 0, 0)
    with_changer = open_pool(changer="changer1")
    assert with_changer.current_set_usable() is False
    with_changer.close()
    assert open_pool().current_set_usable() is True


def test_usable_two_tape_set(inventory, open_pool):
    set_uuid = new_uuid()
    used_tape(inventory, "tape1", set_uuid, 0, 0)
    used_tape(inventory, "tape2", set_uuid, 1, 1)
    assert open_pool().current_set_usable() is True


def test_usable_incomplete_set_is_an_error(inventory, open_pool):
    used_tape(inventory, "tape2", new_uuid(), 1, 1)
    with pytest.raises(MediaSetError, match="incomplete"):
        open_pool().current_set_usable()


def test_usable_set_with_a_damaged_tape_is_an_error(inventory, open_pool):
    set_uuid = new_uuid()
    tape1 = used_tape(inventory, "tape1", set_uuid, 0, 0)
    inventory.set_status(tape1.uuid, MediaStatus.DAMAGED)
    used_tape(inventory, "tape2", set_uuid, 1, 1)
    with pytest.raises(MediaSetError, match="wrong media status damaged"):
        open_pool().current_set_usable()


# -- latest media set ----------------------------------------------------------------------------

def test_latest_media_set_by_newest_member_with_incomplete_sets(inventory):
    sets = {}
    for pool, label, seq_nr, ctime in (("p1", "p1tape1", 0, 10), ("p1", "p1tape2", 0, 20), ("p1", "p1tape3", 0, 30),
                                       ("p2", "p2tape1", 0, 10), ("p2", "p2tape2", 0, 10),
                                       ("p3", "p3tape1", 5, 50), ("p3", "p3tape2", 1, 10), ("p3", "p3tape3", 0, 20)):
        sets[label] = new_uuid()
        used_tape(inventory, label, sets[label], seq_nr, ctime, pool=pool)
    assert inventory.latest_media_set("p1") == sets["p1tape3"]
    assert inventory.latest_media_set("p2") is None
    assert inventory.latest_media_set("p3") == sets["p3tape1"]
    assert inventory.compute_media_set_members(sets["p3tape1"])[:5] == [None] * 5
