"""READ ATTRIBUTE and WRITE ATTRIBUTE (medium auxiliary memory) at the CDB level."""
from __future__ import annotations

import json
import os

import pytest

from tests.helpers.cdb import load, ok, sense, write
from tests.helpers.status_bench import CLEANING_SLOT, DRIVE0, MIB, SLOT1, StatusBench
from vtape import media
from vtape.mam import ATTRIBUTES

ASCII, TEXT = 1, 2


@pytest.fixture
def bench(tmp_path):
    bench = StatusBench(tmp_path / "lib", worm_cartridges=1)
    yield bench
    bench.library.close()


def read_attribute(service_action: int = 0, first: int = 0, allocation: int = 0x8000, partition: int = 0,
                   volume: int = 0) -> bytes:
    return bytes([0x8C, service_action, 0, 0, 0, volume, 0, partition]) + first.to_bytes(2, "big") \
        + allocation.to_bytes(4, "big") + bytes(2)


PBS_READ_ATTRIBUTE = bytes.fromhex("8c 00 00 00 00 00 00 00 00 00 00 00 80 00 00 00")


def write_attribute(length: int) -> bytes:
    """As PBS sends it: WTC=1."""
    return bytes([0x8D, 0x01]) + bytes(8) + length.to_bytes(4, "big") + bytes(2)


def attribute(identifier: int, value: bytes, fmt: int = ASCII) -> bytes:
    return identifier.to_bytes(2, "big") + bytes([fmt]) + len(value).to_bytes(2, "big") + value


def parameter_list(*attributes: bytes) -> bytes:
    body = b"".join(attributes)
    return len(body).to_bytes(4, "big") + body


def put(bench, *attributes: bytes):
    data = parameter_list(*attributes)
    return bench.run(write_attribute(len(data)), data)


def values(data: bytes) -> dict[int, tuple[int, bytes]]:
    """id -> (flags byte, value) from SA 00 data, checking AVAILABLE DATA and the order."""
    assert int.from_bytes(data[:4], "big") == len(data) - 4
    found: dict[int, tuple[int, bytes]] = {}
    offset = 4
    while offset < len(data):
        identifier = int.from_bytes(data[offset:offset + 2], "big")
        length = int.from_bytes(data[offset + 3:offset + 5], "big")
        assert not found or identifier > max(found)
        found[identifier] = (data[offset + 2], data[offset + 5:offset + 5 + length])
        offset += 5 + length
    assert offset == len(data)
    return found


def mam(bench, first: int = 0) -> dict[int, bytes]:
    return {i: v for i, (_, v) in values(bench.data(read_attribute(first=first))).items()}


def number(value: bytes) -> int:
    return int.from_bytes(value, "big")


# -- reading ------------------------------------------------------------------------------


def test_no_medium_is_not_ready_for_read_and_write(bench):
    assert sense(bench.run(PBS_READ_ATTRIBUTE)).code == (2, 0x3A, 0x00)
    assert sense(put(bench, attribute(0x0800, b"Proxmox\0"))).code == (2, 0x3A, 0x00)


def test_pbs_read_has_exact_lengths_formats_and_read_only_flags(bench):
    cart = bench.load()
    found = values(bench.data(PBS_READ_ATTRIBUTE))
    for identifier, (flags, value) in found.items():
        spec = ATTRIBUTES[identifier]
        assert len(value) == spec.length, hex(identifier)
        assert flags == (0x80 if spec.read_only else 0) | spec.format, hex(identifier)
    date = found[0x0406][1]
    assert len(date) == 8 and date.isdigit() and date.decode() == cart.meta["manufactured"]
    assert number(found[0x0220][1]) == 0 and number(found[0x0221][1]) == 0
    assert number(found[0x0003][1]) == 1                      # load count
    assert number(found[0x0001][1]) == cart.capacity // MIB
    assert number(found[0x0402][1]) == 960 and number(found[0x0403][1]) == 127
    assert number(found[0x0405][1]) == media.GENERATIONS[8].density
    assert number(found[0x0408][1]) == 0x00                   # data medium
    assert found[0x0806][1] == cart.barcode.encode().ljust(32)
    drive = bench.drive.identity
    assert found[0x020A][1] == drive.vendor.encode().ljust(8) + drive.serial.encode().ljust(32)
    assert 0x020B not in found                                # loaded once: one load recorded
    assert 0x0800 not in found                                # never written


def test_allocation_cuts_data_but_not_available_data(bench):
    bench.load()
    full = bench.data(PBS_READ_ATTRIBUTE)
    cut = bench.data(read_attribute(allocation=16))
    assert cut == full[:16] and int.from_bytes(cut[:4], "big") == len(full) - 4


def test_first_attribute_id_filters_and_past_the_last_gives_no_data(bench):
    bench.load()
    assert min(mam(bench, first=0x0400)) == 0x0400
    assert min(mam(bench, first=0x0401)) == 0x0401
    assert bench.data(read_attribute(first=0x0FFF)) == bytes(4)


def test_attribute_list_supported_list_volumes_and_partitions(bench):
    bench.load()
    present = list(mam(bench))
    listing = bench.data(read_attribute(service_action=0x01))
    assert int.from_bytes(listing[:4], "big") == len(listing) - 4
    assert [number(listing[i:i + 2]) for i in range(4, len(listing), 2)] == present
    supported = bench.data(read_attribute(service_action=0x05, first=0x0800))
    assert [number(supported[i:i + 2]) for i in range(4, len(supported), 2)] == \
        [i for i in sorted(ATTRIBUTES) if i >= 0x0800]
    assert bench.data(read_attribute(service_action=0x02)) == bytes([0, 2, 0, 1])
    assert bench.data(read_attribute(service_action=0x03)) == bytes([0, 2, 0, 1])


def test_bad_service_action_partition_and_volume_are_invalid_fields(bench):
    bench.load()
    for cdb, pointer in ((read_attribute(service_action=0x04), 1), (read_attribute(partition=1), 7),
                         (read_attribute(volume=1), 5)):
        s = sense(bench.run(cdb))
        assert s.code == (5, 0x24, 0x00) and s.field_pointer == pointer


def test_cleaning_and_worm_cartridges_report_their_medium_type(bench):
    cleaning = bench.load(CLEANING_SLOT)
    found = mam(bench)
    assert number(found[0x0408]) == 0x01
    assert number(found[0x0409]) == cleaning.meta["cleaning_cycles_left"] > 0
    bench.unload()
    bench.load(SLOT1 + 8)  # the WORM cartridge follows the eight data cartridges
    found = mam(bench)
    assert number(found[0x0408]) == 0x80 and number(found[0x0409]) == 0


def test_usage_in_mib_for_the_life_and_this_load(bench):
    bench.load()
    ok(bench.run(write(2 * MIB), os.urandom(2 * MIB)))
    found = mam(bench)
    assert number(found[0x0220]) == 2 and number(found[0x0222]) == 2
    assert number(found[0x0000]) == number(found[0x0001]) - 2
    bench.unload()
    bench.load()
    ok(bench.run(bytes([0x01, 0, 0, 0, 0, 0])))
    ok(bench.run(bytes([0x08, 0x02, 0x20, 0x00, 0x00, 0x00])))
    found = mam(bench)
    assert number(found[0x0220]) == 2 and number(found[0x0222]) == 0
    assert number(found[0x0221]) == 2 and number(found[0x0223]) == 2
    assert number(found[0x0003]) == 2
    assert 0x020B in found


def test_format_counts_initializations(bench):
    bench.load()
    ok(bench.run(bytes([0x04, 0, 0, 0, 0, 0])))
    assert number(mam(bench)[0x0007]) == 1


# -- writing ------------------------------------------------------------------------------

PBS_ATTRIBUTES = {
    0x0800: b"Proxmox\0",
    0x0801: b"Proxmox Backup Server".ljust(32, b"\0"),
    0x0802: b"3.2.3".ljust(8, b"\0"),
    0x0803: b"tape-label-0001".ljust(160, b"\0"),
    0x0808: b"pool-a".ljust(160, b"\0"),
}


def test_pbs_writes_one_attribute_per_command_and_they_persist(bench):
    cart = bench.load()
    for identifier, value in PBS_ATTRIBUTES.items():
        ok(put(bench, attribute(identifier, value, TEXT if len(value) == 160 else ASCII)))
    found = values(bench.data(PBS_READ_ATTRIBUTE))
    for identifier, value in PBS_ATTRIBUTES.items():
        assert found[identifier] == (ATTRIBUTES[identifier].format, value)
    on_disk = json.loads((cart.directory / "meta.json").read_text())["attributes"]
    assert bytes.fromhex(on_disk["0800"]) == b"Proxmox\0"


def test_zero_length_deletes_as_pbs_does_on_format(bench):
    bench.load()
    for identifier, value in PBS_ATTRIBUTES.items():
        ok(put(bench, attribute(identifier, value)))
    for identifier in PBS_ATTRIBUTES:
        ok(put(bench, attribute(identifier, b"")))
    found = mam(bench)
    assert not set(PBS_ATTRIBUTES) & set(found)
    listing = bench.data(read_attribute(service_action=0x01))
    assert 0x0800 not in [number(listing[i:i + 2]) for i in range(4, len(listing), 2)]


def test_many_attributes_in_one_command_and_short_ascii_is_padded(bench):
    bench.load()
    ok(put(bench, attribute(0x0806, b"CUSTOM01"), attribute(0x0807, b"host"), attribute(0x0805, b"\x01", 0)))
    found = mam(bench)
    assert found[0x0806] == b"CUSTOM01".ljust(32) and found[0x0807] == b"host".ljust(80)
    assert found[0x0805] == b"\x01"


@pytest.mark.parametrize("bad, pointer", [
    (attribute(0x0003, bytes(8), 0), 4 + 13),      # read-only load count
    (attribute(0x1234, b"x"), 4 + 13),             # unknown
    (attribute(0x0800, b"123456789"), 4 + 13 + 3),  # longer than 8
    (attribute(0x0820, bytes(10), 0), 4 + 13 + 3),  # a binary value of the wrong length
], ids=["read-only", "unknown", "too-long", "short-binary"])
def test_a_bad_attribute_rejects_the_whole_list(bench, bad, pointer):
    cart = bench.load()
    ok(put(bench, attribute(0x0800, b"Original")))
    before = dict(cart.meta["attributes"])
    reply = put(bench, attribute(0x0800, b"Changed!"), bad)
    s = sense(reply)
    assert s.code == (5, 0x26, 0x00) and s.field_pointer == pointer
    assert cart.meta["attributes"] == before and mam(bench)[0x0800] == b"Original"


def test_inconsistent_parameter_lengths_are_list_length_errors(bench):
    bench.load()
    data = parameter_list(attribute(0x0800, b"Proxmox\0"))
    assert sense(bench.run(write_attribute(len(data) - 1), data[:-1])).code == (5, 0x1A, 0x00)
    assert sense(bench.run(write_attribute(2), data[:2])).code == (5, 0x1A, 0x00)
    overlong = (len(data) + 10).to_bytes(4, "big") + data[4:]
    assert sense(bench.run(write_attribute(len(overlong)), overlong)).code == (5, 0x1A, 0x00)
    ok(bench.run(write_attribute(0)))
    assert 0x0800 not in mam(bench)


def test_volume_change_reference_counts_the_first_change_of_each_load(bench):
    bench.load()
    assert number(mam(bench)[0x0009]) == 0
    ok(put(bench, attribute(0x0800, b"Proxmox\0")))
    ok(put(bench, attribute(0x0801, b"x" * 32)))
    assert number(mam(bench)[0x0009]) == 1
    bench.unload()
    bench.load()
    assert number(mam(bench)[0x0009]) == 1
    ok(bench.run(write(512), os.urandom(512)))
    assert number(mam(bench)[0x0009]) == 2
    bench.unload()
    bench.load()
    ok(bench.run(bytes([0x10, 0, 0, 0, 1, 0])))   # a filemark alone changes the volume
    ok(bench.run(bytes([0x10, 0, 0, 0, 1, 0])))
    assert number(mam(bench)[0x0009]) == 3
    bench.unload()
    bench.load()
    ok(bench.run(bytes([0x19, 0, 0, 0, 0, 0])))   # so does an erase
    assert number(mam(bench)[0x0009]) == 4


@pytest.mark.vtape
def test_pbs_attribute_round_trip_over_the_socket(vtape_library):
    drive = load(vtape_library)
    data = parameter_list(attribute(0x0800, PBS_ATTRIBUTES[0x0800]))
    ok(drive.execute(write_attribute(len(data)), data))
    reply = ok(drive.execute(PBS_READ_ATTRIBUTE, data_in_len=0x8000))
    found = values(bytes(reply.data))
    assert reply.residual == 0x8000 - len(reply.data)
    assert found[0x0800] == (ASCII, PBS_ATTRIBUTES[0x0800])
    assert len(found[0x0406][1]) == 8 and len(found[0x0220][1]) == len(found[0x0221][1]) == 8
    with vtape_library.client("changer") as changer:
        ok(changer.execute(bytes([0xA5, 0, 0, 0]) + DRIVE0.to_bytes(2, "big") + SLOT1.to_bytes(2, "big") + bytes(4)))
    assert sense(drive.execute(PBS_READ_ATTRIBUTE, data_in_len=0x8000)).code == (2, 0x3A, 0x00)
    drive.close()
