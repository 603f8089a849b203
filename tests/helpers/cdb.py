"""Raw CDBs and sense decoding for CDB-level tests of the emulator."""

from __future__ import annotations

import dataclasses

from vtape.library import FIRST_ADDRESS

SLOT1 = FIRST_ADDRESS["storage"]
DRIVE0 = FIRST_ADDRESS["drive"]


@dataclasses.dataclass
class Sense:
    key: int
    asc: int
    ascq: int
    information: int
    valid: bool
    filemark: bool
    eom: bool
    ili: bool
    field_pointer: int | None

    @property
    def code(self) -> tuple[int, int, int]:
        return self.key, self.asc, self.ascq


def sense(reply) -> Sense:
    raw = bytes(reply.sense)
    assert reply.status == 0x02 and len(raw) == 18 and raw[0] & 0x7F == 0x70, (reply.status, raw.hex())
    return Sense(
        raw[2] & 0x0F,
        raw[12],
        raw[13],
        int.from_bytes(raw[3:7], "big", signed=True),
        bool(raw[0] & 0x80),
        bool(raw[2] & 0x80),
        bool(raw[2] & 0x40),
        bool(raw[2] & 0x20),
        int.from_bytes(raw[16:18], "big") if raw[15] & 0x80 else None,
    )


def ok(reply):
    assert reply.status == 0, f"status {reply.status:#x} sense {bytes(reply.sense).hex()}"
    return reply


def move(source: int, destination: int) -> bytes:
    return bytes([0xA5, 0, 0, 0]) + source.to_bytes(2, "big") + destination.to_bytes(2, "big") + bytes(4)


def write(length: int, fixed: bool = False) -> bytes:
    return bytes([0x0A, 1 if fixed else 0]) + length.to_bytes(3, "big") + b"\0"


def read(length: int, sili: bool = True, fixed: bool = False) -> bytes:
    return bytes([0x08, (2 if sili else 0) | (1 if fixed else 0)]) + length.to_bytes(3, "big") + b"\0"


def write_filemarks(count: int) -> bytes:
    return bytes([0x10, 0]) + count.to_bytes(3, "big") + b"\0"


def space(code: int, count: int) -> bytes:
    return bytes([0x11, code]) + count.to_bytes(3, "big", signed=True) + b"\0"


def space16(code: int, count: int) -> bytes:
    return bytes([0x91, code, 0, 0]) + count.to_bytes(8, "big", signed=True) + bytes(4)


def locate16(identifier: int, dest_type: int = 0) -> bytes:
    return bytes([0x92, dest_type << 3, 0, 0]) + identifier.to_bytes(8, "big") + bytes(4)


def locate10(identifier: int) -> bytes:
    return bytes([0x2B, 0, 0]) + identifier.to_bytes(4, "big") + bytes(3)


REWIND = bytes([0x01, 0, 0, 0, 0, 0])
TUR = bytes(6)
REQUEST_SENSE = bytes([0x03, 0, 0, 0, 252, 0])
READ_POSITION_LONG = bytes([0x34, 0x06]) + bytes(8)
LOAD = bytes([0x1B, 0, 0, 0, 1, 0])
UNLOAD = bytes([0x1B, 0, 0, 0, 0, 0])


def position(drive) -> tuple[int, int]:
    """(logical object number, logical file id) from READ POSITION long form."""
    data = bytes(ok(drive.execute(READ_POSITION_LONG, data_in_len=32)).data)
    assert len(data) == 32
    return int.from_bytes(data[8:16], "big"), int.from_bytes(data[16:24], "big")


def load(library, slot_address: int = SLOT1, drive_address: int = DRIVE0):
    """Move a cartridge into a drive through the changer and clear the unit attention."""
    with library.client("changer") as changer:
        ok(changer.execute(move(slot_address, drive_address)))
    drive = library.client(f"drive{drive_address - DRIVE0}")
    ok(drive.execute(REQUEST_SENSE, data_in_len=252))
    return drive
