"""sg_io_hdr v3 packing against the x86_64 field offsets of <scsi/sg.h>."""
import struct

import pytest

from tapefs.scsi import sg_io

# (field, offset, size) exactly as the kernel lays out struct sg_io_hdr on LP64.
KERNEL_LAYOUT = [
    ("interface_id", 0, 4), ("dxfer_direction", 4, 4), ("cmd_len", 8, 1), ("mx_sb_len", 9, 1),
    ("iovec_count", 10, 2), ("dxfer_len", 12, 4), ("dxferp", 16, 8), ("cmdp", 24, 8), ("sbp", 32, 8),
    ("timeout", 40, 4), ("flags", 44, 4), ("pack_id", 48, 4), ("usr_ptr", 56, 8), ("status", 64, 1),
    ("masked_status", 65, 1), ("msg_status", 66, 1), ("sb_len_wr", 67, 1), ("host_status", 68, 2),
    ("driver_status", 70, 2), ("resid", 72, 4), ("duration", 76, 4), ("info", 80, 4),
]
FORMATS = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}


def test_header_is_88_bytes():
    assert sg_io.SG_IO_HDR.sizeof() == sg_io.SG_IO_HDR_SIZE == 88


def test_every_field_lands_at_its_kernel_offset():
    values = {name: (index + 1) * 0x11 & ((1 << (8 * size - 1)) - 1) for index, (name, _, size) in enumerate(KERNEL_LAYOUT)}
    packed = sg_io.SG_IO_HDR.build(values)
    for name, offset, size in KERNEL_LAYOUT:
        (found,) = struct.unpack_from(FORMATS[size], packed, offset)
        assert found == values[name], name


def test_request_header_fields_and_zeroed_outputs():
    packed = sg_io.build_sg_io_hdr(direction=sg_io.SG_DXFER_FROM_DEV, cdb_address=0x1111_2222_3333, cdb_length=6,
                                   data_address=0x4444_5555_6666, data_length=36, sense_address=0x7777_8888_9999,
                                   sense_length=64, timeout_ms=600_000)
    assert packed[0:4] == b"S\0\0\0"
    assert struct.unpack_from("<i", packed, 4)[0] == -3
    assert (packed[8], packed[9]) == (6, 64)
    assert struct.unpack_from("<I", packed, 12)[0] == 36
    assert struct.unpack_from("<QQQ", packed, 16) == (0x4444_5555_6666, 0x1111_2222_3333, 0x7777_8888_9999)
    assert struct.unpack_from("<I", packed, 40)[0] == 600_000
    assert bytes(packed[64:88]) == bytes(24)


def test_reply_fields_parse_from_their_offsets():
    raw = bytearray(88)
    raw[64], raw[65], raw[67] = 0x02, 0x01, 18
    struct.pack_into("<HHiII", raw, 68, 0, 0x08, 36, 12, 1)
    reply = sg_io.SG_IO_HDR.parse(bytes(raw))
    assert (reply.status, reply.masked_status, reply.sb_len_wr) == (0x02, 0x01, 18)
    assert (reply.driver_status, reply.resid, reply.duration, reply.info) == (0x08, 36, 12, 1)


@pytest.mark.parametrize("direction", [sg_io.SG_DXFER_NONE, sg_io.SG_DXFER_TO_DEV, sg_io.SG_DXFER_FROM_DEV])
def test_directions_are_the_kernel_constants(direction):
    assert direction in (-1, -2, -3)
    packed = sg_io.build_sg_io_hdr(direction=direction, cdb_address=1, cdb_length=6, data_address=0, data_length=0,
                                   sense_address=2, sense_length=32, timeout_ms=1)
    assert struct.unpack_from("<i", packed, 4)[0] == direction


def test_sg_io_on_a_non_sg_character_device_is_refused():
    from tapefs.scsi.errors import NotAScsiDevice
    with pytest.raises(NotAScsiDevice, match="/dev/null"):
        sg_io.SgIoTransport("/dev/null")
