"""Who may read what through `tapefs mount --allow-other`: real reads by user nobody against a
real mount. Raw tape files, images and snapshot blobs are root's alone (refused without loading a
tape) unless the mount is made with --expose-raw; archived files keep their own modes."""
from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.fuse, pytest.mark.vtape, pytest.mark.xdist_group("mount")]

AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def as_nobody(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([*AS_NOBODY, *command], capture_output=True, timeout=120)


def assert_refused(path: Path) -> None:
    proc = as_nobody("cat", str(path))
    assert proc.returncode != 0 and b"Permission denied" in proc.stderr, (path, proc.stdout[:100], proc.stderr)


def mount_options(mountpoint: Path) -> set[str]:
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(mountpoint):
            return set(fields[3].split(","))
    raise AssertionError(f"{mountpoint} is not in /proc/mounts")


def raw_chunk_archive(mountpoint: Path, label: str) -> Path:
    files = mountpoint / "media" / label / "files"
    return files / next(name for name in sorted(os.listdir(files)) if name.endswith("-chunk-archive"))


def test_other_users_read_archived_files_by_their_modes_and_nothing_raw(tape_archive, shared_mount_tree):
    mounted = shared_mount_tree("--allow-other")
    image_snapshot = mounted.path / "snapshots" / "store" / tape_archive.image_snapshot
    pxar_root = mounted.path / "snapshots" / "store" / tape_archive.tree_snapshot / "root.pxar"
    raw_files = [raw_chunk_archive(mounted.path, tape_archive.tapes[0]),
                 mounted.path / "media" / tape_archive.tapes[0] / "files" / "00000-media-label"]
    backed_up_bytes = [*raw_files, image_snapshot / "disk.img", image_snapshot / "index.json"]
    assert {"nosuid", "nodev", "default_permissions", "allow_other"} <= mount_options(mounted.path)

    for path in backed_up_bytes:
        info = path.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o400, os.getuid()), path
        assert_refused(path)
    assert_refused(pxar_root / "tapefs-extras" / "private.txt")
    hidden = as_nobody("ls", str(pxar_root / "tapefs-extras" / "private"))
    assert hidden.returncode != 0 and b"Permission denied" in hidden.stderr
    # Names, labels and the status file are for everyone.
    listed = as_nobody("ls", str(image_snapshot))
    assert listed.returncode == 0 and listed.stdout.split() == [b"disk.img", b"index.json"]
    label = as_nobody("cat", str(mounted.path / "media" / tape_archive.tapes[0] / "label.json"))
    assert json.loads(label.stdout)["label-text"] == tape_archive.tapes[0]
    status = as_nobody("cat", str(mounted.path / ".status"))
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["tapes"]["loads"] == 0
    assert tape_archive.drives_empty()

    readable = as_nobody("cat", str(pxar_root / "os.py"))
    assert readable.returncode == 0, readable.stderr
    assert readable.stdout == (tape_archive.tree / "os.py").read_bytes()
    assert mounted.status()["tapes"]["loads"] >= 1
    # root, the mount's owner, still reads everything.
    assert (image_snapshot / "index.json").read_bytes().startswith(b"{")
    assert (pxar_root / "tapefs-extras" / "private.txt").read_text() == "for root's eyes\n"

    # One tapefs process per drive: this mount lets its drives go before the next one mounts.
    assert mounted.unmount() == 0, mounted.log()
    exposed = shared_mount_tree("--allow-other", "--expose-raw", name="exposed")
    image_snapshot = exposed.path / "snapshots" / "store" / tape_archive.image_snapshot
    assert stat.S_IMODE((image_snapshot / "disk.img").stat().st_mode) == 0o444
    manifest = as_nobody("cat", str(image_snapshot / "index.json"))
    assert json.loads(manifest.stdout)["backup-type"] == "vm"
    media_label = as_nobody("cat", str(exposed.path / "media" / tape_archive.tapes[0] / "files" / "00000-media-label"))
    assert media_label.returncode == 0 and tape_archive.tapes[0].encode() in media_label.stdout
    refused = as_nobody("cat", str(exposed.path / "snapshots" / "store" / tape_archive.tree_snapshot / "root.pxar"
                                   / "tapefs-extras" / "private.txt"))
    assert refused.returncode != 0 and b"Permission denied" in refused.stderr
