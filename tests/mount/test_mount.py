"""`tapefs mount` as a user meets it: a real FUSE mount over a real vtape library, browsed with
find and ls while every drive stays empty, files copied back with cp and compared."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.datastore.fixed_index import FixedIndex
from tapefs.media.inventory import Inventory
from tapefs.mount.tape_stream import READAHEAD_BYTES
from tests.helpers.commands import tapefs
from tests.helpers.mount_archive import listing
from tests.helpers.tape_setup import MiB

pytestmark = [pytest.mark.slow, pytest.mark.fuse, pytest.mark.vtape, pytest.mark.xdist_group("mount")]


def snapshot_dir(mounted, archive, snapshot: str) -> Path:
    return mounted.path / "snapshots" / "store" / snapshot


def test_browsing_the_whole_archive_loads_no_tape(tape_archive, mount_tree):
    mounted = mount_tree()
    pxar_root = snapshot_dir(mounted, tape_archive, tape_archive.tree_snapshot) / "root.pxar"
    assert listing(pxar_root) == listing(tape_archive.tree)
    find = subprocess.run(["find", str(mounted.path)], capture_output=True, check=True, timeout=120)
    assert len(find.stdout.splitlines()) > len(listing(tape_archive.tree))
    subprocess.run(["ls", "-lR", str(mounted.path)], capture_output=True, check=True, timeout=120)
    du = subprocess.run(["du", "-sb", str(pxar_root)], capture_output=True, check=True, text=True)
    assert int(du.stdout.split()[0]) > 0
    assert tape_archive.drives_empty()
    assert mounted.status()["tapes"]["loads"] == 0


def test_views_show_pools_media_sets_tapes_and_labels(tape_archive, mount_tree):
    mounted = mount_tree()
    (pool_set,) = (mounted.path / "pools" / "daily").iterdir()
    tapes = sorted(os.listdir(pool_set / "tapes"))
    assert [name.split("-", 1)[1] for name in tapes] == tape_archive.tapes
    assert [name.split("-", 1)[0] for name in tapes] == [f"{n:03d}" for n in range(len(tapes))]
    label = json.loads((pool_set / "tapes" / tapes[0] / "label.json").read_text())
    assert label["label-text"] == tape_archive.tapes[0]
    assert label["media-set"]["uuid"] == tape_archive.media_set
    content = (mounted.path / "media" / tape_archive.tapes[0] / "content.txt").read_text()
    assert "chunk" in content
    copy = pool_set / "store" / tape_archive.image_snapshot
    assert sorted(os.listdir(copy)) == ["disk.img", "index.json"]
    assert os.getxattr(copy, "user.tapefs.media-set").decode() == tape_archive.media_set
    manifest = json.loads((copy / "index.json").read_text())
    assert [f["filename"] for f in manifest["files"]] == ["disk.img.fidx"]
    assert (copy / "disk.img").stat().st_size == tape_archive.image.stat().st_size
    assert tape_archive.drives_empty()


def test_cp_restores_single_files_and_diff_finds_a_whole_directory_equal(tape_archive, mount_tree, tmp_path):
    mounted = mount_tree()
    pxar_root = snapshot_dir(mounted, tape_archive, tape_archive.tree_snapshot) / "root.pxar"
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["cp", "-a", str(pxar_root / "os.py"), str(out / "os.py")], check=True, timeout=120)
    source = tape_archive.tree / "os.py"
    assert (out / "os.py").read_bytes() == source.read_bytes()
    assert int((out / "os.py").stat().st_mtime) == int(source.stat().st_mtime)
    assert (out / "os.py").stat().st_mode == source.stat().st_mode
    diff = subprocess.run(["diff", "-r", str(pxar_root / "json"), str(tape_archive.tree / "json")],
                          capture_output=True, text=True, timeout=120)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    extras = pxar_root / "tapefs-extras"
    assert (extras / "original.txt").stat().st_ino == (extras / "hardlink.txt").stat().st_ino
    assert (extras / "original.txt").stat().st_nlink == 2
    assert os.readlink(extras / "symlink.txt") == "original.txt"
    assert (extras / "hardlink.txt").read_text() == "linked twice\n"
    try:
        expected = os.getxattr(tape_archive.tree / "tapefs-extras" / "original.txt", "user.tapefs-test")
    except OSError:
        expected = None
    if expected is not None:
        assert os.getxattr(extras / "original.txt", "user.tapefs-test") == expected
    # tapefs's own attributes answer getxattr but are not listed, so `cp -a` does not copy them.
    tapes = os.getxattr(pxar_root / "os.py", "user.tapefs.tapes").decode().split(",")
    assert set(tapes) <= set(tape_archive.tapes) and tapes
    assert not [name for name in os.listxattr(pxar_root / "os.py") if name.startswith("user.tapefs.")]
    assert mounted.status()["tapes"]["loads"] >= 1


def test_cp_of_the_image_matches_and_reads_about_its_size_from_tape(tape_archive, mount_tree, tmp_path):
    mounted = mount_tree()
    image = snapshot_dir(mounted, tape_archive, tape_archive.image_snapshot) / "disk.img"
    subprocess.run(["cp", str(image), str(tmp_path / "disk.img")], check=True, timeout=240)
    assert hashlib.sha256((tmp_path / "disk.img").read_bytes()).hexdigest() == tape_archive.image_sha256
    tapes = mounted.status()["tapes"]
    # Known: under a loaded machine about one readahead window (32 MiB) is read from tape twice
    # (seen twice in full CI runs: 302 and 310 MB for this 268 MB image; never alone). The bound
    # allows two windows until that is found; the status and log say where the bytes went.
    limit = tape_archive.image.stat().st_size + 2 * READAHEAD_BYTES
    assert tapes["bytes-from-tape"] <= limit, json.dumps(tapes) + "\n" + mounted.log()[-3000:]


def test_eight_readers_over_three_tapes_and_two_drives_finish(tape_archive, mount_tree):
    mounted = mount_tree()
    image = snapshot_dir(mounted, tape_archive, tape_archive.image_snapshot) / "disk.img"
    size = tape_archive.image.stat().st_size
    source = tape_archive.image.read_bytes()
    randomness = random.Random(8)
    ranges = [(randomness.randrange(0, size - MiB), randomness.randrange(1, MiB)) for _ in range(8)]
    # Spread over the whole image, so each tape of the set is needed.
    ranges[:3] = [(0, MiB), (size // 2, MiB), (size - MiB, MiB)]

    def read(offset_length):
        offset, length = offset_length
        with open(image, "rb") as file:
            file.seek(offset)
            return file.read(length)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(read, ranges, timeout=240))
    for (offset, length), data in zip(ranges, results):
        assert data == source[offset:offset + length]
    status = mounted.status()["tapes"]
    assert status["loads"] >= 3


def _image_chunk_on(tape_archive, label_text: str) -> int:
    """Offset of an image chunk that lies on tape `label_text`."""
    store_dir = tape_archive.root / "store" / "vm" / "100" / tape_archive.image_snapshot.rsplit("/", 1)[-1]
    index = FixedIndex.load(store_dir / "disk.img.fidx")
    status_dir = Path(tape_archive.env["TAPEFS_STATE_DIR"]) / "tape"
    with Inventory.open(status_dir) as inventory, MediaCatalog.open(status_dir) as catalog:
        places = catalog.chunk_places(tape_archive.media_set, "store", index.digests)
        for number, digest in enumerate(index.digests):
            if inventory.get(places[digest].media_uuid).id.label_text == label_text:
                return index.chunk_range(number)[0]
    raise AssertionError(f"no image chunk on {label_text}")


def test_tape_out_of_the_library_fails_with_enomedium_and_unmount_ends_a_waiting_read(tape_archive, mount_tree):
    missing, present = tape_archive.tapes[-1], tape_archive.tapes[0]
    offline_offset = _image_chunk_on(tape_archive, missing)
    online_offset = _image_chunk_on(tape_archive, present)
    tape_archive.take_out(missing)
    try:
        offline_read_fails_and_unmount_ends_a_waiting_read(tape_archive, mount_tree, missing, offline_offset,
                                                           online_offset)
    finally:
        tape_archive.put_back(missing)


def offline_read_fails_and_unmount_ends_a_waiting_read(tape_archive, mount_tree, missing, offline_offset,
                                                       online_offset):
    mounted = mount_tree("--read-timeout", "2")
    image = snapshot_dir(mounted, tape_archive, tape_archive.image_snapshot) / "disk.img"
    started = time.monotonic()
    with open(image, "rb") as file:
        file.seek(offline_offset)
        with pytest.raises(OSError) as failure:
            file.read(4096)
    assert failure.value.errno == errno.ENOMEDIUM
    assert 1.5 < time.monotonic() - started < 60
    assert missing in mounted.log()
    with open(image, "rb") as file:
        file.seek(online_offset)
        assert file.read(4096) == tape_archive.image.read_bytes()[online_offset:online_offset + 4096]

    # One tapefs process per drive: the first mount lets its drives go before the second mounts.
    assert mounted.unmount() == 0, mounted.log()
    waiting = mount_tree("--read-timeout", "600", name="waiting")
    image = snapshot_dir(waiting, tape_archive, tape_archive.image_snapshot) / "disk.img"
    outcome = {}

    def read_offline():
        try:
            with open(image, "rb") as file:
                file.seek(offline_offset)
                outcome["data"] = file.read(4096)
        except OSError as error:
            outcome["errno"] = error.errno

    reader = threading.Thread(target=read_offline)
    reader.start()
    deadline = time.monotonic() + 30
    while missing not in json.dumps(waiting.status()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert missing in json.dumps(waiting.status())
    started = time.monotonic()
    assert waiting.unmount() == 0, waiting.log()
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert time.monotonic() - started < 30
    assert "errno" in outcome, outcome


def test_acls_and_selinux_labels_are_unsupported_and_other_xattrs_still_answer(tape_archive, mount_tree):
    mounted = mount_tree()
    pxar_root = snapshot_dir(mounted, tape_archive, tape_archive.tree_snapshot) / "root.pxar"
    for name in ("security.selinux", "system.posix_acl_access"):
        with pytest.raises(OSError) as failure:
            os.getxattr(pxar_root / "os.py", name)
        # "not supported" is what makes `ls -l` stop asking for every file
        assert failure.value.errno == errno.EOPNOTSUPP, name
    assert os.getxattr(pxar_root / "os.py", "user.tapefs.tapes").decode().split(",")
    listed = subprocess.run(["ls", "-lR", str(pxar_root / "json")], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr


def test_no_xattrs_mount_refuses_extended_attributes_and_still_lists(tape_archive, mount_tree):
    mounted = mount_tree("--no-xattrs")
    pxar_root = snapshot_dir(mounted, tape_archive, tape_archive.tree_snapshot) / "root.pxar"
    with pytest.raises(OSError) as failure:
        os.getxattr(pxar_root / "os.py", "user.tapefs.tapes")
    assert failure.value.errno == errno.EOPNOTSUPP
    subprocess.run(["ls", "-lR", str(pxar_root / "json")], capture_output=True, check=True, timeout=60)
    assert listing(pxar_root / "json") == listing(tape_archive.tree / "json")


def test_raw_tape_files_read_as_recorded(tape_archive, mount_tree):
    mounted = mount_tree()
    label = tape_archive.tapes[0]
    files = mounted.path / "media" / label / "files"
    names = sorted(os.listdir(files))
    assert names[:2] == ["00000-media-label", "00001-media-set-label"]
    assert any(name.endswith("-chunk-archive") for name in names)
    media_label = (files / "00000-media-label").read_bytes()
    assert len(media_label) == 256 * 1024  # one block, header and padding included
    assert label.encode() in media_label
    archive = next(name for name in names if name.endswith("-chunk-archive"))
    with open(files / archive, "rb") as file:
        file.seek(3 * 256 * 1024 + 100)
        assert len(file.read(4096)) == 4096


def test_a_drive_the_mount_reads_with_is_busy_for_other_tapefs_commands(tape_archive, mount_tree):
    mounted = mount_tree("--drive", "drive0")
    image = snapshot_dir(mounted, tape_archive, tape_archive.image_snapshot) / "disk.img"
    with open(image, "rb") as file:
        assert file.read(4096) == tape_archive.image.read_bytes()[:4096]
    pid = mounted.status()["pid"]
    busy = tapefs("catalog", "--drive", "drive0", "--label-text", tape_archive.tapes[0], env=tape_archive.env,
                  check=False)
    assert busy.returncode == 4  # busy
    assert f"drive drive0 is in use by another tapefs process (pid {pid})" in busy.stderr
    assert mounted.unmount() == 0
    after = tapefs("catalog", "--drive", "drive0", "--label-text", tape_archive.tapes[0], env=tape_archive.env,
                   check=False)
    assert "in use" not in after.stderr and "already has a catalog" in after.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the kernel's limits for a mount are root's to raise")
def test_tapefs_mount_returns_once_the_kernel_readahead_and_request_limit_are_raised(tape_archive, tmp_path):
    # A file opened before the readahead is raised keeps the kernel's 128 KiB to its close: a
    # `cp` started right after `tapefs mount` would copy 20 % slower.
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    tapefs("mount", str(mountpoint), "--cache-dir", str(tmp_path / "cache"), env=tape_archive.env, timeout=60)
    try:
        status = json.loads((mountpoint / ".status").read_text())
        assert status["kernel-readahead-kb"] == 4096 and status["kernel-max-background"] == 1024, status
    finally:
        tapefs("umount", str(mountpoint), env=tape_archive.env, timeout=120)
    assert not os.path.ismount(mountpoint)
