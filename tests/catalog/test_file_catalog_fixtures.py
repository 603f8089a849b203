"""The reference archives (pxar crate output, tests/fixtures/pbs) recorded from a datastore:
every entry of the oracle listing is found with its attributes and content offset."""
from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from tapefs.catalog.file_catalog_builder import MTIME_NS_RANGE, record_datastore_snapshot
from tests.helpers.catalog_snapshots import SMALL_CHUNKS, all_children, open_stream, resolve, store_archive_bytes
from tests.helpers.pbs_reference import GENERATED, ORACLE


def oracle_listing() -> list[dict]:
    return [json.loads(line) for line in (ORACLE / "tree-expected.jsonl").read_text().splitlines()]


def raw_path(item: dict) -> bytes:
    return b"/".join(bytes.fromhex(part) for part in item["path"])


@pytest.mark.parametrize("version", [1, 2])
def test_oracle_tree_is_recorded_entry_by_entry(datastore, catalog, version):
    if version == 1:
        streams = {"root.pxar.didx": (ORACLE / "tree-v1.pxar").read_bytes()}
        content_index = "root.pxar.didx"
    else:
        streams = {"root.mpxar.didx": (ORACLE / "tree-v2.mpxar").read_bytes(),
                   "root.ppxar.didx": (ORACLE / "tree-v2.ppxar").read_bytes()}
        content_index = "root.ppxar.didx"
    snapshot = store_archive_bytes(datastore, f"oracle-v{version}", streams, SMALL_CHUNKS)
    assert record_datastore_snapshot(catalog, datastore, snapshot, str(snapshot))
    [archive] = catalog.archives(catalog.snapshot_id("store", str(snapshot)))
    assert archive.error is None
    root = catalog.entry(archive.root_entry)
    listing = oracle_listing()
    assert catalog.entry_count() == len(listing) == 2931
    rows_by_path = {}
    previous_id = 0
    with open_stream(datastore, snapshot, content_index) as stream:
        for item in listing:
            path = raw_path(item)
            row = resolve(catalog, root, path)
            assert row is not None, path
            assert row.id > previous_id  # ids in archive order
            previous_id = row.id
            rows_by_path[path] = row
            assert row.kind == item["type"], path
            if item["type"] == "hardlink":
                target = rows_by_path[bytes.fromhex(item["hardlink"])]
                assert (row.link, row.mode, row.size, row.nlink) == (target.id, target.mode, target.size,
                                                                    target.nlink)
                continue
            seconds, nanos = item["mtime"]
            # ext4's latest time (2446) does not fit 64-bit nanoseconds: kept at the limit.
            mtime_ns = min(seconds * 1_000_000_000 + nanos, MTIME_NS_RANGE[1])
            assert (row.mode, row.uid, row.gid, row.mtime_ns) == \
                   (item["mode"], item["uid"], item["gid"], mtime_ns), path
            assert row.xattrs == [(bytes.fromhex(name), bytes.fromhex(value))
                                  for name, value in item.get("xattrs", [])], path
            assert row.target == (bytes.fromhex(item["symlink"]) if "symlink" in item else None), path
            assert row.rdev == (os.makedev(*item["device"]) if "device" in item else None), path
            if item["type"] == "file":
                offset = item[f"v{version}"][3] + (16 if version == 2 else 0)
                assert (row.size, row.content_offset) == (item["size"], offset), path
                if row.size < 5000:
                    assert len(stream.read_at(row.content_offset, row.size)) == row.size
            else:
                assert (row.size, row.content_offset) == (0, None)
    children = Counter(path.rpartition(b"/")[0] for path in rows_by_path if path)
    for path, row in rows_by_path.items():
        if row.kind == "dir":
            assert len(all_children(catalog, row.id)) == children[path], path
    # The three names of links/a/first.bin: the file and two hardlinks.
    assert rows_by_path[b"links/a/first.bin"].nlink == 3


def test_file_capabilities_become_a_security_capability_xattr(datastore, catalog):
    streams = {"root.mpxar.didx": (GENERATED / "v2.mpxar").read_bytes(),
               "root.ppxar.didx": (GENERATED / "v2.ppxar").read_bytes()}
    snapshot = store_archive_bytes(datastore, "generated", streams)
    record_datastore_snapshot(catalog, datastore, snapshot, str(snapshot))
    [archive] = catalog.archives(catalog.snapshot_id("store", str(snapshot)))
    root = catalog.entry(archive.root_entry)
    [(name, value)] = resolve(catalog, root, b"b/c.bin").xattrs
    assert name == b"security.capability" and len(value) == 20
    assert resolve(catalog, root, b"a.txt").xattrs == [(b"user.comment", b"hello xattr")]
    assert resolve(catalog, root, b"hl").link == resolve(catalog, root, b"a.txt").id
    assert resolve(catalog, root, b"dev").rdev == os.makedev(1, 3)
    assert [row.name for row in catalog.children(root.id)] == \
           [b"a.txt", b"acl.txt", b"b", b"dev", b"fifo", b"hl", b"sock"]
