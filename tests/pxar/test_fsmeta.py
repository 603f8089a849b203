"""POSIX ACL xattrs ↔ pxar ACL items, as proxmox-backup-client maps them."""

import stat

import pytest

from tapefs.pxar import format as fmt
from tapefs.pxar.entry import Acl, AclDefault, AclEntry
from tapefs.pxar.fsmeta import (
    ACL_ACCESS_XATTR,
    ACL_DEFAULT_XATTR,
    ACL_GROUP,
    ACL_GROUP_OBJ,
    ACL_MASK,
    ACL_OTHER,
    ACL_USER,
    ACL_USER_OBJ,
    acl_from_xattrs,
    acl_to_xattrs,
    parse_acl_xattr,
)

NO_ID = 0xFFFFFFFF


def test_access_acl_with_mask_keeps_group_obj_and_uses_mode_group_bits_as_mask():
    acl = Acl(users=(AclEntry(1000, 6),), groups=(AclEntry(100, 4),), group_obj=4)
    xattrs = acl_to_xattrs(acl, stat.S_IFREG | 0o640)
    assert parse_acl_xattr(xattrs[ACL_ACCESS_XATTR]) == [
        (ACL_USER_OBJ, 6, NO_ID), (ACL_USER, 6, 1000), (ACL_GROUP_OBJ, 4, NO_ID),
        (ACL_GROUP, 4, 100), (ACL_MASK, 4, NO_ID), (ACL_OTHER, 0, NO_ID)]
    assert acl_from_xattrs(xattrs[ACL_ACCESS_XATTR], None) == acl


def test_access_acl_without_mask_stores_no_group_obj():
    minimal = acl_to_xattrs(Acl(group_obj=5), stat.S_IFREG | 0o750)[ACL_ACCESS_XATTR]
    without_mask = [entry for entry in parse_acl_xattr(minimal) if entry[0] != ACL_MASK]
    rebuilt = minimal[:4] + b"".join(
        tag.to_bytes(2, "little") + perm.to_bytes(2, "little") + id_.to_bytes(4, "little")
        for tag, perm, id_ in without_mask)
    assert acl_from_xattrs(rebuilt, None) == Acl()


def test_default_acl_without_mask_round_trips_with_no_mask_marker():
    value = acl_to_xattrs(Acl(default=AclDefault(7, 5, 0)), stat.S_IFDIR | 0o755)
    assert acl_from_xattrs(None, value[ACL_DEFAULT_XATTR]) == Acl(
        default=AclDefault(7, 5, 0, fmt.NO_MASK))


def test_default_acl_named_entries_get_base_entries_from_mode_and_a_mask():
    value = acl_to_xattrs(Acl(default_users=(AclEntry(1000, 7),)), stat.S_IFDIR | 0o750)
    assert parse_acl_xattr(value[ACL_DEFAULT_XATTR]) == [
        (ACL_USER_OBJ, 7, NO_ID), (ACL_USER, 7, 1000), (ACL_GROUP_OBJ, 5, NO_ID),
        (ACL_MASK, 7, NO_ID), (ACL_OTHER, 0, NO_ID)]


def test_no_acl_means_no_xattrs():
    assert acl_to_xattrs(Acl(), stat.S_IFREG | 0o644) == {}


@pytest.mark.parametrize("value", [b"", b"\x02\x00\x00\x00\x01", b"\x01\x00\x00\x00"])
def test_malformed_acl_xattr_is_refused(value):
    with pytest.raises(ValueError):
        parse_acl_xattr(value)
