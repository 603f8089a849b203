"""Archive entries as nodes: each name listed once, also across readdir calls; generation numbers."""
from __future__ import annotations


from tapefs.catalog.file_catalog import EntryRow
from tapefs.mount.tree import ENTRY_BIT, Node, first_of_each_name


def row(entry_id: int, name: bytes) -> EntryRow:
    return EntryRow(entry_id, 1, 1, name, "file", 0o100644, 0, 0, 0, 0, None, None, None, None, 1, [])


def test_two_entries_of_one_name_are_listed_once():
    rows = [row(2, b"a"), row(3, b"dup"), row(4, b"dup"), row(5, b"z")]
    assert [r.id for r in first_of_each_name(rows)] == [2, 3, 5]


def test_a_listing_resumed_after_a_name_skips_its_twin():
    assert [r.id for r in first_of_each_name([row(4, b"dup"), row(5, b"z")], previous=b"dup")] == [5]


def entry_node(entry_row: EntryRow) -> Node:
    return Node(ENTRY_BIT | 1 << 40 | entry_row.id, entry_row.name, entry_row.mode, entry=(1, entry_row))


def test_a_row_id_given_to_another_entry_gets_another_generation():
    first = entry_node(row(7, b"a"))
    assert first.generation == entry_node(row(7, b"a")).generation != 0
    # after a catalog rebuild, SQLite may hand row id 7 to another entry: same inode, new generation
    for other in (row(7, b"b"), row(7, b"a")._replace(archive_id=2),
                  row(7, b"a")._replace(size=10), row(7, b"a")._replace(mtime_ns=1)):
        assert entry_node(other).inode == first.inode and entry_node(other).generation != first.generation
    assert Node(2, b"pools", 0o40755).generation == 0
