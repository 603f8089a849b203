"""A vtape library served in-process, its drive 0 taking CDBs directly: for tests of the drive's
pages, attributes and security protocol at the CDB level."""

from __future__ import annotations

from tests.helpers.cdb import REQUEST_SENSE, ok
from vtape.library import CreateOptions, Library, create_library

SLOT1 = 0x0400
DRIVE0 = 0x0100
CLEANING_SLOT = 0x040F  # the default library keeps its cleaning cartridge in the last slot
MB = 1000 * 1000
MIB = 1024 * 1024


class StatusBench:
    """A library served in-process: CDBs go straight to ``TapeDrive.execute``."""

    def __init__(self, path, **create_options):
        create_library(path, CreateOptions(**create_options))
        self.path = path
        self.library = Library(path)
        self.drive = self.library.drives[0]

    def run(self, cdb: bytes, data_out: bytes = b"", allocation: int = 0):
        return self.drive.execute(bytes(cdb), memoryview(data_out), allocation)

    def data(self, cdb: bytes, data_out: bytes = b"") -> bytes:
        return bytes(ok(self.run(cdb, data_out)).data)

    def load(self, slot: int = SLOT1, **meta):
        """Move the cartridge of ``slot`` into drive 0 (after setting ``meta`` on it) and clear the UA."""
        cart = self.library.cartridge(self.library.element(slot).barcode)
        cart.meta.update(meta)
        self.library.move(slot, DRIVE0)
        ok(self.run(REQUEST_SENSE))
        return cart

    def unload(self) -> None:
        self.library.move(DRIVE0, self.library.element(DRIVE0).source)
