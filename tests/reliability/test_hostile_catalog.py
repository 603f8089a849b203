"""R5 for the file catalog the mount shows: a hostile archive is listed as damaged with the reason
(and a warning says so) instead of giving the mount two entries of one name or names that climb."""
from __future__ import annotations

import logging

import pytest

from tapefs.catalog.file_catalog import FileCatalog
from tapefs.catalog.file_catalog_builder import record_datastore_snapshot
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupSnapshot
from tests.helpers import reliability_fuzz_archives as hostile
from tests.helpers.synthetic_snapshots import make_snapshot

SNAPSHOT = BackupSnapshot.parse("host/hostile/2024-01-01T00:00:00Z")


def listed(tmp_path, archive: bytes):
    datastore = Datastore.create(tmp_path / "store", prefix_dirs=False)
    make_snapshot(datastore, SNAPSHOT, pieces=[archive])
    catalog = FileCatalog.open(tmp_path / "state")
    assert record_datastore_snapshot(catalog, datastore, SNAPSHOT, str(SNAPSHOT))
    [archive_row] = catalog.archives(catalog.snapshot_id(datastore.name, str(SNAPSHOT)))
    return catalog, archive_row


@pytest.mark.parametrize("archive, reason", [
    (hostile.symlink_then_directory(b"/tmp"), "damaged: a second entry named b'a'"),
    (hostile.named(b".."), "not a single path component"),
    (hostile.named(b"a/b"), "not a single path component"),
    (hostile.huge_file(2**62), "runs past the end"),
], ids=["same-name-twice", "dot-dot", "slash", "huge-size"])
def test_a_hostile_archive_is_listed_as_damaged_and_says_why(tmp_path, caplog, archive, reason):
    with caplog.at_level(logging.WARNING):
        catalog, row = listed(tmp_path, archive)
    assert row.root_entry is None and reason in row.error
    assert row.error in caplog.text
    assert catalog.entry_count() == 0


def test_links_out_of_the_tree_are_listed_as_links(tmp_path):
    catalog, row = listed(tmp_path, hostile.absolute_and_climbing_symlinks())
    assert row.error is None
    children = {child.name: child for child in catalog.children(row.root_entry)}
    assert children[b"abs"].target == b"/etc/passwd"
    assert children[b"up"].target == b"../../../../../../../../tmp"
