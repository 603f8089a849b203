"""Sense decoding (fixed and descriptor format) and the typed error for every condition a
tape drive or changer reports, from the bytes a device sends."""
import pytest

from tapefs.scsi import errors
from tapefs.scsi.sense import Sense, SenseFormatError, decode_sense


def fixed(key: int, asc: int, ascq: int, *, info: int | None = None, filemark=False, eom=False, ili=False,
          field_pointer: int | None = None, in_cdb=True, deferred=False) -> bytes:
    raw = bytearray(18)
    raw[0] = (0x71 if deferred else 0x70) | (0x80 if info is not None else 0)
    raw[2] = (0x80 if filemark else 0) | (0x40 if eom else 0) | (0x20 if ili else 0) | key
    raw[3:7] = (info or 0).to_bytes(4, "big", signed=True)
    raw[7] = 10
    raw[12], raw[13] = asc, ascq
    if field_pointer is not None:
        raw[15] = 0x80 | (0x40 if in_cdb else 0)
        raw[16:18] = field_pointer.to_bytes(2, "big")
    return bytes(raw)


CONDITIONS = [
    # (sense bytes, plain words, error class)
    (fixed(0, 0, 1, info=7, filemark=True), "filemark detected", errors.FilemarkDetected),
    (fixed(0, 0, 2, info=0, eom=True), "end of medium (early warning)", errors.EarlyWarning),
    (fixed(0, 0, 7, eom=True), "programmable early warning", errors.EarlyWarning),
    (fixed(0, 0, 4, info=-3, eom=True), "beginning of medium", errors.BeginningOfMedium),
    (fixed(8, 0, 5, info=262144), "end of data", errors.EndOfData),
    (fixed(0, 0, 0, info=100, ili=True), "incorrect length block", errors.IncorrectLength),
    (fixed(0xD, 0, 2, info=512, eom=True), "volume overflow: physical end of medium reached", errors.VolumeOverflow),
    (fixed(2, 0x3A, 0), "medium not present", errors.MediumNotPresent),
    (fixed(2, 0x04, 0x01), "drive is becoming ready", errors.BecomingReady),
    (fixed(2, 0x04, 0x00), "logical unit not ready, cause not reportable", errors.NotReady),
    (fixed(2, 0x30, 0x03), "cleaning cartridge installed", errors.CleaningCartridgeInstalled),
    (fixed(3, 0x11, 0x00, info=1), "unrecovered read error", errors.MediumError),
    (fixed(4, 0x44, 0x00), "internal target failure", errors.HardwareError),
    (fixed(5, 0x20, 0, field_pointer=0), "command not supported by the device", errors.InvalidOpcode),
    (fixed(5, 0x24, 0, field_pointer=2), "invalid field in CDB", errors.InvalidField),
    (fixed(5, 0x26, 0, field_pointer=4, in_cdb=False), "invalid field in parameter list", errors.InvalidField),
    (fixed(5, 0x1A, 0), "parameter list length error", errors.IllegalRequest),
    (fixed(5, 0x39, 0), "saving parameters not supported", errors.IllegalRequest),
    (fixed(5, 0x3B, 0x0C), "not at beginning of medium", errors.IllegalRequest),
    (fixed(5, 0x21, 0x01), "no such element address", errors.InvalidElementAddress),
    (fixed(5, 0x3B, 0x0E), "source element empty", errors.SourceElementEmpty),
    (fixed(5, 0x3B, 0x0D), "destination element full", errors.DestinationElementFull),
    (fixed(5, 0x53, 0x02), "medium removal prevented (drive is locked)", errors.MediumRemovalPrevented),
    (fixed(5, 0x30, 0x00), "incompatible medium", errors.IllegalRequest),
    (fixed(7, 0x27, 0x00), "write protected", errors.WriteProtected),
    (fixed(7, 0x30, 0x0C), "WORM medium cannot be overwritten", errors.WormOverwrite),
    (fixed(7, 0x30, 0x05), "cannot write medium, incompatible format", errors.DataProtect),
    (fixed(7, 0x74, 0x01), "unable to decrypt data", errors.EncryptionError),
    (fixed(7, 0x74, 0x02), "unencrypted data while decrypting", errors.EncryptionError),
    (fixed(7, 0x74, 0x03), "incorrect encryption key", errors.EncryptionError),
    (fixed(6, 0x28, 0x00), "medium may have changed", errors.UnitAttention),
    (fixed(6, 0x28, 0x01), "import/export element accessed", errors.UnitAttention),
    (fixed(6, 0x29, 0x00), "device was reset", errors.UnitAttention),
    (fixed(6, 0x3F, 0x03), "inquiry data has changed", errors.UnitAttention),
    (fixed(0xB, 0x4B, 0x00), "data phase error", errors.AbortedCommand),
    (fixed(3, 0x11, 0x00, deferred=True), "unrecovered read error", errors.DeferredError),
]


@pytest.mark.parametrize("raw, words, error_class", CONDITIONS, ids=[c[1] for c in CONDITIONS])
def test_fixed_sense_condition_words_and_error_class(raw, words, error_class):
    sense = decode_sense(raw)
    assert sense.condition == words
    assert errors.error_class_for(sense) is error_class


def test_fixed_sense_fields():
    sense = decode_sense(fixed(0, 0, 1, info=-5, filemark=True))
    assert (sense.key, sense.asc, sense.ascq, sense.information) == (0, 0, 1, -5)
    assert sense.filemark and not sense.eom and not sense.ili
    assert sense.code == "0/00/01"
    assert "FILEMARK" in sense.describe() and "information -5" in sense.describe()


def test_information_is_none_when_not_valid():
    assert decode_sense(fixed(2, 0x3A, 0)).information is None


def test_field_pointer_of_illegal_request():
    sense = decode_sense(fixed(5, 0x24, 0, field_pointer=2))
    assert (sense.field_pointer, sense.in_cdb) == (2, True)
    assert "CDB byte 2" in sense.describe()
    parameter = decode_sense(fixed(5, 0x26, 0, field_pointer=9, in_cdb=False))
    assert "parameter list byte 9" in parameter.describe()


def test_sense_key_specific_ignored_outside_illegal_request():
    raw = bytearray(fixed(3, 0x11, 0))
    raw[15], raw[17] = 0x80, 0x10
    assert decode_sense(bytes(raw)).field_pointer is None


def test_fixed_sense_shorter_than_18_bytes_decodes():
    # mtx offers a 20-byte buffer, some drives send only up to ASCQ.
    raw = fixed(8, 0, 5)[:14]
    raw = raw[:7] + bytes([6]) + raw[8:]
    sense = decode_sense(raw)
    assert sense.condition == "end of data"


def test_descriptor_format_with_information_stream_and_sks():
    raw = bytes([0x72, 0x00, 0x00, 0x01, 0, 0, 0, 24,
                 0x00, 0x0A, 0x80, 0x00] + list((-12).to_bytes(8, "big", signed=True)) +
                [0x04, 0x02, 0x00, 0x80, 0x02, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00])
    sense = decode_sense(raw)
    assert sense.descriptor_format and not sense.deferred
    assert (sense.key, sense.asc, sense.ascq) == (0, 0, 1)
    assert sense.information == -12 and sense.filemark
    assert errors.error_class_for(sense) is errors.FilemarkDetected


def test_descriptor_format_illegal_request_field_pointer():
    raw = bytes([0x72, 0x05, 0x24, 0x00, 0, 0, 0, 8, 0x02, 0x06, 0, 0, 0xC0, 0x00, 0x04, 0])
    sense = decode_sense(raw)
    assert (sense.field_pointer, sense.in_cdb) == (4, True)
    assert errors.error_class_for(sense) is errors.InvalidField


def test_deferred_descriptor_format():
    raw = bytes([0x73, 0x03, 0x0C, 0x00, 0, 0, 0, 0])
    sense = decode_sense(raw)
    assert sense.deferred and errors.error_class_for(sense) is errors.DeferredError
    assert "deferred error" in sense.describe()


@pytest.mark.parametrize("raw, message", [(b"", "empty"), (b"\x7f" + bytes(17), "response code"),
                                          (b"\x70\x00\x05", "too short"), (b"\x72\x00", "too short")])
def test_garbage_is_not_sense(raw, message):
    with pytest.raises(SenseFormatError, match=message):
        decode_sense(raw)


def test_check_condition_message_names_device_command_and_sense():
    sense = decode_sense(fixed(7, 0x27, 0))
    error = errors.error_class_for(sense)("/dev/sg3", "WRITE(6)", sense)
    assert str(error) == ("/dev/sg3: WRITE(6): write protected "
                          "(sense 7/27/00 DATA PROTECT, write protected)")


def test_unknown_vendor_asc_is_named_by_number():
    assert Sense(0x70, 4, 0x80, 0x12).asc_text == "vendor specific ASC/ASCQ 80h/12h"


def test_to_dict_carries_raw_bytes():
    raw = fixed(8, 0, 5, info=10)
    assert decode_sense(raw).to_dict()["raw"] == raw.hex()
