"""A vtape library directory: configuration, element state and cartridges.

LIBDIR/
  library.json        configuration written by ``vtape create`` (drives, slots, identities)
  state.json          what sits in which element, replaced atomically on every move
  cartridges/BARCODE/ one directory per cartridge (see cartridge.py), in the library or on the shelf
  changer, drive0 ... device sockets while the daemon runs; control is its control socket
  events.jsonl        one line per command: device, CDB, status, sense, latency
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from pathlib import Path

from . import atomic, media, sense
from .cartridge import Cartridge, new_meta
from .changer import MediumChanger
from .drive import TapeDrive
from .elements import DRIVE, FIRST_ADDRESS, IMPORT_EXPORT, STORAGE, TRANSPORT, Element
from .errors import ExitCode, VtapeError
from .sense import CheckCondition
from .spc import Identity

log = logging.getLogger(__name__)

CONFIG_VERSION = 1


class LibraryError(VtapeError):
    """A library directory that is missing, already exists, or is inconsistent."""


class LibraryNotFound(LibraryError):
    """No library at the path given."""

    exit_code = ExitCode.NOT_FOUND


@dataclasses.dataclass
class CreateOptions:
    drives: int = 2
    generation: int = 8
    storage_slots: int = 16
    import_export_slots: int = 2
    cartridges: int = 8
    barcode_prefix: str = "VT"
    capacity: int = 8 * 1024**3
    cleaning_cartridges: int = 1
    worm_cartridges: int = 0
    allow_other_users: bool = False
    timing: bool = False


def _barcodes(prefix: str, count: int, generation: int, worm: bool, start: int = 1) -> list[str]:
    digits = 6 - len(prefix)
    if digits < 1:
        raise LibraryError(f"barcode prefix {prefix!r} leaves no room for a number (6 characters in all)")
    if start + count - 1 >= 10**digits:
        raise LibraryError(f"{count} cartridges do not fit prefix {prefix!r} ({digits} digits)")
    suffix = media.barcode_suffix(generation, worm)
    return [f"{prefix}{n:0{digits}d}{suffix}" for n in range(start, start + count)]


def create_library(path: Path, options: CreateOptions) -> None:
    """Write a new library directory; refuse to touch an existing one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LibraryError(f"{path}: not a directory")
    if (path / "library.json").exists():
        raise LibraryError(f"{path}: a library already exists here")
    if path.exists() and any(path.iterdir()):
        raise LibraryError(f"{path}: directory is not empty")
    if options.drives < 1 or options.storage_slots < 1:
        raise LibraryError("a library needs at least one drive and one storage slot")
    if options.generation not in media.GENERATIONS:
        raise LibraryError(f"unknown LTO generation {options.generation}")
    total = options.cartridges + options.cleaning_cartridges + options.worm_cartridges
    if total > options.storage_slots:
        raise LibraryError(f"{total} cartridges do not fit in {options.storage_slots} storage slots")
    prefix = options.barcode_prefix.upper()
    data = _barcodes(prefix, options.cartridges, options.generation, False)
    worm = _barcodes("WM" if prefix != "WM" else "WO", options.worm_cartridges, options.generation, True)
    cleaning = _barcodes("CLN", options.cleaning_cartridges, 1, False)

    library_id = secrets.token_hex(3).upper()
    config = {
        "version": CONFIG_VERSION,
        "id": library_id,
        "allow_other_users": options.allow_other_users,
        "changer": {
            "vendor": "VTAPE",
            "product": "VTL-LTO",
            "revision": "0100",
            "serial": f"VL{library_id}",
            "naa": 0x5000000000000000 | int(library_id, 16) << 16,
        },
        "drives": [
            {
                "vendor": "IBM",
                "product": f"ULT3580-TD{options.generation}",
                "revision": "0107",
                "serial": f"VT{library_id}{i:02d}",
                "generation": options.generation,
                "naa": 0x5000000000000000 | int(library_id, 16) << 16 | (i + 1),
            }
            for i in range(options.drives)
        ],
        "storage_slots": options.storage_slots,
        "import_export_slots": options.import_export_slots,
        "timing": {"enabled": options.timing, "load_seconds": 2.0, "unload_seconds": 1.5, "full_wind_seconds": 40.0},
        "unit_attention_on_load": True,
    }
    path.mkdir(parents=True, exist_ok=True)
    (path / "cartridges").mkdir()
    slots: list[str | None] = [None] * options.storage_slots
    for i, barcode in enumerate(data + worm):
        slots[i] = barcode
    for i, barcode in enumerate(cleaning):
        slots[options.storage_slots - 1 - i] = barcode
    for barcode in data + worm + cleaning:
        capacity = options.capacity
        Cartridge.create(path / "cartridges" / barcode, new_meta(media.parse_barcode(barcode), capacity)).close()
    atomic.write_json(
        path / "state.json",
        {
            "storage": slots,
            "import_export": [{"barcode": None, "imported": False} for _ in range(options.import_export_slots)],
            "drives": [{"barcode": None, "source": None} for _ in range(options.drives)],
        },
    )
    # library.json last: its presence marks a complete library.
    atomic.write_json(path / "library.json", config)


def load_config(path: Path) -> dict:
    path = Path(path)
    try:
        config = atomic.read_json(path / "library.json")
    except FileNotFoundError:
        raise LibraryNotFound(f"{path}: no vtape library here (create one with: vtape create {path})") from None
    except NotADirectoryError:
        raise LibraryNotFound(f"{path}: not a directory, so no vtape library") from None
    except ValueError as e:
        raise LibraryError(f"{path}/library.json is corrupt: {e}") from None
    if config.get("version") != CONFIG_VERSION:
        raise LibraryError(f"{path}/library.json: unsupported version {config.get('version')!r}")
    return config


class Library:
    """The live library inside the daemon: elements, cartridges, drives and changer."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.config = load_config(self.path)
        state = atomic.read_json(self.path / "state.json")
        self._cartridges: dict[str, Cartridge] = {}
        self.elements: list[Element] = [Element(TRANSPORT, FIRST_ADDRESS[TRANSPORT])]
        self.elements += [
            Element(STORAGE, FIRST_ADDRESS[STORAGE] + i, barcode) for i, barcode in enumerate(state["storage"])
        ]
        self.elements += [
            Element(IMPORT_EXPORT, FIRST_ADDRESS[IMPORT_EXPORT] + i, e["barcode"], None, e["imported"])
            for i, e in enumerate(state["import_export"])
        ]
        self.elements += [
            Element(DRIVE, FIRST_ADDRESS[DRIVE] + i, d["barcode"], d["source"]) for i, d in enumerate(state["drives"])
        ]
        self.elements.sort(key=lambda e: e.address)
        self._by_address = {e.address: e for e in self.elements}
        self.drives = [
            TapeDrive(
                self, i, Identity(d["vendor"], d["product"], d["revision"], d["serial"], d["naa"]), d["generation"]
            )
            for i, d in enumerate(self.config["drives"])
        ]
        c = self.config["changer"]
        self.changer = MediumChanger(self, Identity(c["vendor"], c["product"], c["revision"], c["serial"], c["naa"]))
        for drive, element in zip(self.drives, self.elements_of(DRIVE), strict=True):
            if element.barcode:
                drive.insert(self.cartridge(element.barcode), unit_attention=False)

    # -- elements ---------------------------------------------------------------

    def elements_of(self, kind: str) -> list[Element]:
        return [e for e in self.elements if e.kind == kind]

    def element(self, address: int) -> Element | None:
        return self._by_address.get(address)

    def slot_number(self, address: int) -> int | None:
        """1-based slot number as mtx and PBS count: storage slots, then import/export."""
        slots = self.elements_of(STORAGE) + self.elements_of(IMPORT_EXPORT)
        for number, e in enumerate(slots, 1):
            if e.address == address:
                return number
        return None

    def drive_for(self, element: Element):
        return self.drives[element.address - FIRST_ADDRESS[DRIVE]]

    def where_is(self, barcode: str) -> Element | None:
        return next((e for e in self.elements if e.barcode == barcode), None)

    # -- cartridges -------------------------------------------------------------

    def cartridge(self, barcode: str) -> Cartridge:
        cart = self._cartridges.get(barcode)
        if cart is None:
            directory = self.path / "cartridges" / barcode
            if not (directory / "meta.json").exists():
                raise LibraryError(f"cartridge {barcode} does not exist in {self.path}")
            cart = self._cartridges[barcode] = Cartridge(directory)
        return cart

    def cartridge_barcodes(self) -> list[str]:
        return sorted(p.name for p in (self.path / "cartridges").iterdir() if (p / "meta.json").exists())

    # -- moves ------------------------------------------------------------------

    def move(self, source_address: int, destination_address: int) -> None:
        """Move a cartridge between elements, unloading a threaded drive first.

        Raises CheckCondition with the SMC sense for every refusal, changing nothing.
        """
        source, destination = self.element(source_address), self.element(destination_address)
        if source is None or source.kind == TRANSPORT:
            raise CheckCondition(sense.ILLEGAL_REQUEST, 0x21, 0x01, field_pointer=4)
        if destination is None or destination.kind == TRANSPORT:
            raise CheckCondition(sense.ILLEGAL_REQUEST, 0x21, 0x01, field_pointer=6)
        if not source.full:
            raise CheckCondition(sense.ILLEGAL_REQUEST, 0x3B, 0x0E)
        if source is destination:
            return
        if destination.full:
            raise CheckCondition(sense.ILLEGAL_REQUEST, 0x3B, 0x0D)
        if destination.kind == DRIVE:
            drive = self.drive_for(destination)
            cart = self.cartridge(source.barcode)
            if not cart.meta["cleaning"] and not media.can_read(drive.generation, cart.meta["generation"]):
                raise sense.incompatible_medium()
        if source.kind == DRIVE:
            self.drive_for(source).remove()  # raises 05/53/02 while removal is prevented
        barcode = source.barcode
        if source.kind == DRIVE:
            home = source.source
        else:
            home = source.address
        destination.barcode, destination.source = barcode, home
        destination.imported = False
        source.barcode, source.source, source.imported = None, None, False
        if destination.kind == DRIVE:
            self.drive_for(destination).insert(self.cartridge(barcode))
        self.save_state()

    def exchange(self, source_address: int, first_address: int, second_address: int) -> None:
        """EXCHANGE MEDIUM: the source cartridge goes to the first destination, whose
        cartridge goes to the second destination (the source itself for a swap).

        Every check comes before any change, as in move().
        """
        elements = []
        for address, field_pointer in ((source_address, 4), (first_address, 6), (second_address, 8)):
            element = self.element(address)
            if element is None or element.kind == TRANSPORT:
                raise CheckCondition(sense.ILLEGAL_REQUEST, 0x21, 0x01, field_pointer=field_pointer)
            elements.append(element)
        source, first, second = elements
        if first is source:
            # The source's cartridge "replaces" itself and then travels on to the second destination.
            self.move(source_address, second_address)
            return
        if not source.full or not first.full:
            raise CheckCondition(sense.ILLEGAL_REQUEST, 0x3B, 0x0E)
        if second.full and second is not source:
            raise CheckCondition(sense.ILLEGAL_REQUEST, 0x3B, 0x0D)
        legs = [(source, first), (first, second)]
        for origin, target in legs:
            if target.kind == DRIVE:
                cart = self.cartridge(origin.barcode)
                if not cart.meta["cleaning"] and not media.can_read(
                    self.drive_for(target).generation, cart.meta["generation"]
                ):
                    raise sense.incompatible_medium()
            if origin.kind == DRIVE and self.drive_for(origin).prevent:
                raise sense.medium_removal_prevented()
        arrivals = [
            (target, origin.barcode, origin.source if origin.kind == DRIVE else origin.address)
            for origin, target in legs
        ]
        for origin, _ in legs:
            if origin.kind == DRIVE:
                self.drive_for(origin).remove()
        source.barcode, source.source, source.imported = None, None, False
        for target, barcode, home in arrivals:
            target.barcode, target.source, target.imported = barcode, home, False
            if target.kind == DRIVE:
                self.drive_for(target).insert(self.cartridge(barcode))
        self.save_state()

    # -- operator at the import/export slots --------------------------------------

    def _check_import_export_unlocked(self) -> None:
        if self.changer.removal_prevented:
            raise LibraryError(
                "the import/export slots are locked: a host has sent PREVENT MEDIUM REMOVAL "
                "to the changer and not allowed removal again"
            )

    def insert(self, barcode: str, slot_address: int | None = None) -> Element:
        """Put a shelf cartridge into an import/export slot, as an operator would."""
        self._check_import_export_unlocked()
        self.cartridge(barcode)
        if self.where_is(barcode):
            raise LibraryError(f"cartridge {barcode} is already in the library")
        free = [
            e
            for e in self.elements_of(IMPORT_EXPORT)
            if not e.full and (slot_address is None or e.address == slot_address)
        ]
        if not free:
            raise LibraryError(
                "no free import/export slot"
                if slot_address is None
                else f"import/export slot {slot_address:#x} is not free"
            )
        element = free[0]
        element.barcode, element.imported, element.source = barcode, True, None
        self.changer.raise_unit_attention(0x28, 0x01)
        self.save_state()
        return element

    def remove(self, barcode: str) -> None:
        """Take a cartridge out of an import/export slot onto the shelf."""
        self._check_import_export_unlocked()
        element = self.where_is(barcode)
        if element is None or element.kind != IMPORT_EXPORT:
            raise LibraryError(f"cartridge {barcode} is not in an import/export slot")
        element.barcode, element.imported, element.source = None, False, None
        self.changer.raise_unit_attention(0x28, 0x01)
        self.save_state()

    def add_cartridge(
        self,
        barcode: str,
        capacity: int | None = None,
        early_warning: int | None = None,
        slot_address: int | None = None,
        shelf: bool = False,
    ) -> Element | None:
        """Create a new cartridge, in a free storage slot unless it goes onto the shelf."""
        label = media.parse_barcode(barcode)
        if (self.path / "cartridges" / barcode).exists():
            raise LibraryError(f"cartridge {barcode} already exists")
        element = None
        if not shelf:
            free = [
                e
                for e in self.elements_of(STORAGE)
                if not e.full and (slot_address is None or e.address == slot_address)
            ]
            if not free:
                raise LibraryError("no free storage slot (use --shelf to keep it outside the library)")
            element = free[0]
        Cartridge.create(
            self.path / "cartridges" / barcode, new_meta(label, capacity or 8 * 1024**3, early_warning)
        ).close()
        if element:
            element.barcode, element.source = barcode, None
            self.save_state()
        return element

    def add_cartridges(
        self, barcodes: list[str], capacity: int | None = None, shelf: bool = False
    ) -> list[Element | None]:
        """Create several cartridges; all are checked first, so a bad list creates none."""
        if not barcodes:
            raise LibraryError("the label list is empty")
        for barcode in barcodes:
            media.parse_barcode(barcode)
            if (self.path / "cartridges" / barcode).exists():
                raise LibraryError(f"cartridge {barcode} already exists")
        if len(set(barcodes)) != len(barcodes):
            raise LibraryError("the label list names a cartridge twice")
        free = sum(1 for e in self.elements_of(STORAGE) if not e.full)
        if not shelf and len(barcodes) > free:
            raise LibraryError(f"{len(barcodes)} cartridges but only {free} free storage slots (use --shelf)")
        return [self.add_cartridge(barcode, capacity, shelf=shelf) for barcode in barcodes]

    # -- persistence ------------------------------------------------------------

    def save_state(self) -> None:
        atomic.write_json(
            self.path / "state.json",
            {
                "storage": [e.barcode for e in self.elements_of(STORAGE)],
                "import_export": [
                    {"barcode": e.barcode, "imported": e.imported} for e in self.elements_of(IMPORT_EXPORT)
                ],
                "drives": [{"barcode": e.barcode, "source": e.source} for e in self.elements_of(DRIVE)],
            },
        )

    def close(self) -> None:
        for drive in self.drives:
            drive.shutdown()
        for cart in self._cartridges.values():
            cart.save_meta()
            cart.close()
        self._cartridges.clear()


def read_label_list(text: str) -> list[str]:
    """Barcodes from a label list: one a line; blank lines and lines starting with # are skipped."""
    lines = (line.strip().upper() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]
