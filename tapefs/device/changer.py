"""Medium changer API (SMC): status with drive serials, load, unload, transfer, inventory.

Slots are numbered as mtx and PBS number them: storage elements in address order from 1, then the
import/export elements. Drives are numbered from 0 in address order.

Real-changer quirks handled here (PBS d3b934d4, dc887e93, 0ed40b19): the allocation length of READ
ELEMENT STATUS never exceeds 0xFFFF, since some libraries read only two of its three bytes; each
element type is queried on its own, at most 1000 elements at a time; drive serials come from a
separate DVCID query whose failure is ignored, since some libraries refuse the DVCID bit; and an
element type the library does not have is not queried at all (mhvtl answers 05/24/00).
"""

from __future__ import annotations

import dataclasses
import logging

from tapefs.device.element_status import (
    DATA_TRANSFER,
    ELEMENT_ADDRESS_ASSIGNMENT_PAGE,
    IMPORT_EXPORT,
    STORAGE,
    TRANSPORT,
    AddressAssignment,
    ElementDescriptor,
    parse_address_assignment,
    parse_element_status,
)
from tapefs.device.handle import DeviceHandle
from tapefs.errors import NotFound
from tapefs.scsi import cdb as cdbs
from tapefs.scsi.errors import CheckCondition, ScsiError, UnitAttention
from tapefs.scsi.inquiry import PERIPHERAL_CHANGER
from tapefs.scsi.transport import CommandResult

log = logging.getLogger(__name__)

ELEMENTS_PER_QUERY = 1000
ELEMENT_STATUS_ALLOCATION = 0xFFFF
MODE_SENSE_6_ALLOCATION = 0xFF
#: A changer may queue several unit attentions (reset, then I/E access); each is reported once.
UNIT_ATTENTION_RETRIES = 4


class ChangerError(ScsiError):
    """A request the library cannot carry out, found before any command was sent."""


class NoSuchElement(NotFound, ChangerError):
    """A slot or drive number the library does not have."""


@dataclasses.dataclass
class DriveSlot:
    number: int
    address: int
    barcode: str | None
    full: bool
    #: The slot number the cartridge came from, when the library knows it.
    loaded_slot: int | None
    serial: str | None
    vendor: str | None
    product: str | None

    def to_dict(self) -> dict:
        return {
            "drive": self.number,
            "element-address": self.address,
            "full": self.full,
            "barcode": self.barcode,
            "loaded-slot": self.loaded_slot,
            "serial": self.serial,
            "vendor": self.vendor,
            "model": self.product,
        }


@dataclasses.dataclass
class StorageSlot:
    number: int
    address: int
    import_export: bool
    full: bool
    barcode: str | None

    def to_dict(self) -> dict:
        return {
            "slot": self.number,
            "element-address": self.address,
            "import-export": self.import_export,
            "full": self.full,
            "barcode": self.barcode,
        }


@dataclasses.dataclass
class TransportElement:
    address: int
    full: bool
    barcode: str | None

    def to_dict(self) -> dict:
        return {"element-address": self.address, "full": self.full, "barcode": self.barcode}


@dataclasses.dataclass
class ChangerStatus:
    transports: list[TransportElement]
    drives: list[DriveSlot]
    slots: list[StorageSlot]

    def slot(self, number: int) -> StorageSlot:
        if not 1 <= number <= len(self.slots):
            raise NoSuchElement(f"slot {number} does not exist (the library has slots 1-{len(self.slots)})")
        return self.slots[number - 1]

    def drive(self, number: int) -> DriveSlot:
        if not 0 <= number < len(self.drives):
            raise NoSuchElement(f"drive {number} does not exist (the library has drives 0-{len(self.drives) - 1})")
        return self.drives[number]

    def to_dict(self) -> dict:
        return {
            "transports": [t.to_dict() for t in self.transports],
            "drives": [d.to_dict() for d in self.drives],
            "slots": [s.to_dict() for s in self.slots],
        }


class Changer(DeviceHandle):
    peripheral_type = PERIPHERAL_CHANGER
    kind = "medium changer"

    def _run_past_unit_attentions(self, cdb: bytes, data_in_len: int = 0) -> CommandResult:
        """Run a command, repeating it after unit attentions. For a changer they only report
        that an operator used the mail slot or the library was reset, and the device did not
        run the command that got one, so repeating it is safe (PBS retries too). Every changer
        command goes through here: the operator may use the mail slot between any two of them."""
        for _ in range(UNIT_ATTENTION_RETRIES):
            try:
                return self.channel.run(cdb, data_in_len=data_in_len)
            except UnitAttention as exc:
                log.info("%s: %s", self.path, exc.sense.condition)
        return self.channel.run(cdb, data_in_len=data_in_len)

    def address_assignment(self) -> AddressAssignment:
        result = self._run_past_unit_attentions(
            cdbs.mode_sense_6(ELEMENT_ADDRESS_ASSIGNMENT_PAGE, MODE_SENSE_6_ALLOCATION, disable_block_descriptors=True),
            data_in_len=MODE_SENSE_6_ALLOCATION,
        )
        return parse_address_assignment(result.data)

    def elements(self, element_type: int, *, voltag: bool = True, dvcid: bool = False) -> list[ElementDescriptor]:
        """Every element of one type, in batches of at most 1000."""
        found: list[ElementDescriptor] = []
        start = 0
        while True:
            result = self._run_past_unit_attentions(
                cdbs.read_element_status(
                    element_type,
                    starting_address=start,
                    number_of_elements=ELEMENTS_PER_QUERY,
                    allocation_length=ELEMENT_STATUS_ALLOCATION,
                    voltag=voltag,
                    dvcid=dvcid,
                ),
                data_in_len=ELEMENT_STATUS_ALLOCATION,
            )
            batch = [
                e
                for e in parse_element_status(result.data, with_identifier=dvcid)
                if e.element_type == element_type and e.address >= start
            ]
            found.extend(batch)
            if len(batch) < ELEMENTS_PER_QUERY:
                return found
            start = batch[-1].address + 1

    def status(self) -> ChangerStatus:
        assignment = self.address_assignment()

        def query(element_type: int) -> list[ElementDescriptor]:
            return self.elements(element_type) if assignment.count(element_type) else []

        storage = sorted(query(STORAGE), key=lambda e: e.address)
        import_export = sorted(query(IMPORT_EXPORT), key=lambda e: e.address)
        drives = sorted(query(DATA_TRANSFER), key=lambda e: e.address)
        transports = sorted(query(TRANSPORT), key=lambda e: e.address)
        identifiers = self._drive_identifiers() if drives else {}

        slots = [
            StorageSlot(n, e.address, e.element_type == IMPORT_EXPORT, e.full, e.volume_tag)
            for n, e in enumerate(storage + import_export, start=1)
        ]
        slot_by_address = {slot.address: slot.number for slot in slots}
        drive_slots = []
        for number, element in enumerate(drives):
            vendor, product, serial = identifiers.get(element.address, (None, None, None))
            loaded_slot = slot_by_address.get(element.source_address) if element.full else None
            drive_slots.append(
                DriveSlot(
                    number, element.address, element.volume_tag, element.full, loaded_slot, serial, vendor, product
                )
            )
        return ChangerStatus(
            [TransportElement(e.address, e.full, e.volume_tag) for e in transports], drive_slots, slots
        )

    def _drive_identifiers(self) -> dict[int, tuple[str | None, str | None, str | None]]:
        try:
            elements = self.elements(DATA_TRANSFER, voltag=False, dvcid=True)
        except CheckCondition as exc:
            log.info("%s: drive identifiers not available: %s", self.path, exc)
            return {}
        return {e.address: (e.vendor, e.product, e.serial) for e in elements}

    def _transport_address(self, status: ChangerStatus) -> int:
        # Address 0 means "the default transport" to MOVE MEDIUM.
        return status.transports[0].address if status.transports else 0

    def move(self, source: int, destination: int, status: ChangerStatus | None = None) -> None:
        status = status or self.status()
        self._run_past_unit_attentions(cdbs.move_medium(self._transport_address(status), source, destination))

    def load(self, slot: int, drive: int = 0) -> None:
        """Move the cartridge in slot to drive."""
        status = self.status()
        source, target = status.slot(slot), status.drive(drive)
        log.info("%s: loading slot %d (%s) into drive %d", self.path, slot, source.barcode, drive)
        self.move(source.address, target.address, status)

    def unload(self, slot: int | None = None, drive: int = 0) -> int:
        """Move drive's cartridge to slot; by default back to the slot it came from if that is
        empty, else to the first free storage slot. Returns the slot used."""
        status = self.status()
        source = status.drive(drive)
        if not source.full:
            raise ChangerError(f"drive {drive} is empty")
        if slot is None:
            slot = self._free_slot_for(status, source)
        target = status.slot(slot)
        log.info("%s: unloading drive %d (%s) to slot %d", self.path, drive, source.barcode, slot)
        self.move(source.address, target.address, status)
        return slot

    @staticmethod
    def _free_slot_for(status: ChangerStatus, drive: DriveSlot) -> int:
        if drive.loaded_slot is not None and not status.slot(drive.loaded_slot).full:
            return drive.loaded_slot
        for candidate in status.slots:
            if not candidate.full and not candidate.import_export:
                return candidate.number
        raise ChangerError("no free storage slot")

    def transfer(self, from_slot: int, to_slot: int) -> None:
        status = self.status()
        self.move(status.slot(from_slot).address, status.slot(to_slot).address, status)

    def inventory(self) -> None:
        """INITIALIZE ELEMENT STATUS: the library rescans its barcodes."""
        self._run_past_unit_attentions(cdbs.initialize_element_status())
