"""Directory listings of archive entries: each name once, also across readdir calls."""
from __future__ import annotations

from tapefs.catalog.file_catalog import EntryRow
from tapefs.mount.tree import first_of_each_name


def row(entry_id: int, name: bytes) -> EntryRow:
    return EntryRow(entry_id, 1, 1, name, "file", 0o100644, 0, 0, 0, 0, None, None, None, None, 1, [])


def test_two_entries_of_one_name_are_listed_once():
    rows = [row(2, b"a"), row(3, b"dup"), row(4, b"dup"), row(5, b"z")]
    assert [r.id for r in first_of_each_name(rows)] == [2, 3, 5]


def test_a_listing_resumed_after_a_name_skips_its_twin():
    assert [r.id for r in first_of_each_name([row(4, b"dup"), row(5, b"z")], previous=b"dup")] == [5]
