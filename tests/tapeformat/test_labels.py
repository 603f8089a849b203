"""Content header and labels: hand-computed bytes from docs/tape-format.md
("Content headers", "Labels") and its read rules ("What readers do")."""
import time
import uuid

import pytest

from tapefs.tapeformat import magic
from tapefs.tapeformat.block import BlockedWriter
from tapefs.tapeformat.content_header import ContentHeader, pretty_json, write_content_start
from tapefs.tapeformat.errors import BadMagic, HeaderError, TapeFormatError, UnsupportedVersion, WrongContent
from tapefs.tapeformat.labels import MediaLabel, MediaSetLabel, read_labels, write_media_label, write_media_set_label
from tapefs.tapeformat.memory_tape import MemoryTape
from tapefs.tapeformat.tape_file import open_tape_file

MEDIA_UUID = uuid.UUID("7f42c4dd-9626-4d89-9f2b-c7bc6da7d533")
SET_UUID = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")


def test_content_header_bytes_match_hand_computed_vector():
    header = ContentHeader(magic.CHUNK_ARCHIVE_1_1, SET_UUID, ctime=0x0102030405, size=0x2A, part_number=3)
    assert header.build() == bytes.fromhex(
        "63ee149fcdf29b0c" "6d31636dd70283bf" "00112233445566778899aabbccddeeff"
        "0504030201000000" "2a000000" "03" "000000")


def label_json(tape: MemoryTape, index: int) -> bytes:
    """The header JSON of the label file whose block is tape object `index`."""
    block = tape.objects[index]
    return block[64:64 + int.from_bytes(block[56:60], "little")]


def test_media_label_json_is_the_pbs_example_byte_for_byte():
    tape = MemoryTape()
    write_media_label(tape, MediaLabel(MEDIA_UUID, "vtape1", 1609920471, "daily"))
    assert label_json(tape, 0) == (
        b'{\n  "ctime": 1609920471,\n  "label_text": "vtape1",\n  "pool": "daily",\n'
        b'  "uuid": "7f42c4dd-9626-4d89-9f2b-c7bc6da7d533"\n}')
    assert "pool" not in MediaLabel(MEDIA_UUID, "vtape1", 1).to_json()


def test_label_file_is_header_json_end_block_and_filemark():
    tape = MemoryTape()
    label = MediaLabel(MEDIA_UUID, "vtape1", 1609920471)
    write_media_label(tape, label)
    block, filemark = tape.objects
    body = pretty_json(label.to_json())
    assert filemark is None
    assert block[:16] == bytes.fromhex("dcbdafcaeba0a528" "01") + (48 + len(body)).to_bytes(3, "little") + bytes(4)
    assert block[16:24] == magic.CONTENT_HEADER and block[24:32] == magic.MEDIA_LABEL
    assert abs(int.from_bytes(block[48:56], "little") - time.time()) < 60  # the file's ctime, not the label's
    assert int.from_bytes(block[56:60], "little") == len(body) and block[60:64] == bytes(4)
    assert block[64:64 + len(body)] == body


def test_labels_round_trip_with_opaque_key_config():
    tape = MemoryTape()
    media = MediaLabel(MEDIA_UUID, "TAPE01L8", 100, "pool-a")
    key_config = {"kdf": {"Scrypt": {"n": 65536}}, "created": 1, "data": "base64"}
    media_set = MediaSetLabel("pool-a", SET_UUID, 2, 200, "aa:" * 31 + "bb", key_config)
    write_media_label(tape, media)
    write_media_set_label(tape, media_set)
    assert b'"key-config": {' in tape.objects[2][64:]
    labels = read_labels(tape)
    assert labels.media == media and labels.media_set == media_set
    assert tape.position().file_number == 2


def test_set_label_key_config_is_key_sorted_at_every_level_as_pbs_prints_it():
    """PBS prints the set label through a serde_json Value: every object's keys sorted, the key
    config's (given here in KeyConfig field order) and its kdf's too."""
    tape = MemoryTape()
    write_media_label(tape, MediaLabel(MEDIA_UUID, "TAPE01L8", 100, "pool-a"))
    key_config = {
        "kdf": {"Scrypt": {"n": 65536, "r": 8, "p": 1, "salt": "c2FsdA=="}},
        "created": "2024-01-01T00:00:00+00:00",
        "modified": "2024-01-01T00:00:00+00:00",
        "data": "ZGF0YQ==",
        "fingerprint": "aa:" * 31 + "bb",
        "hint": "the hint",
    }
    write_media_set_label(tape, MediaSetLabel("pool-a", SET_UUID, 2, 200, "aa:" * 31 + "bb", key_config))
    assert label_json(tape, 2).decode() == (
        '{\n  "ctime": 200,\n  "encryption_key_fingerprint": "' + "aa:" * 31 + 'bb",\n'
        '  "key-config": {\n'
        '    "created": "2024-01-01T00:00:00+00:00",\n    "data": "ZGF0YQ==",\n'
        '    "fingerprint": "' + "aa:" * 31 + 'bb",\n    "hint": "the hint",\n'
        '    "kdf": {\n      "Scrypt": {\n        "n": 65536,\n        "p": 1,\n        "r": 8,\n'
        '        "salt": "c2FsdA=="\n      }\n    },\n'
        '    "modified": "2024-01-01T00:00:00+00:00"\n  },\n'
        '  "pool": "pool-a",\n  "seq_nr": 2,\n  "uuid": "00112233-4455-6677-8899-aabbccddeeff"\n}')


def test_set_label_overwrite_truncates_later_files():
    tape = MemoryTape()
    write_media_label(tape, MediaLabel(MEDIA_UUID, "T1", 1))
    write_media_set_label(tape, MediaSetLabel("p", SET_UUID, 0, 2))
    tape.write_block(b"x" * 262144)
    write_media_set_label(tape, MediaSetLabel("p", SET_UUID, 5, 3))
    assert len(tape.objects) == 4
    assert read_labels(tape).media_set.seq_nr == 5


def test_empty_tape_and_tape_without_set():
    tape = MemoryTape()
    assert read_labels(tape).media is None
    write_media_label(tape, MediaLabel(MEDIA_UUID, "T1", 1))
    labels = read_labels(tape)
    assert labels.media.label_text == "T1" and labels.media_set is None


def test_filemark_at_bot_is_an_error():
    tape = MemoryTape()
    tape.write_filemark()
    with pytest.raises(TapeFormatError, match="tape file 0: filemark where the media label should be"):
        read_labels(tape)


def test_data_after_label_is_an_error():
    tape = MemoryTape()
    writer = BlockedWriter(tape)
    write_content_start(writer, magic.MEDIA_LABEL, pretty_json(MediaLabel(MEDIA_UUID, "T", 1).to_json()))
    writer.write(b"extra")
    writer.finish()
    with pytest.raises(HeaderError, match="tape file 0, block 0: unexpected data after the media label"):
        read_labels(tape)


def test_wrong_content_in_file_0_is_named():
    tape = MemoryTape()
    writer = BlockedWriter(tape)
    write_content_start(writer, magic.CHUNK_ARCHIVE_1_1, b'{"store": "x"}')
    writer.finish()
    with pytest.raises(WrongContent, match="tape file 0: expected a media label, found a chunk archive v1.1"):
        read_labels(tape)


def write_raw(tape, stream: bytes):
    writer = BlockedWriter(tape)
    writer.write(stream)
    writer.finish()
    tape.rewind()


def test_wrong_content_header_magic():
    tape = MemoryTape()
    write_raw(tape, b"\0" * 8 + magic.MEDIA_LABEL + bytes(32) + b"{}")
    with pytest.raises(BadMagic, match="tape file 0, block 0: not a PBS content header"):
        open_tape_file(tape)


def test_obsolete_chunk_archive_is_refused():
    tape = MemoryTape()
    write_raw(tape, ContentHeader(magic.CHUNK_ARCHIVE_1_0, MEDIA_UUID, 0, 2).build() + b"{}")
    with pytest.raises(UnsupportedVersion, match="unexpected chunk archive v1.0"):
        open_tape_file(tape)


@pytest.mark.parametrize("size", [0, 65537])
def test_header_data_size_outside_bounds(size):
    tape = MemoryTape()
    write_raw(tape, ContentHeader(magic.SNAPSHOT_ARCHIVE_1_1, MEDIA_UUID, 0, size).build())
    with pytest.raises(HeaderError, match=f"tape file 0, block 0: content header data size {size}"):
        open_tape_file(tape)


def test_header_data_cut_short():
    tape = MemoryTape()
    write_raw(tape, ContentHeader(magic.SNAPSHOT_ARCHIVE_1_1, MEDIA_UUID, 0, 60000).build() + b"{" * 100)
    with pytest.raises(TapeFormatError, match="tape file 0, block 0: stream ends 59900 bytes short inside the content"):
        open_tape_file(tape)


def test_header_data_not_json():
    tape = MemoryTape()
    write_raw(tape, ContentHeader(magic.SNAPSHOT_ARCHIVE_1_1, MEDIA_UUID, 0, 3).build() + b"{x}")
    with pytest.raises(HeaderError, match="tape file 0: snapshot archive v1.1 header data is not JSON"):
        open_tape_file(tape)


def test_label_json_without_a_required_key_names_the_file():
    tape = MemoryTape()
    write_media_label(tape, MediaLabel(MEDIA_UUID, "T1", 1))
    writer = BlockedWriter(tape)
    write_content_start(writer, magic.MEDIA_SET_LABEL, pretty_json({"pool": "p", "seq_nr": 0, "ctime": 1}))
    writer.finish()
    with pytest.raises(HeaderError, match="tape file 1: media-set label JSON lacks 'uuid'"):
        read_labels(tape)
