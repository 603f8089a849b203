"""The physical end of a tape and bad chunks in the datastore: clear errors, nothing finished lost."""
import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.jobs.errors import JobError
from tapefs.jobs.snapshot_files import snapshot_digests
from tests.helpers.tape_jobs import assert_catalog_matches_tapes, run_backup, run_restore, snapshot_tree
from tests.helpers.tape_setup import add_cartridges

pytestmark = pytest.mark.vtape


def test_physical_end_rewrites_the_aborted_archive_on_the_next_tape(tape_setup, tmp_path):
    # No early-warning zone: the writer meets the physical end in the middle of a chunk.
    tape_setup.library.control("add-cartridge", barcode="NW0001L8", capacity="6MiB", early_warning="0")
    add_cartridges(tape_setup.library, 1, "32MiB", "4MiB")
    tape_setup.label("NW0001L8", "SM0001L8")
    tape_setup.add_snapshot("vm/100", 1)
    tape_setup.add_snapshot("vm/101", 1)
    result = run_backup(tape_setup)
    assert result.tapes == ["NW0001L8", "SM0001L8"] and result.chunks_written == 2
    assert len(result.snapshots_written) == 2
    assert_catalog_matches_tapes(tape_setup, result.media_set)
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    run_restore(tape_setup, result.media_set, {"store": target})
    assert snapshot_tree(target) == snapshot_tree(tape_setup.datastore)


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_bad_chunk_in_the_datastore_fails_its_snapshot_and_keeps_the_rest(tape_setup, tmp_path, damage):
    add_cartridges(tape_setup.library, 2, "32MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8")
    good = tape_setup.add_snapshot("vm/100", 1)
    bad = tape_setup.add_snapshot("vm/101", 2)
    group = tape_setup.datastore.list_groups()[1]
    digest = snapshot_digests(tape_setup.datastore, tape_setup.datastore.list_snapshots(group)[0].snapshot)[1]
    path = tape_setup.datastore.chunk_store.chunk_path(digest)
    if damage == "corrupt":
        data = bytearray(path.read_bytes())
        data[100] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        path.unlink()
    with pytest.raises(JobError, match=f"finished with some errors: {bad}: .*{digest.hex()}"):
        run_backup(tape_setup)
    with tape_setup.inventory() as inventory:
        media_set = inventory.latest_media_set("daily")
    assert_catalog_matches_tapes(tape_setup, media_set)
    with tape_setup.catalog() as catalog:
        assert [place.snapshot for place in catalog.snapshots_in_set(media_set)] == [good]
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    restored = run_restore(tape_setup, media_set, {"store": target})
    assert restored.snapshots_restored == [f"store:{good}"]


def test_tape_full_and_no_writable_media_left_keeps_what_was_written(tape_setup, tmp_path):
    add_cartridges(tape_setup.library, 1, "16MiB", "4MiB")
    tape_setup.label("SM0001L8")
    first = tape_setup.add_snapshot("vm/100", 2)
    tape_setup.add_snapshot("vm/101", 2)
    with pytest.raises(Exception, match="no usable media found"):
        run_backup(tape_setup)
    with tape_setup.inventory() as inventory:
        media_set = inventory.latest_media_set("daily")
        assert inventory.find_media_by_label_text("SM0001L8").status.value == "full"
    assert_catalog_matches_tapes(tape_setup, media_set)
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    restored = run_restore(tape_setup, media_set, {"store": target})
    assert restored.snapshots_restored == [f"store:{first}"]


def test_export_media_set_moves_the_sets_tapes_to_import_export_slots(tape_setup):
    from tapefs.device.changer import Changer
    add_cartridges(tape_setup.library, 3, "16MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8", "SM0003L8")
    tape_setup.add_snapshot("vm/100", 4)
    result = run_backup(tape_setup, export_media_set=True)
    assert result.tapes == ["SM0001L8", "SM0002L8"]
    with Changer.open(tape_setup.library.changer) as changer:
        status = changer.status()
    exported = {slot.barcode for slot in status.slots if slot.import_export and slot.full}
    assert exported == {"SM0001L8", "SM0002L8"} and not any(drive.full for drive in status.drives)


def flip_byte_on_tape(library, barcode: str, needle: bytes) -> None:
    """Damage the cartridge's stored data where `needle` lies, as a bad spot on tape would."""
    data_path = library.path / "cartridges" / barcode / "data"
    data = bytearray(data_path.read_bytes())
    position = data.find(needle)
    assert position > 0, "chunk bytes not found on the cartridge"
    data[position] ^= 0xFF
    data_path.write_bytes(bytes(data))


@pytest.mark.parametrize("selective", [False, True])
def test_chunk_damaged_on_tape_fails_the_restore_naming_tape_file_and_offset(tape_setup, tmp_path, selective):
    add_cartridges(tape_setup.library, 1, "32MiB", "4MiB")
    tape_setup.label("SM0001L8")
    snapshot = tape_setup.add_snapshot("vm/100", 2)
    result = run_backup(tape_setup)
    digest = snapshot_digests(tape_setup.datastore, tape_setup.datastore.list_snapshots(
        tape_setup.datastore.list_groups()[0])[0].snapshot)[1]
    blob = tape_setup.datastore.chunk_store.read_raw(digest)
    tape_setup.library.stop()
    flip_byte_on_tape(tape_setup.library, "SM0001L8", blob[100_000:100_064])
    tape_setup.library.start()
    with tape_setup.catalog() as catalog:
        place = catalog.chunk_places(result.media_set, "store", [digest])[digest]
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    pattern = (f"tape SM0001L8 file {place.file_number} offset {place.offset}: "
               f"chunk {digest.hex()}: .*CRC mismatch")
    with pytest.raises(JobError, match=pattern):
        run_restore(tape_setup, result.media_set, {"store": target}, [snapshot] if selective else None)
    assert not list(target.root.glob("vm/100/*/index.json.blob"))
