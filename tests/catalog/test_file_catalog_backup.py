"""A tape backup records each snapshot it writes in the file catalog beside the media catalog."""
from __future__ import annotations

import logging

import pytest

from tapefs.catalog.file_catalog import FileCatalog
from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.naming import BackupGroup, BackupNamespace
from tapefs.jobs.backup import BackupRequest, backup_datastore
from tapefs.media.tape_config import load_media_pool_config
from tests.helpers.catalog_snapshots import all_children
from tests.helpers.tape_setup import add_cartridges

pytestmark = pytest.mark.vtape


def run_backup(setup):
    with setup.inventory() as inventory, setup.catalog() as catalog, setup.session() as session:
        return backup_datastore(setup.datastore, load_media_pool_config()["daily"], BackupRequest("daily"),
                                session, inventory, catalog)


def test_tape_backup_records_the_snapshots_it_writes(tape_setup, tmp_path, caplog):
    add_cartridges(tape_setup.library, 1, "64MiB", "16MiB")
    tape_setup.label("SM0001L8")
    source = tmp_path / "src"
    (source / "etc").mkdir(parents=True)
    (source / "etc" / "hostname").write_bytes(b"tape\n")
    backup(tape_setup.datastore, BackupGroup(BackupNamespace(("site",)), "host", "web"),
           parse_sources([str(source)]), sync=False)
    tape_setup.add_snapshot("vm/100", data=b"image")
    with caplog.at_level(logging.WARNING):
        result = run_backup(tape_setup)
    assert "file catalog" not in caplog.text
    with tape_setup.catalog() as media_catalog:
        status_dir = media_catalog.db_path.parent
    with FileCatalog.open(status_dir) as catalog:
        assert sorted(row.path for row in catalog.snapshots()) == sorted(result.snapshots_written)
        [pxar_path] = [path for path in result.snapshots_written if path.startswith("ns/site/")]
        [archive] = catalog.archives(catalog.snapshot_id("store", pxar_path))
        [etc] = catalog.children(archive.root_entry)
        assert etc.name == b"etc"
        assert [(row.name, row.size) for row in all_children(catalog, etc.id)] == [(b"hostname", 5)]
        [image_path] = [path for path in result.snapshots_written if path.startswith("vm/")]
        assert catalog.archives(catalog.snapshot_id("store", image_path)) == []
