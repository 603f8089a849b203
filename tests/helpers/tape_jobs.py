"""Tape jobs run through the library on a TapeSetup, and what a test reads back to check them:
every archive on a tape, the catalog against the tapes, a datastore's files."""

from __future__ import annotations

from tapefs.jobs.backup import BackupRequest, backup_datastore
from tapefs.jobs.restore import StoreMap, restore_media_set
from tapefs.media.tape_config import load_media_pool_config
from tapefs.tapeformat.block_device import Mark
from tapefs.tapeformat.chunk_archive import ChunkArchiveReader
from tapefs.tapeformat.errors import MissingEndMarker, UnexpectedEndOfData
from tapefs.tapeformat.magic import CHUNK_ARCHIVE_1_1
from tapefs.tapeformat.snapshot_archive import SNAPSHOT_MAGICS, SnapshotArchiveReader
from tapefs.tapeformat.tape_file import open_tape_file
from tests.helpers.tape_setup import TapeSetup


def run_backup(setup: TapeSetup, pool="daily", progress=None, **options):
    with setup.inventory() as inventory, setup.catalog() as catalog, setup.session() as session:
        return backup_datastore(
            setup.datastore,
            load_media_pool_config()[pool],
            BackupRequest(pool, **options),
            session,
            inventory,
            catalog,
            progress,
        )


def run_restore(setup: TapeSetup, media_set, targets, snapshots=None, progress=None):
    with setup.inventory() as inventory, setup.catalog() as catalog, setup.session("drive1") as session:
        return restore_media_set(media_set, StoreMap(targets), session, inventory, catalog, snapshots, progress)


def read_tape(setup: TapeSetup, label_text: str) -> dict[int, tuple]:
    """Every complete chunk and snapshot archive on the tape: file number → (kind, uuid, content)."""
    found = {}
    with setup.session("drive1") as session:
        device, _ = session.read_labels(label_text)
        while True:
            try:
                tape_file = open_tape_file(device)
            except UnexpectedEndOfData:  # a one-block file whose filemark a kill cut off: the last file
                break
            if tape_file is Mark.END_OF_DATA:
                break
            if tape_file is Mark.FILEMARK:
                continue
            number, magic = tape_file.file_number, tape_file.header.content_magic
            if magic == CHUNK_ARCHIVE_1_1:
                reader = ChunkArchiveReader(tape_file)
                try:
                    digests = [digest for digest, _ in reader]
                except (MissingEndMarker, UnexpectedEndOfData):  # cut by the physical end or a kill
                    continue
                found[number] = ("chunk", str(tape_file.header.uuid), digests)
            elif magic in SNAPSHOT_MAGICS:
                reader = SnapshotArchiveReader(tape_file)
                try:
                    reader.read()
                except (MissingEndMarker, UnexpectedEndOfData):
                    continue
                if not tape_file.reader.incomplete:
                    found[number] = ("snapshot", str(tape_file.header.uuid), reader.snapshot)
            else:
                tape_file.reader.skip_data()
        session.eject()
    return found


def assert_catalog_matches_tapes(setup: TapeSetup, media_set, exact=True):
    """Every archive the catalog names is on tape as named; with `exact`, nothing else is.
    After a kill -9 the tape may hold one finished archive the catalog never heard of."""
    with setup.inventory() as inventory, setup.catalog() as catalog:
        members = inventory.compute_media_set_members(media_set)
        expected = {uuid: catalog.media_archives(uuid) for uuid in members}
        labels = {uuid: inventory.get(uuid).id.label_text for uuid in members}
    for uuid in members:
        on_tape = read_tape(setup, labels[uuid])
        if exact:
            assert on_tape == expected[uuid]
        else:
            assert {n: on_tape.get(n) for n in expected[uuid]} == expected[uuid]
            assert len(on_tape) - len(expected[uuid]) <= 1


def snapshot_tree(datastore):
    """Relative path → bytes of every snapshot file and every chunk of a datastore."""
    root = datastore.root
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and path.name not in (".lock", "owner") and ".tmp" not in path.parts
    }
