"""SECURITY PROTOCOL IN/OUT (tape data encryption) at the CDB level, and encryption at rest."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.cdb import REWIND, load, ok, read, sense, write, write_filemarks
from tests.helpers.status_bench import StatusBench

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
MARKER = b"PLAINTEXT-MARKER-0123456789"
RECORD = MARKER * 1000


@pytest.fixture
def bench(tmp_path):
    bench = StatusBench(tmp_path / "lib")
    yield bench
    bench.library.close()


def spin(protocol: int, page: int, allocation: int = 8196, flags: int = 0) -> bytes:
    return bytes([0xA2, protocol]) + page.to_bytes(2, "big") + bytes([flags, 0]) \
        + allocation.to_bytes(4, "big") + bytes(2)


def spout(length: int, protocol: int = 0x20, page: int = 0x0010) -> bytes:
    return bytes([0xB5, protocol]) + page.to_bytes(2, "big") + bytes(2) + length.to_bytes(4, "big") + bytes(2)


def set_data_encryption(encryption: int, decryption: int, key: bytes = b"", algorithm: int = 1,
                        key_format: int = 0, kad: bytes = b"", page_code: int = 0x0010,
                        length_adjust: int = 0) -> bytes:
    body = bytes([0x40, 0x00, encryption, decryption, algorithm, key_format, 0]) + bytes(7) \
        + len(key).to_bytes(2, "big") + key + kad
    return page_code.to_bytes(2, "big") + (len(body) + length_adjust).to_bytes(2, "big") + body


def ukad(value: bytes) -> bytes:
    return bytes([0x00, 0x00]) + len(value).to_bytes(2, "big") + value


def send(bench, page: bytes):
    return bench.run(spout(len(page)), page)


def status(bench) -> bytes:
    return bench.data(spin(0x20, 0x0020))


def modes(bench) -> tuple[int, int]:
    page = status(bench)
    return page[5], page[6]


def key_instance_counter(bench) -> int:
    return int.from_bytes(status(bench)[8:12], "big")


def next_block_status(bench) -> tuple[int, int]:
    """(logical object number, encryption status) of the next block."""
    page = bench.data(spin(0x20, 0x0021))
    assert page[:4] == bytes([0x00, 0x21, 0x00, 0x0C]) and len(page) == 16
    return int.from_bytes(page[4:12], "big"), page[12] & 0x0F


# -- SPIN -----------------------------------------------------------------------------------


def test_protocol_information_lists_tape_encryption_and_no_certificate(bench):
    assert bench.data(spin(0x00, 0x0000)) == bytes(6) + bytes([0, 2, 0x00, 0x20])
    assert bench.data(spin(0x00, 0x0001)) == bytes(4)


def test_pbs_capabilities_page_without_a_medium(bench):
    page = bench.data(bytes.fromhex("a2 20 00 10 00 00 00 00 20 04 00 00"))
    assert len(page) == 44 and page[:4] == bytes([0x00, 0x10, 0x00, 40])
    descriptor = page[20:]
    assert descriptor[0] == 1                                     # algorithm index
    assert descriptor[2:4] == bytes([0x00, 0x14])                 # PBS checks it
    assert descriptor[4] == 0x3A                                  # encrypt and decrypt capable (2, 2)
    assert int.from_bytes(descriptor[10:12], "big") == 32         # key size
    assert int.from_bytes(descriptor[20:24], "big") == 0x00010014  # AES-256-GCM


def test_support_pages_and_key_formats(bench):
    page = bench.data(spin(0x20, 0x0000))
    assert page[:4] == bytes([0, 0, 0, 12])
    assert [int.from_bytes(page[i:i + 2], "big") for i in range(4, 16, 2)] == \
        [0x0000, 0x0001, 0x0010, 0x0011, 0x0020, 0x0021]
    assert bench.data(spin(0x20, 0x0001)) == bytes([0, 1, 0, 2, 0x00, 0x10])
    assert bench.data(spin(0x20, 0x0011)) == bytes([0, 0x11, 0, 1, 0x00])


def test_status_of_a_fresh_drive_is_off(bench):
    page = bench.data(bytes.fromhex("a2 20 00 20 00 00 00 00 20 04 00 00"))
    assert len(page) == 24 and page[:4] == bytes([0x00, 0x20, 0x00, 0x14])
    assert (page[5], page[6]) == (0, 0)


def test_allocation_cuts_the_page(bench):
    assert bench.data(spin(0x20, 0x0010, allocation=8)) == bench.data(spin(0x20, 0x0010))[:8]


def test_next_block_status_needs_a_medium(bench):
    assert sense(bench.run(spin(0x20, 0x0021))).code == (2, 0x3A, 0x00)


@pytest.mark.parametrize("cdb, pointer", [
    (spin(0x21, 0x0000), 1), (spin(0x20, 0x0030), 2), (spin(0x00, 0x0002), 2), (spin(0x20, 0x0020, flags=0x80), 4),
], ids=["protocol", "page", "information-page", "inc-512"])
def test_bad_spin_fields_are_invalid_fields_in_the_cdb(bench, cdb, pointer):
    s = sense(bench.run(cdb))
    assert s.code == (5, 0x24, 0x00) and s.field_pointer == pointer


# -- SPOUT ----------------------------------------------------------------------------------


def test_pbs_turns_mixed_mode_on_and_off(bench):
    ok(send(bench, set_data_encryption(2, 3, KEY)))
    page = status(bench)
    assert (page[5], page[6], page[7]) == (2, 3, 1)
    assert key_instance_counter(bench) == 1
    ok(send(bench, set_data_encryption(0, 0)))
    assert modes(bench) == (0, 0) and key_instance_counter(bench) == 2


def test_stenc_turns_encryption_off_with_a_zero_key(bench):
    ok(send(bench, set_data_encryption(2, 2, KEY)))
    page = set_data_encryption(0, 0, bytes(32))
    assert len(page) == 52
    ok(bench.run(bytes.fromhex("b5 20 00 10 00 00 00 00 00 34 00 00"), page))
    assert modes(bench) == (0, 0)
    assert not bench.drive.cipher.has_key


@pytest.mark.parametrize("pair", [(2, 1), (2, 2), (2, 3)])
def test_every_mode_pair_pbs_knows_is_accepted(bench, pair):
    ok(send(bench, set_data_encryption(*pair, KEY)))
    assert modes(bench) == pair


def test_ukad_is_kept_and_reported_as_key_associated_data(bench):
    ok(send(bench, set_data_encryption(2, 3, KEY, kad=ukad(b"backup-key-7"))))
    page = status(bench)
    assert int.from_bytes(page[2:4], "big") == 0x14 + 4 + 12
    assert page[24] == 0x00 and int.from_bytes(page[26:28], "big") == 12 and page[28:40] == b"backup-key-7"


@pytest.mark.parametrize("page, pointer", [
    (set_data_encryption(2, 3, KEY, page_code=0x0011), 0),
    (set_data_encryption(2, 3, KEY, length_adjust=1), 2),
    (set_data_encryption(2, 3, KEY[:16]), 18),
    (set_data_encryption(2, 3, KEY, algorithm=2), 8),
    (set_data_encryption(2, 3, KEY, key_format=1), 9),
    (set_data_encryption(0, 2, KEY), 7),
    (set_data_encryption(1, 3, KEY), 6),
    (set_data_encryption(2, 3, KEY, kad=ukad(b"x" * 33)), 20 + 32 + 2),
    (set_data_encryption(2, 3, KEY, kad=bytes([0x02, 0, 0, 1, 0])), 20 + 32),
    (set_data_encryption(2, 3, KEY)[:10], 2),
], ids=["page-code", "page-length", "key-length", "algorithm", "key-format", "decrypt-only", "external",
        "ukad-too-long", "kad-type", "short-page"])
def test_bad_set_data_encryption_pages_change_nothing(bench, page, pointer):
    ok(send(bench, set_data_encryption(2, 2, KEY)))
    s = sense(send(bench, page))
    assert s.code == (5, 0x26, 0x00) and s.field_pointer == pointer
    assert modes(bench) == (2, 2) and key_instance_counter(bench) == 1


@pytest.mark.parametrize("cdb, pointer", [(spout(52, protocol=0x00), 1), (spout(52, page=0x0020), 2)],
                         ids=["protocol", "page"])
def test_bad_spout_fields_are_invalid_fields_in_the_cdb(bench, cdb, pointer):
    s = sense(bench.run(cdb, set_data_encryption(2, 3, KEY)))
    assert s.code == (5, 0x24, 0x00) and s.field_pointer == pointer


def test_spout_shorter_than_its_transfer_length_is_a_list_length_error(bench):
    page = set_data_encryption(2, 3, KEY)
    assert sense(bench.run(spout(len(page) + 8), page)).code == (5, 0x1A, 0x00)


# -- the tape --------------------------------------------------------------------------------


def test_next_block_status_tells_plain_encrypted_and_foreign_blocks(bench):
    bench.load()
    assert next_block_status(bench) == (0, 2)          # end of data
    ok(bench.run(write(len(RECORD)), RECORD))
    ok(send(bench, set_data_encryption(2, 3, KEY)))
    ok(bench.run(write(len(RECORD)), RECORD))
    ok(bench.run(write_filemarks(1)))
    ok(bench.run(REWIND))
    assert next_block_status(bench) == (0, 3)
    ok(bench.run(read(len(RECORD))))
    assert next_block_status(bench) == (1, 5)
    ok(send(bench, set_data_encryption(2, 3, OTHER_KEY)))
    assert next_block_status(bench) == (1, 6)
    ok(send(bench, set_data_encryption(0, 0)))
    assert next_block_status(bench) == (1, 6)
    ok(bench.run(bytes([0x11, 0, 0, 0, 1, 0])))         # SPACE 1 block
    assert next_block_status(bench) == (2, 2)          # the filemark


def files_under(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


def test_encrypted_blocks_are_not_stored_in_plain_text_and_need_the_key(bench):
    bench.load()
    ok(send(bench, set_data_encryption(2, 3, KEY)))
    ok(bench.run(write(len(RECORD)), RECORD))
    ok(bench.run(write_filemarks(1)))
    assert not any(MARKER in p.read_bytes() for p in files_under(bench.path / "cartridges"))
    ok(bench.run(REWIND))
    assert bytes(ok(bench.run(read(len(RECORD)))).data) == RECORD
    ok(bench.run(REWIND))
    ok(send(bench, set_data_encryption(2, 2, OTHER_KEY)))
    assert sense(bench.run(read(len(RECORD)))).code == (7, 0x74, 0x03)
    ok(bench.run(REWIND))  # a block that cannot be decrypted is passed over
    ok(send(bench, set_data_encryption(0, 0)))
    assert sense(bench.run(read(len(RECORD)))).code == (7, 0x74, 0x01)


@pytest.mark.vtape
def test_encryption_at_rest_over_the_socket(vtape_library):
    drive = load(vtape_library)
    page = set_data_encryption(2, 3, KEY)
    ok(drive.execute(bytes.fromhex("b5 20 00 10 00 00") + len(page).to_bytes(4, "big") + bytes(2), page))
    reply = ok(drive.execute(bytes.fromhex("a2 20 00 20 00 00 00 00 20 04 00 00"), data_in_len=8196))
    assert (reply.data[5], reply.data[6]) == (2, 3) and reply.residual == 8196 - 24
    record = MARKER + os.urandom(4096)
    ok(drive.execute(write(len(record)), record))
    ok(drive.execute(write_filemarks(1)))
    assert not any(MARKER in p.read_bytes() for p in files_under(vtape_library.path / "cartridges"))
    ok(drive.execute(REWIND))
    reply = ok(drive.execute(bytes.fromhex("a2 20 00 21 00 00 00 00 20 04 00 00"), data_in_len=8196))
    assert reply.data[12] & 0x0F == 5 and reply.residual == 8196 - 16
    ok(drive.execute(bytes.fromhex("b5 20 00 10 00 00 00 00 00 34 00 00"), set_data_encryption(0, 0, bytes(32))))
    assert sense(drive.execute(read(len(record)), data_in_len=len(record))).code == (7, 0x74, 0x01)
    drive.close()
