import ast

import pytest

from tapefs.pxar import format as fmt
from tests.helpers.pxar_fixtures import GENERATED


def test_siphash_matches_reference_vector():
    key = bytes(range(16))
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    assert fmt.siphash24(k0, k1, bytes(range(15))) == 0xA129CA6149BE45E5


@pytest.mark.parametrize("htype, text", [
    (fmt.FORMAT_VERSION, b"__PROXMOX_FORMAT_VERSION__"),
    (fmt.PRELUDE, b"__PROXMOX_FORMAT_PRELUDE__"),
    (fmt.ENTRY, b"__PROXMOX_FORMAT_ENTRY_V2__"),
    (fmt.ENTRY_V1, b"__PROXMOX_FORMAT_ENTRY__"),
    (fmt.FILENAME, b"__PROXMOX_FORMAT_FILENAME__"),
    (fmt.SYMLINK, b"__PROXMOX_FORMAT_SYMLINK__"),
    (fmt.DEVICE, b"__PROXMOX_FORMAT_DEVICE__"),
    (fmt.XATTR, b"__PROXMOX_FORMAT_XATTR__"),
    (fmt.ACL_USER, b"__PROXMOX_FORMAT_ACL_USER__"),
    (fmt.ACL_GROUP, b"__PROXMOX_FORMAT_ACL_GROUP__"),
    (fmt.ACL_GROUP_OBJ, b"__PROXMOX_FORMAT_ACL_GROUP_OBJ__"),
    (fmt.ACL_DEFAULT, b"__PROXMOX_FORMAT_ACL_DEFAULT__"),
    (fmt.ACL_DEFAULT_USER, b"__PROXMOX_FORMAT_ACL_DEFAULT_USER__"),
    (fmt.ACL_DEFAULT_GROUP, b"__PROXMOX_FORMAT_ACL_DEFAULT_GROUP__"),
    (fmt.FCAPS, b"__PROXMOX_FORMAT_FCAPS__"),
    (fmt.QUOTA_PROJID, b"__PROXMOX_FORMAT_QUOTA_PROJID__"),
    (fmt.HARDLINK, b"__PROXMOX_FORMAT_HARDLINK__"),
    (fmt.PAYLOAD, b"__PROXMOX_FORMAT_PXAR_PAYLOAD__"),
    (fmt.PAYLOAD_REF, b"__PROXMOX_FORMAT_PXAR_PAYLOAD_REF__"),
    (fmt.GOODBYE, b"__PROXMOX_FORMAT_GOODBYE__"),
    (fmt.GOODBYE_TAIL_MARKER, b"__PROXMOX_FORMAT_PXAR_GOODBYE_TAIL_MARKER__"),
    (fmt.PAYLOAD_START_MARKER, b"__PROXMOX_FORMAT_PXAR_PAYLOAD_START_MARKER__"),
    (fmt.PAYLOAD_TAIL_MARKER, b"__PROXMOX_FORMAT_PXAR_PAYLOAD_TAIL_MARKER__"),
])
def test_htype_is_siphash_of_its_text(htype, text):
    assert fmt.name_hash(text) == htype


@pytest.mark.parametrize("name, expected", [
    (b"sock", 0xD3438AB2C6BBDA98), (b"acl.txt", 0x66DFABFDAAFBB0BC),
    (b"a.txt", 0xDC392D66B611AA72), (b"b", 0x4D1DA3F512E8C733),
    (b"fifo", 0xB808ADAE8721840A), (b"dev", 0xD9CE81D496517E20), (b"hl", 0xFF2FAD2A54AE626E),
    (b"c.bin", 0xD194CDCDD8BEA0E6), (b"link", 0x04FE0B2ECF0FC0EF),
])
def test_name_hash_matches_worked_example(name, expected):
    assert fmt.name_hash(name) == expected


def _bst_vectors():
    vectors = []
    for line in (GENERATED / "chunker-and-bst-vectors.txt").read_text().splitlines():
        if line.startswith("B"):
            label, values = line.split(" ", 1)
            vectors.append((int(label[1:]), ast.literal_eval(values)))
    return vectors


@pytest.mark.parametrize("count, expected", _bst_vectors())
def test_goodbye_permutation_matches_reference_vectors(count, expected):
    assert fmt.goodbye_permutation(count) == expected


@pytest.mark.parametrize("count, expected", [
    (0, []), (4, [2, 1, 3, 0]), (7, [3, 1, 5, 0, 2, 4, 6]),
    (16, [8, 4, 12, 2, 6, 10, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0]),
])
def test_goodbye_permutation_matches_spec_examples(count, expected):
    assert fmt.goodbye_permutation(count) == expected


def test_goodbye_permutation_is_a_search_tree_for_every_size_up_to_1200():
    for count in range(1, 1201):
        order = fmt.goodbye_permutation(count)

        def in_order(position):
            if position >= count:
                return []
            return in_order(2 * position + 1) + [order[position]] + in_order(2 * position + 2)

        assert in_order(0) == list(range(count)), count


@pytest.mark.parametrize("values", [
    dict(mode=0o100644, flags=0, uid=1000, gid=100, mtime_secs=1700000000, mtime_nanos=5),
    dict(mode=0o40755, flags=0x2000000, uid=2**32 - 1, gid=0, mtime_secs=-(2**63),
         mtime_nanos=999_999_999),
])
def test_fast_stat_layout_agrees_with_construct_declaration(values):
    packed = fmt.pack_stat(**values)
    assert packed == fmt.Stat.build(dict(values, padding=0))
    assert fmt.unpack_stat(packed)[:6] == tuple(fmt.Stat.parse(packed)[key] for key in values)
