"""Which copy of a snapshot `snapshots/` shows when several media sets hold it."""
from __future__ import annotations

from tapefs.mount.tree import SnapshotCopy, preferred_first


def copy(number: int, ctime: int, in_library: bool, cataloged: bool = True) -> SnapshotCopy:
    return SnapshotCopy(number, f"set-{number}", "set", "pool", "store", "vm/100/2026-01-01T00:00:00Z", ctime,
                        (f"TAPE{number}",), 1, None, number if cataloged else None, in_library)


def test_a_copy_in_the_library_goes_before_a_newer_vaulted_one():
    vaulted_newest, in_library = copy(1, 200, False), copy(2, 100, True)
    assert preferred_first([vaulted_newest, in_library]) == [in_library, vaulted_newest]


def test_among_readable_copies_the_newest_goes_first():
    old, new = copy(1, 100, True), copy(2, 200, True)
    assert preferred_first([old, new])[0] is new


def test_a_copy_the_file_catalog_knows_goes_first():
    listed, unlisted = copy(1, 100, False), copy(2, 200, True, cataloged=False)
    assert preferred_first([unlisted, listed])[0] is listed
