"""CDB codecs against the exact bytes PBS and mtx send (as observed through the LD_PRELOAD shim)."""
import pytest

from tapefs.scsi import cdb


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize("built, expected", [
    (cdb.inquiry(36), "12 00 00 00 24 00"),
    (cdb.inquiry(255, vpd_page=0x80), "12 01 80 00 ff 00"),
    (cdb.test_unit_ready(), "00 00 00 00 00 00"),
    (cdb.rewind(), "01 00 00 00 00 00"),
    (cdb.load_unload(True), "1b 00 00 00 01 00"),
    (cdb.load_unload(False), "1b 00 00 00 00 00"),
    (cdb.space(cdb.SPACE_FILEMARKS, 1), "11 01 00 00 01 00"),
    (cdb.space(cdb.SPACE_FILEMARKS, -2), "11 01 ff ff fe 00"),
    (cdb.space(cdb.SPACE_BLOCKS, -1), "11 00 ff ff ff 00"),
    (cdb.space(cdb.SPACE_END_OF_DATA, 0), "11 03 00 00 00 00"),
    (cdb.space(cdb.SPACE_FILEMARKS, 0x800000), "91 01 00 00 00 00 00 00 00 80 00 00 00 00 00 00"),
    (cdb.space(cdb.SPACE_FILEMARKS, -0x800001), "91 01 00 00 ff ff ff ff ff 7f ff ff 00 00 00 00"),
    (cdb.locate_16(4, dest_type=cdb.LOCATE_FILE), "92 08 00 00 00 00 00 00 00 00 00 04 00 00 00 00"),
    (cdb.read_position(), "34 06 00 00 00 00 00 00 00 00"),
    (cdb.read_6(0x40000), "08 02 04 00 00 00"),
    (cdb.write_6(0x40000), "0a 00 04 00 00 00"),
    (cdb.write_filemarks_6(1, immediate=True), "10 01 00 00 01 00"),
    (cdb.write_filemarks_6(0), "10 00 00 00 00 00"),
    (cdb.erase(long=True), "19 01 00 00 00 00"),
    (cdb.erase(), "19 00 00 00 00 00"),
    (cdb.format_medium(), "04 00 00 00 00 00"),
    (cdb.format_medium(immediate=True), "04 01 00 00 00 00"),
    (cdb.prevent_allow_medium_removal(True), "1e 00 00 00 01 00"),
    (cdb.mode_sense_10(0x0F, 4096), "5a 00 0f 00 00 00 00 10 00 00"),
    (cdb.mode_select_10(0x20), "55 10 00 00 00 00 00 00 20 00"),
    (cdb.log_sense(0x11, 0x2000), "4d 00 51 00 00 00 00 20 00 00"),
    (cdb.log_sense(0x12, 512), "4d 00 52 00 00 00 00 02 00 00"),
    (cdb.read_attribute(0x8000), "8c 00 00 00 00 00 00 00 00 00 00 00 80 00 00 00"),
    (cdb.write_attribute(0x20), "8d 00 00 00 00 00 00 00 00 00 00 00 00 20 00 00"),
    (cdb.report_density_support(0x2000), "44 00 00 00 00 00 00 20 00 00"),
    (cdb.security_protocol_in(0x10, 8196), "a2 20 00 10 00 00 00 00 20 04 00 00"),
    (cdb.security_protocol_out(0x10, 52), "b5 20 00 10 00 00 00 00 00 34 00 00"),
    (cdb.mode_sense_6(0x1D, 0xFF, disable_block_descriptors=True), "1a 08 1d 00 ff 00"),
    (cdb.read_element_status(2), "b8 12 00 00 03 e8 00 00 ff ff 00 00"),
    (cdb.read_element_status(4, voltag=False, dvcid=True), "b8 04 00 00 03 e8 01 00 ff ff 00 00"),
    (cdb.move_medium(0, 0x400, 0x100), "a5 00 00 00 04 00 01 00 00 00 00 00"),
    (cdb.initialize_element_status(), "07 00 00 00 00 00"),
])
def test_cdb_bytes_match_what_pbs_and_mtx_send(built, expected):
    assert built == h(expected)


def test_read_element_status_decodes_mtx_request():
    parsed = cdb.READ_ELEMENT_STATUS_CDB.parse(h("b8 12 04 00 00 02 00 00 01 78 00 00"))
    assert parsed.flags.voltag and parsed.flags.element_type == 2
    assert (parsed.starting_address, parsed.number_of_elements, parsed.allocation_length) == (0x400, 2, 376)


@pytest.mark.parametrize("text", ["12 00 00 00 24 00", "120000002400", "0x12,0x00,0x00,0x00,0x24,0x00", "12:00:00:00:24:00"])
def test_hex_cdb_forms_are_accepted(text):
    assert cdb.parse_hex_cdb(text) == h("12 00 00 00 24 00")


@pytest.mark.parametrize("text, message", [("12 00", "6 to 16"), ("zz 00 00 00 00 00", "not a CDB"),
                                           ("00" * 17, "6 to 16")])
def test_bad_hex_cdb_is_rejected(text, message):
    with pytest.raises(ValueError, match=message):
        cdb.parse_hex_cdb(text)


def test_command_names():
    assert cdb.command_name(cdb.read_6(10)) == "READ(6)"
    assert cdb.command_name(h("ff 00 00 00 00 00")) == "opcode 0xff"
