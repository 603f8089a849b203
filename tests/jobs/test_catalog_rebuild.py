"""Catalog rebuild from tape on a real vtape library: a media set over several tapes, the tape
state directory (inventory and catalogs) deleted, the catalogs restored from the catalog
archives and by scanning, then restores that match the source."""
import shutil
import time
import uuid as uuidlib
from dataclasses import replace

import pytest

from tapefs.config.paths import tape_status_dir
from tapefs.datastore.datastore import Datastore
from tapefs.jobs.catalog_rebuild import CatalogRebuildError, rebuild_catalog, restore_missing_catalogs
from tapefs.jobs.tape_scan import scan_tape
from tapefs.media.labeling import media_id_from_labels
from tapefs.media.media_id import MediaId, MediaLabel
from tapefs.media.media_list import list_media
from tapefs.media.tape_config import load_media_pool_config
from tapefs.tapeformat.catalog_archive import write_catalog_archive
from tapefs.tapeformat.tape_file import move_to_end_of_data
from tests.helpers.tape_jobs import run_backup, run_restore, snapshot_tree
from tests.helpers.tape_setup import add_cartridges

pytestmark = pytest.mark.vtape

TAPES = ("SM0001L8", "SM0002L8", "SM0003L8")


class SimulatedKill(Exception):
    pass


@pytest.fixture
def backed_up(tape_setup):
    """Three snapshots backed up over at least two tapes; the catalog as the backup left it."""
    add_cartridges(tape_setup.library, 3, "16MiB", "4MiB")
    tape_setup.label(*TAPES)
    tape_setup.add_snapshot("vm/100", 3)
    tape_setup.add_snapshot("vm/100", 1)
    tape_setup.add_snapshot("ct/200", 1, ns="site")
    result = run_backup(tape_setup)
    assert len(result.tapes) >= 2
    with tape_setup.inventory() as inventory, tape_setup.catalog() as catalog:
        members = inventory.compute_media_set_members(result.media_set)
        labels = [inventory.get(uuid).id.label_text for uuid in members]
        expected = {label: catalog.media_archives(uuid) for label, uuid in zip(labels, members)}
    tape_setup.media_set, tape_setup.labels, tape_setup.expected = result.media_set, labels, expected
    return tape_setup


def lose_state():
    shutil.rmtree(tape_status_dir())


def rebuild(setup, label_text=None, drive="drive0", **options):
    with setup.inventory() as inventory, setup.catalog() as catalog, setup.session(drive) as session:
        return rebuild_catalog(session, inventory, catalog, label_text, **options)


def archives_by_label(setup):
    with setup.inventory() as inventory, setup.catalog() as catalog:
        members = inventory.compute_media_set_members(setup.media_set)
        return {inventory.get(uuid).id.label_text: catalog.media_archives(uuid) for uuid in members}


def test_fast_rebuild_then_full_restore_matches_the_source(backed_up, tmp_path):
    setup = backed_up
    lose_state()
    results = {label: rebuild(setup, label) for label in reversed(setup.labels)}
    last = setup.labels[-1]
    assert results[last].method == "catalog-archive" and results[last].inventorized
    # The last tape starts with the catalogs of the earlier members, which the inventory did not
    # know yet when it was read; the earlier tapes themselves end in data, not in a catalog.
    for label in setup.labels[:-1]:
        assert results[label].method == "scan"
        assert "no usable catalog archive" in results[label].notes[0]
    assert archives_by_label(setup) == setup.expected
    with setup.inventory() as inventory:
        rows = list_media(inventory, load_media_pool_config(), int(time.time()))
    assert {row.label_text: (row.media_set_uuid, row.catalog) for row in rows if row.label_text in setup.labels} \
        == {label: (setup.media_set, True) for label in setup.labels}
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    restored = run_restore(setup, setup.media_set, {"store": target})
    assert len(restored.snapshots_restored) == 3
    assert snapshot_tree(target) == snapshot_tree(setup.datastore)


def test_fast_rebuild_imports_earlier_members_from_a_later_tape(backed_up):
    setup = backed_up
    lose_state()
    # Labels first (as `inventory --read-labels` does), then the fast restore: the last tape
    # carries the catalogs of all earlier members, so no other tape is loaded.
    with setup.inventory() as inventory, setup.session() as session:
        for label in setup.labels:
            device, labels = session.read_labels(label)
            inventory.store(media_id_from_labels(labels))
    with setup.inventory() as inventory, setup.catalog() as catalog, setup.session() as session:
        results = restore_missing_catalogs(session, inventory, catalog, setup.labels)
    by_label = {result.label_text: result for result in results}
    assert by_label[setup.labels[-1]].method == "catalog-archive"
    assert set(by_label[setup.labels[-1]].other_catalogs) == set(setup.labels[:-1])
    assert {by_label[label].method for label in setup.labels[:-1]} == {"present"}
    assert archives_by_label(setup) == setup.expected


def test_scan_rebuild_then_selective_and_full_restore(backed_up, tmp_path):
    setup = backed_up
    lose_state()
    events = []
    for label in setup.labels:
        result = rebuild(setup, label, scan=True, progress=events.append)
        assert result.method == "scan" and result.damaged == [] and result.resumed_at is None
    assert archives_by_label(setup) == setup.expected
    assert any(event.message == "data" and event.rate > 0 for event in events)
    # The scan recorded chunk offsets: a selective restore reads single chunks.
    with setup.catalog() as catalog:
        snapshots = [place.snapshot for place in catalog.snapshots_in_set(setup.media_set)]
    target = Datastore.create(tmp_path / "one", "one", prefix_dirs=False)
    restored = run_restore(setup, setup.media_set, {"store": target}, [f"store:{snapshots[0]}"])
    assert restored.snapshots_restored == [f"store:{snapshots[0]}"]
    source = snapshot_tree(setup.datastore)
    assert all(source[path] == data for path, data in snapshot_tree(target).items())
    full = Datastore.create(tmp_path / "full", "full", prefix_dirs=False)
    run_restore(setup, setup.media_set, {"store": full})
    assert snapshot_tree(full) == source


@pytest.mark.parametrize("kill_on", ["file-done", "data"])
def test_interrupted_scan_resumes_and_registers_everything_once(backed_up, kill_on):
    """Killed after the first registered archive (between files, or in the middle of the next
    file): run again, the scan goes on where it stopped and the catalog equals the original."""
    setup = backed_up
    lose_state()
    first = setup.labels[0]
    seen = []

    def killer(event):
        seen.append(event.message)
        if "file-done" in seen and event.message == kill_on and seen.count(kill_on) >= (1 if kill_on == "file-done"
                                                                                         else 2):
            raise SimulatedKill()
    with pytest.raises(SimulatedKill):
        rebuild(setup, first, scan=True, progress=killer)
    with setup.catalog() as catalog:
        assert 0 < len(archives_by_label_partial(setup, catalog, first)) < len(setup.expected[first])
    # Neither a plain `catalog` nor --scan throws the partial scan away: both continue it.
    resumed = rebuild(setup, first)
    assert resumed.method == "scan" and resumed.resumed_at > 2
    assert archives_by_label(setup)[first] == setup.expected[first]
    assert not (tape_status_dir() / f"{resumed.media_uuid}.scan").exists()


def archives_by_label_partial(setup, catalog, label):
    """The archives the catalog names on one tape (the set may not be complete yet)."""
    with setup.inventory() as inventory:
        uuid = inventory.find_media_by_label_text(label).uuid
    return catalog.media_archives(uuid)


def test_existing_catalog_is_kept_unless_forced(backed_up):
    setup = backed_up
    with pytest.raises(CatalogRebuildError, match=f"tape {setup.labels[-1]} already has a catalog"):
        rebuild(setup, setup.labels[-1])
    forced = rebuild(setup, setup.labels[-1], force=True, scan=True)
    assert forced.method == "scan"
    assert archives_by_label(setup) == setup.expected


def test_unlabelled_tape_is_refused(tape_setup):
    add_cartridges(tape_setup.library, 1, "16MiB", "4MiB", prefix="UN")
    with tape_setup.session() as session:
        session.load("UN0001L8")
    with pytest.raises(CatalogRebuildError, match="the tape in drive drive0 is not labelled"):
        rebuild(tape_setup)


def test_tape_of_another_media_set_than_the_inventory_says_changes_nothing(backed_up):
    setup = backed_up
    label = setup.labels[0]
    with setup.inventory() as inventory:
        entry = inventory.find_media_by_label_text(label)
        wrong = replace(entry.id.media_set_label, uuid=str(uuidlib.uuid4()))
        inventory.store(replace(entry.id, media_set_label=wrong))
    with pytest.raises(CatalogRebuildError, match=f"tape {label} is member 0 of media set {setup.media_set}, "
                                                   f"the inventory says member 0 of media set {wrong.uuid}"):
        rebuild(setup, label)
    with setup.inventory() as inventory:
        assert inventory.find_media_by_label_text(label).id.media_set_label.uuid == wrong.uuid


def test_catalog_archive_that_disagrees_is_not_imported(backed_up):
    """A catalog archive at the end of the tape whose content describes another tape: reported,
    nothing of it imported; the genuine copy before it is used, and without any the scan."""
    setup = backed_up
    last, first = setup.labels[-1], setup.labels[0]
    with setup.inventory() as inventory, setup.catalog() as catalog, setup.session() as session:
        last_uuid = inventory.find_media_by_label_text(last).uuid
        first_log = catalog.log_bytes(inventory.find_media_by_label_text(first).uuid)
        device, labels = session.read_labels(last)
        move_to_end_of_data(device)
        write_catalog_archive(device, uuidlib.UUID(last_uuid), labels.media_set.uuid, labels.media_set.seq_nr,
                              first_log)
        device.sync()
    lose_state()
    result = rebuild(setup, last)
    bad = [note for note in result.notes if "disagrees with its header: it describes media" in note]
    assert len(bad) == 1 and result.method == "catalog-archive"
    assert f"catalog archive at file {result.catalog_file + 1} " in bad[0]
    with setup.catalog() as catalog:
        assert archives_by_label_partial(setup, catalog, last) == setup.expected[last]


def test_medium_error_in_the_middle_is_reported_and_the_scan_goes_on(backed_up):
    setup = backed_up
    first = setup.labels[0]
    with setup.session() as session:
        reports = scan_tape(session, first)
        chunk_files = [r for r in reports if r.kind == "chunk-archive"]
        # A medium error two blocks into the first chunk archive.
        setup.library.control("fault", device="drive0", media_error_block=chunk_files[0].first_block + 2)
    lose_state()
    result = rebuild(setup, first, scan=True)
    damaged = chunk_files[0].file_number
    assert [d["file"] for d in result.damaged] == [damaged]
    assert "MEDIUM ERROR" in result.damaged[0]["error"].upper()
    expected = {n: archive for n, archive in setup.expected[first].items() if n != damaged}
    with setup.catalog() as catalog:
        assert archives_by_label_partial(setup, catalog, first) == expected


def test_label_text_the_inventory_gives_another_tape_is_refused_unless_forced(backed_up):
    setup = backed_up
    label = setup.labels[0]
    lose_state()
    stale = MediaId(MediaLabel(str(uuidlib.uuid4()), label, 1), None)
    with setup.inventory() as inventory:
        inventory.store(stale)
    with pytest.raises(CatalogRebuildError, match=f"the inventory knows label {label} as media {stale.uuid}, "
                                                   "the tape carries media .*: nothing changed"):
        rebuild(setup, label)
    with setup.inventory() as inventory:
        assert [entry.uuid for entry in inventory.find_all_media_by_label_text(label)] == [stale.uuid]
    forced = rebuild(setup, label, force=True)
    with setup.inventory() as inventory:
        assert [entry.uuid for entry in inventory.find_all_media_by_label_text(label)] == [forced.media_uuid]


def test_inventory_catalog_reports_a_tape_without_its_own_catalog_archive(backed_up):
    """Only the first tape read: its catalog is on the next tape, so the fast way finds nothing
    and says so (no scan)."""
    setup = backed_up
    lose_state()
    first = setup.labels[0]
    with setup.inventory() as inventory, setup.session() as session:
        _, labels = session.read_labels(first)
        inventory.store(media_id_from_labels(labels))
    with setup.inventory() as inventory, setup.catalog() as catalog, setup.session() as session:
        [result] = restore_missing_catalogs(session, inventory, catalog, [first, "NOSUCH"])
        assert result.method == "not-found" and "tapefs catalog --scan" in result.notes[-1]
        assert not catalog.has_media(result.media_uuid)
