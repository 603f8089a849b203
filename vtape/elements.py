"""The elements of a library as SMC numbers them: the robot (transport), storage slots,
import/export slots and drives, each kind at its own base address."""

from __future__ import annotations

import dataclasses

TRANSPORT, STORAGE, IMPORT_EXPORT, DRIVE = "transport", "storage", "import_export", "drive"
ELEMENT_TYPE_CODES = {TRANSPORT: 1, STORAGE: 2, IMPORT_EXPORT: 3, DRIVE: 4}
FIRST_ADDRESS = {TRANSPORT: 0x0001, DRIVE: 0x0100, IMPORT_EXPORT: 0x0300, STORAGE: 0x0400}


@dataclasses.dataclass
class Element:
    kind: str
    address: int
    barcode: str | None = None
    #: address the cartridge came from (its home slot while it sits in a drive)
    source: int | None = None
    #: import/export element: put in by the operator (IMPEXP bit)
    imported: bool = False

    @property
    def full(self) -> bool:
        return self.barcode is not None
