"""Cartridge storage: O(1) index, truncation, recovery after a crash at any byte."""
from __future__ import annotations

import os

import pytest

from vtape import media
from vtape.cartridge import ENTRY_SIZE, Cartridge, CartridgeError, new_meta


@pytest.fixture
def cartridge(tmp_path):
    cart = Cartridge.create(tmp_path / "VT0001L8", new_meta(media.parse_barcode("VT0001L8"), 1 << 30))
    yield cart
    cart.close()


def fill(cart):
    cart.append_block(b"a" * 100, 100)
    cart.append_block(b"b" * 50, 50)
    cart.append_filemarks(1)
    cart.append_block(b"c" * 10, 10)
    cart.append_filemarks(2)


def test_objects_and_filemarks_are_indexed(cartridge):
    fill(cartridge)
    assert cartridge.count == 6 and list(cartridge.filemarks) == [2, 4, 5]
    assert cartridge.data_offset(3) == 150 and cartridge.data_end == 160
    assert cartridge.read_payload(cartridge.entry(3)) == b"c" * 10
    assert cartridge.filemarks_before(3) == 1 and cartridge.next_filemark(3) == 4
    assert cartridge.previous_filemark(4) == 2 and cartridge.previous_filemark(2) is None


def test_truncate_drops_later_objects_and_data(cartridge):
    fill(cartridge)
    cartridge.truncate(3)
    assert cartridge.count == 3 and list(cartridge.filemarks) == [2] and cartridge.data_end == 150
    assert os.path.getsize(cartridge.directory / "data") == 150
    assert os.path.getsize(cartridge.directory / "index") == 3 * ENTRY_SIZE


def test_reopen_restores_everything(cartridge):
    fill(cartridge)
    again = Cartridge(cartridge.directory)
    assert (again.count, list(again.filemarks), again.data_end) == (6, [2, 4, 5], 160)
    again.close()


@pytest.mark.parametrize("cut", range(1, ENTRY_SIZE))
def test_a_torn_index_entry_is_cut_off(cartridge, cut):
    fill(cartridge)
    cartridge.append_block(b"d" * 20, 20)
    index = cartridge.directory / "index"
    os.truncate(index, os.path.getsize(index) - cut)  # the last entry was half written
    again = Cartridge(cartridge.directory)
    assert again.count == 6 and again.data_end == 160  # its data is dropped with it
    assert os.path.getsize(cartridge.directory / "data") == 160
    again.close()


def test_data_without_an_entry_is_cut_off(cartridge):
    fill(cartridge)
    with open(cartridge.directory / "data", "ab") as f:
        f.write(b"payload whose entry never got written")
    again = Cartridge(cartridge.directory)
    assert again.count == 6 and os.path.getsize(cartridge.directory / "data") == 160
    again.close()


def test_an_entry_pointing_past_the_data_is_cut_off(cartridge):
    fill(cartridge)
    cartridge.append_block(b"e" * 1000, 1000)
    os.truncate(cartridge.directory / "data", 160 + 500)  # payload only half on disk
    again = Cartridge(cartridge.directory)
    assert again.count == 6 and again.data_end == 160
    again.close()


def test_a_corrupt_entry_in_the_middle_is_reported_on_read(cartridge):
    fill(cartridge)
    with open(cartridge.directory / "index", "r+b") as f:
        f.seek(ENTRY_SIZE + 3)
        f.write(b"\xff")
    with pytest.raises(CartridgeError, match="index entry 1 is corrupt"):
        cartridge.entry(1)
