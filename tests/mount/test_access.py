"""The server's own permission check: the POSIX rules the kernel applies with default_permissions."""
from __future__ import annotations

import os

from tapefs.mount.access import READ, SEARCH, caller_groups, permits

OWNER, GROUP, USER, OTHER_GROUP = 1000, 1000, 2000, 3000


def no_groups_asked():
    raise AssertionError("groups were not needed for this answer")


def test_owner_bits_decide_for_the_owner_even_when_others_may_more():
    assert permits(0o400, OWNER, GROUP, OWNER, no_groups_asked, READ)
    assert not permits(0o044, OWNER, GROUP, OWNER, no_groups_asked, READ)
    assert not permits(0o600, OWNER, GROUP, OWNER, no_groups_asked, READ | SEARCH)


def test_root_reads_and_searches_everything():
    assert permits(0o000, OWNER, GROUP, 0, no_groups_asked, READ | SEARCH)


def test_group_bits_apply_to_members_of_the_group_supplementary_ones_too():
    assert permits(0o640, OWNER, GROUP, USER, lambda: {OTHER_GROUP, GROUP}, READ)
    assert not permits(0o640, OWNER, GROUP, USER, lambda: {OTHER_GROUP}, READ)
    # A group narrower than the others: its members are refused.
    assert not permits(0o604, OWNER, GROUP, USER, lambda: {GROUP}, READ)
    assert permits(0o604, OWNER, GROUP, USER, lambda: {OTHER_GROUP}, READ)


def test_other_bits_decide_without_asking_for_groups_when_group_agrees():
    assert permits(0o444, OWNER, GROUP, USER, no_groups_asked, READ)
    assert not permits(0o400, OWNER, GROUP, USER, no_groups_asked, READ)
    assert not permits(0o554, OWNER, GROUP, USER, lambda: {OTHER_GROUP}, READ | SEARCH)
    assert permits(0o555, OWNER, GROUP, USER, no_groups_asked, READ | SEARCH)


def test_caller_groups_come_from_proc_and_a_vanished_caller_keeps_its_primary_group():
    assert caller_groups(os.getpid(), 12345) == {12345, *os.getgroups()}
    assert caller_groups(0, 12345) == {12345}
