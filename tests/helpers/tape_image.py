"""A disk image backed up over three small tapes, every drive empty afterwards, and where each of
its chunks lies: what the read planner and tape stream tests read back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tapefs.datastore.blob import decode_blob
from tapefs.datastore.fixed_index import FixedIndex
from tapefs.jobs.drive_session import drive_setup
from tapefs.media.tape_config import load_tape_config
from tapefs.mount.chunk_cache import ChunkCache
from tapefs.mount.read_planner import ReadPlanner
from tests.helpers.tape_jobs import run_backup
from tests.helpers.tape_setup import TapeSetup, add_cartridges

STORE = "store"


@dataclass
class BackedUp:
    setup: TapeSetup
    set_uuid: str
    index: FixedIndex
    #: digest → (tape label, file number, offset, blob size)
    places: dict[bytes, tuple[str, int, int, int]]
    root: Path

    def blob(self, digest: bytes) -> bytes:
        return self.setup.datastore.chunk_store.chunk_path(digest).read_bytes()

    def data(self, digest: bytes) -> bytes:
        return decode_blob(self.blob(digest))

    def on_tape(self, label: str) -> list[bytes]:
        """The image's chunks on tape `label`, in tape order."""
        return sorted((d for d, place in self.places.items() if place[0] == label), key=lambda d: self.places[d][1:3])

    @property
    def tapes(self) -> list[str]:
        return sorted({place[0] for place in self.places.values()})

    def planner(
        self, cache_dir: str = "cache", drives: int = 2, cache: ChunkCache | None = None, **options
    ) -> ReadPlanner:
        config = load_tape_config()
        setups = [drive_setup(config, f"drive{n}") for n in range(drives)]
        return ReadPlanner(setups, cache or ChunkCache(self.root / cache_dir, 1 << 30), **options)

    def export(self, label: str) -> None:
        """Move a tape to an import/export slot: out of the library's reach."""
        with self.setup.session() as session:
            assert session.export([label]) == []


def back_up_image(setup: TapeSetup, root: Path) -> BackedUp:
    """An image of 9 random 4 MiB chunks backed up over three 16 MiB tapes; every drive empty."""
    add_cartridges(setup.library, 4, "16MiB", "4MiB")
    setup.label("SM0001L8", "SM0002L8", "SM0003L8", "SM0004L8")
    setup.add_snapshot("vm/100", 9)
    result = run_backup(setup, eject_media=True)
    assert len(result.tapes) >= 3
    index_path = next(setup.datastore.root.rglob("disk.img.fidx"))
    index = FixedIndex.load(index_path)
    with setup.inventory() as inventory, setup.catalog() as catalog:
        found = catalog.chunk_places(result.media_set, STORE, index.digests)
        places = {
            digest: (inventory.get(p.media_uuid).id.label_text, p.file_number, p.offset, p.size)
            for digest, p in found.items()
        }
    status = setup.library.control("status")
    assert all(not drive.get("barcode") for drive in status["drives"]), status["drives"]
    return BackedUp(setup, result.media_set, index, places, root)


def corrupt_on_cartridge(backed_up: BackedUp, digest: bytes) -> None:
    """Flip one byte inside the chunk's blob where it lies in the cartridge's data file."""
    label = backed_up.places[digest][0]
    path = backed_up.setup.library.path / "cartridges" / label / "data"
    blob = backed_up.blob(digest)
    content = path.read_bytes()
    for start in range(5000, len(blob), 100_000):
        where = content.find(blob[start : start + 64])
        if where >= 0:
            with open(path, "r+b") as file:
                file.seek(where + 10)
                file.write(bytes([content[where + 10] ^ 0xFF]))
            return
    raise AssertionError(f"chunk {digest.hex()} not found on cartridge {label}")
