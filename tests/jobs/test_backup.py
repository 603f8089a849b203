"""Tape backup and restore end to end on a vtape library with small cartridges."""
import os

import pytest

from tapefs.jobs.errors import JobError
from tapefs.media.media_content import media_content
from tapefs.media.tape_config import load_media_pool_config
from tests.helpers.tape_jobs import assert_catalog_matches_tapes, run_backup, run_restore, snapshot_tree
from tests.helpers.tape_setup import CHUNK, add_cartridges

pytestmark = pytest.mark.vtape


def test_backup_spans_tapes_at_early_warning_and_catalog_matches(tape_setup):
    add_cartridges(tape_setup.library, 3, "16MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8", "SM0003L8")
    first = tape_setup.add_snapshot("vm/100", 3)
    second = tape_setup.add_snapshot("ct/200", 2, ns="site")
    events = []
    result = run_backup(tape_setup, progress=events.append)
    assert result.snapshots_written == ["ns/site/ct/200/" + second.split("/", 2)[2], first]
    assert len(result.tapes) >= 2 and result.chunks_written == 5
    assert events[-1].current >= 5 * 4 * 1024 * 1024 and events[-1].total == events[-1].current
    assert_catalog_matches_tapes(tape_setup, result.media_set)
    # The PBS .log files beside the inventory agree, so `tapefs media content` lists the snapshots.
    with tape_setup.inventory() as inventory:
        listed = {row.snapshot for row in media_content(inventory, media_set=result.media_set)}
    assert listed == set(result.snapshots_written)
    # Everything is on the set now: a second run writes nothing.
    again = run_backup(tape_setup)
    assert again.media_set == result.media_set and again.snapshots_written == []
    assert len(again.snapshots_skipped) == 2


def test_unknown_pool_and_no_writable_media_fail_clearly(tape_setup):
    with pytest.raises(KeyError):
        load_media_pool_config()["nosuchpool"]
    tape_setup.add_snapshot("vm/100", 1)
    with pytest.raises(Exception, match="no usable media found"):
        run_backup(tape_setup)


def test_full_restore_into_a_new_datastore_is_byte_identical(tape_setup, tmp_path):
    from tapefs.datastore.datastore import Datastore
    add_cartridges(tape_setup.library, 3, "16MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8", "SM0003L8")
    tape_setup.add_snapshot("vm/100", 3)
    tape_setup.add_snapshot("vm/100", 1)
    tape_setup.add_snapshot("ct/200", 1, ns="site")
    result = run_backup(tape_setup)
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    events = []
    restored = run_restore(tape_setup, result.media_set, {"store": target}, progress=events.append)
    assert len(restored.snapshots_restored) == 3
    # The tapes' bytes used, recorded by the backup, give the restore a total for its ETA.
    assert events[-1].total >= events[-1].current >= 5 * CHUNK and events[-1].rate > 0
    assert snapshot_tree(target) == snapshot_tree(tape_setup.datastore)


def test_selective_restore_reads_only_the_named_snapshot_and_its_chunks(tape_setup, tmp_path):
    from tapefs.datastore.datastore import Datastore
    add_cartridges(tape_setup.library, 3, "16MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8", "SM0003L8")
    tape_setup.add_snapshot("vm/100", 2)
    wanted = tape_setup.add_snapshot("vm/101", 3)
    result = run_backup(tape_setup)
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    restored = run_restore(tape_setup, result.media_set, {"store": target}, [f"store:{wanted}"])
    assert restored.snapshots_restored == [f"store:{wanted}"] and restored.chunks_restored == 3
    source = {k: v for k, v in snapshot_tree(tape_setup.datastore).items() if not k.startswith("vm/100")}
    tree = snapshot_tree(target)
    assert {k for k in tree if not k.startswith(".chunks")} == {k for k in source if k.startswith("vm/101")}
    assert all(source[k] == v for k, v in tree.items())


def test_second_job_appends_to_the_set_and_skips_chunks_already_on_it(tape_setup):
    add_cartridges(tape_setup.library, 2, "32MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8")
    shared = os.urandom(2 * CHUNK)
    tape_setup.add_snapshot("vm/100", data=shared)
    first = run_backup(tape_setup)
    # The next snapshot shares two chunks with the first: only its new chunk goes to tape.
    newer = tape_setup.add_snapshot("vm/100", 1, data=shared)
    second = run_backup(tape_setup)
    assert second.media_set == first.media_set and second.snapshots_written == [newer]
    assert second.chunks_written == 1 and second.tapes == ["SM0001L8"]
    assert_catalog_matches_tapes(tape_setup, first.media_set)
    # A forced new set writes everything again, on the next tape.
    forced = run_backup(tape_setup, force_media_set=True)
    assert forced.media_set != first.media_set and forced.new_media_set_reason == "forced"
    assert forced.chunks_written == 3 and forced.tapes == ["SM0002L8"]


def test_tape_whose_label_does_not_match_the_inventory_is_refused(tape_setup):
    import time
    import uuid

    from tapefs.tapeformat.labels import MediaLabel, write_media_label
    add_cartridges(tape_setup.library, 1, "32MiB", "4MiB")
    tape_setup.label("SM0001L8")
    with tape_setup.session() as session:
        # Someone labelled the tape again behind the inventory's back.
        write_media_label(session.load("SM0001L8"), MediaLabel(uuid.uuid4(), "SM0001L8", int(time.time()), "daily"))
    tape_setup.add_snapshot("vm/100", 1)
    with pytest.raises(JobError, match="tape SM0001L8 carries media uuid .*, the inventory says"):
        run_backup(tape_setup)


def test_restore_of_an_unknown_media_set_fails_clearly(tape_setup, tmp_path):
    from tapefs.datastore.datastore import Datastore
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    with pytest.raises(JobError, match="media set 0000.* is not in the inventory"):
        run_restore(tape_setup, "00000000-0000-0000-0000-000000000001", {"store": target})


def test_full_restore_rebuilds_a_lost_catalog_with_chunk_offsets(tape_setup, tmp_path):
    from tapefs.datastore.datastore import Datastore
    add_cartridges(tape_setup.library, 3, "16MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8", "SM0003L8")
    tape_setup.add_snapshot("vm/100", 4)
    result = run_backup(tape_setup)
    with tape_setup.inventory() as inventory, tape_setup.catalog() as catalog:
        members = inventory.compute_media_set_members(result.media_set)
        before = {uuid: catalog.media_archives(uuid) for uuid in members}
        digests = [d for archives in before.values() for kind, _, value in archives.values() if kind == "chunk"
                   for d in value]
        places = catalog.chunk_places(result.media_set, "store", digests)
        for uuid in members:
            catalog.forget_media(uuid)
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    run_restore(tape_setup, result.media_set, {"store": target})
    with tape_setup.catalog() as catalog:
        assert {uuid: catalog.media_archives(uuid) for uuid in members} == before
        assert catalog.chunk_places(result.media_set, "store", digests) == places
