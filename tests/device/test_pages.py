"""Parsers of the drive's and changer's data pages, against byte strings laid out as SSC-4,
SPC-4 and SMC-3 define them."""
import pytest

from tapefs.device import encryption, mam
from tapefs.device.element_status import (
    DATA_TRANSFER,
    IMPORT_EXPORT,
    STORAGE,
    parse_address_assignment,
    parse_element_status,
)
from tapefs.device.log_pages import parse_device_status, parse_log_page
from tapefs.device.mode_pages import build_mode_select_10, parse_data_compression, parse_mode_sense_10, with_compression
from tapefs.device.position import parse_long_form
from tapefs.device.tape_alert import flag_name, parse_tape_alert_response
from tapefs.device.volume_statistics import parse_volume_statistics


def u(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def log_page(code: int, parameters: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(u(c, 2) + b"\x00" + bytes([len(v)]) + v for c, v in parameters)
    return bytes([code, 0]) + u(len(body), 2) + body


def test_read_position_long_form():
    data = bytes([0x80, 0, 0, 0]) + u(0, 4) + u(7, 8) + u(2, 8) + bytes(8)
    position = parse_long_form(data)
    assert (position.partition, position.block_number, position.file_number) == (0, 7, 2)
    assert position.beginning_of_partition and not position.end_of_partition


def test_read_position_must_be_exactly_32_bytes():
    with pytest.raises(ValueError, match="31 bytes"):
        parse_long_form(bytes(31))


MODE_SENSE_0F = (u(0x1E, 2) + bytes([0x88, 0x10, 0, 0]) + u(8, 2)      # header: LTO-8, buffered mode 1
                 + bytes([0x5E, 0, 0, 0, 0, 0, 0, 0])                  # block descriptor: density 5E, variable
                 + bytes([0x0F, 0x0E, 0xC0, 0x80]) + u(1, 4) + u(1, 4) + bytes(4))


def test_mode_sense_with_block_descriptor_and_compression_page():
    mode = parse_mode_sense_10(MODE_SENSE_0F, 0x0F)
    assert (mode.medium_type, mode.density_code, mode.block_length, mode.buffered_mode) == (0x88, 0x5E, 0, 1)
    assert not mode.write_protect
    assert parse_data_compression(mode.page).flags.dce


def test_mode_select_echoes_header_and_descriptor_with_new_values():
    mode = parse_mode_sense_10(MODE_SENSE_0F, 0x0F)
    page = with_compression(mode.page, False)
    data = build_mode_select_10(mode, buffered_mode=1, block_length=0x10000, page=page)
    assert data[:8] == u(0, 2) + bytes([0x88, 0x10, 0, 0]) + u(8, 2)
    assert data[8:16] == bytes([0x5E, 0, 0, 0, 0, 0x01, 0x00, 0x00])
    assert data[16:18] == b"\x0f\x0e" and data[18] & 0x80 == 0


def test_mode_sense_shorter_than_announced_is_rejected():
    with pytest.raises(ValueError, match="announces"):
        parse_mode_sense_10(MODE_SENSE_0F[:20], 0x0F)


def test_log_page_parameters_and_wrong_page():
    data = log_page(0x17, [(0, b"\x01"), (1, u(3, 4))])
    assert [(p.code, p.as_int()) for p in parse_log_page(data, 0x17)] == [(0, 1), (1, 3)]
    with pytest.raises(ValueError, match="asked for log page 0x12"):
        parse_log_page(data, 0x12)


def test_log_page_cut_short_is_rejected():
    with pytest.raises(ValueError, match="announces"):
        parse_log_page(log_page(0x17, [(1, u(3, 4))])[:-2], 0x17)


def test_device_status_page():
    data = log_page(0x11, [(0, bytes([0x81, 0x13, 0x05, 0x00]))])
    status = parse_device_status(data)
    assert status.prevent_removal and status.medium_present and status.medium_threaded
    assert status.activity_name == "reading"


def test_device_status_without_dinit_is_not_valid():
    with pytest.raises(ValueError, match="DINIT"):
        parse_device_status(log_page(0x11, [(0, bytes([0x00, 0, 0, 0]))]))


def test_tape_alert_bitmap_flag_1_is_the_top_bit():
    bitmap = (1 << 63) | (1 << (64 - 0x14)) | 1
    flags = parse_tape_alert_response(log_page(0x12, [(0, u(bitmap, 8))]))
    assert flags == [0x01, 0x14, 0x40]
    assert flag_name(0x14) == "clean now"
    assert "reserved" in flag_name(0x40)


def test_volume_statistics():
    data = log_page(0x17, [(0, b"\x01"), (1, u(12, 4)), (0x101, u(3200, 4)), (0x102, u(1600, 4)),
                           (0x42, b"VT0001L8".ljust(32)), (0x80, b"\x01")])
    stats = parse_volume_statistics(data)
    assert stats.volume_mounts == 12 and stats.barcode == "VT0001L8" and stats.write_protect
    assert stats.medium_passes == 3200 and stats.wearout == pytest.approx(0.2)


def test_volume_statistics_without_page_valid_is_rejected():
    with pytest.raises(ValueError, match="not valid"):
        parse_volume_statistics(log_page(0x17, [(0, b"\x00"), (1, u(1, 4))]))


def attribute(attribute_id: int, fmt: int, value: bytes) -> bytes:
    return u(attribute_id, 2) + bytes([0x80 | fmt]) + u(len(value), 2) + value


def test_mam_attributes_and_lengths_checked_against_spc():
    body = (attribute(0x0003, 0, u(5, 8)) + attribute(0x0406, 1, b"20240131")
            + attribute(0x0406, 1, b"202401310000") + attribute(0x0806, 1, b"VT0001L8".ljust(32)))
    attributes = mam.parse_attributes(u(len(body), 4) + body)
    assert [(a.id, a.value) for a in attributes] == [(0x0003, 5), (0x0406, "20240131"), (0x0806, "VT0001L8")]
    assert attributes[0].name == "Load Count" and attributes[0].read_only


def test_mam_write_attribute_pads_and_deletes():
    data = mam.build_write_attribute(0x0800, "tapefs")
    assert data == u(13, 4) + u(0x0800, 2) + b"\x01" + u(8, 2) + b"tapefs  "
    assert mam.build_write_attribute(0x0803, None) == u(5, 4) + u(0x0803, 2) + b"\x02" + u(0, 2)
    with pytest.raises(ValueError, match="at most 8"):
        mam.build_write_attribute(0x0800, "much too long")


def test_encryption_capabilities_and_status():
    descriptor = bytes([1, 0]) + u(0x14, 2) + bytes([0x3A, 0x00]) + u(0x20, 2) + u(0x0C, 2) + u(32, 2) + bytes(8) + u(0x00010014, 4)
    page = u(0x0010, 2) + u(40, 2) + bytes([0x01]) + bytes(15) + descriptor
    assert encryption.find_aes_gcm_algorithm(page) == 1
    status = u(0x0020, 2) + u(0x14, 2) + bytes([0x42, 2, 3, 1]) + u(7, 4) + bytes(12)
    parsed = encryption.parse_status(status)
    assert parsed.mode == "mixed" and parsed.key_instance_counter == 7


def test_set_data_encryption_page():
    page = encryption.build_set_data_encryption(bytes(range(32)), 1)
    assert page[:4] == u(0x0010, 2) + u(48, 2)
    assert page[4:9] == bytes([0x40, 0, 2, 3, 1]) and page[18:20] == u(32, 2) and page[20:] == bytes(range(32))
    with pytest.raises(ValueError, match="32 bytes"):
        encryption.build_set_data_encryption(b"short", 1)


ADDRESS_ASSIGNMENT = bytes([23, 0, 0, 0, 0x1D, 0x12]) + u(1, 2) + u(1, 2) + u(0x400, 2) + u(16, 2) + u(0x300, 2) + u(2, 2) + u(0x100, 2) + u(2, 2) + bytes(2)


def test_address_assignment_page():
    assignment = parse_address_assignment(ADDRESS_ASSIGNMENT)
    assert (assignment.first_storage, assignment.storage, assignment.import_export) == (0x400, 16, 2)
    assert assignment.count(DATA_TRANSFER) == 2


def element_page(element_type: int, descriptors: list[bytes], voltag: bool) -> bytes:
    length = len(descriptors[0]) if descriptors else 0
    return (bytes([element_type, 0x80 if voltag else 0]) + u(length, 2) + b"\x00"
            + u(length * len(descriptors), 3) + b"".join(descriptors))


def storage_descriptor(address: int, barcode: str | None) -> bytes:
    flags = 0x09 if barcode else 0x08
    return u(address, 2) + bytes([flags, 0, 0, 0, 0, 0, 0, 0]) + u(0, 2) + (barcode or "").encode().ljust(32, b" " if barcode else b"\0") + bytes(4) + bytes(4)


def status_data(pages: bytes, count: int) -> bytes:
    return u(0, 2) + u(count, 2) + b"\x00" + u(len(pages), 3) + pages


def test_element_status_storage_with_volume_tags():
    pages = element_page(STORAGE, [storage_descriptor(0x400, "VT0001L8"), storage_descriptor(0x401, None)], True)
    elements = parse_element_status(status_data(pages, 2))
    assert [(e.address, e.full, e.volume_tag) for e in elements] == [(0x400, True, "VT0001L8"), (0x401, False, None)]


def test_element_status_drive_serial_from_dvcid():
    identifier = bytes([2, 1, 0, 34]) + b"IBM     " + b"ULT3580-TD8     " + b"SER0000001"
    descriptor = u(0x100, 2) + bytes([0x09, 0, 0, 0, 0, 0, 0, 0x80]) + u(0x400, 2) + identifier
    elements = parse_element_status(status_data(element_page(DATA_TRANSFER, [descriptor], False), 1),
                                    with_identifier=True)
    assert (elements[0].vendor, elements[0].product, elements[0].serial) == ("IBM", "ULT3580-TD8", "SER0000001")
    assert elements[0].source_address == 0x400


def test_element_status_serial_only_identifier():
    descriptor = u(0x100, 2) + bytes([0x08, 0, 0, 0, 0, 0, 0, 0]) + u(0, 2) + bytes([2, 0, 0, 6]) + b"ABC123"
    elements = parse_element_status(status_data(element_page(DATA_TRANSFER, [descriptor], False), 1),
                                    with_identifier=True)
    assert elements[0].serial == "ABC123" and elements[0].source_address is None


def test_element_status_header_only_means_no_elements():
    assert parse_element_status(status_data(b"", 0)) == []


def test_element_status_announcing_more_than_sent_parses_what_arrived():
    pages = element_page(IMPORT_EXPORT, [storage_descriptor(0x300, None), storage_descriptor(0x301, "VT0009L8")], True)
    data = status_data(pages, 2)
    truncated = data[:-30]
    assert [e.address for e in parse_element_status(truncated)] == [0x300]


def test_element_status_zero_descriptor_length_does_not_loop():
    page = bytes([STORAGE, 0x80]) + u(0, 2) + b"\x00" + u(52, 3) + bytes(52)
    assert parse_element_status(status_data(page, 1)) == []
