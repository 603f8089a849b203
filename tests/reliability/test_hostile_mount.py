"""R5 through a real `tapefs mount`: hostile archives backed up to tape show nothing outside the
mount. Links out of the tree are links (their target text, never followed by the server); an
archive with two entries of one name or a `..` name is an empty directory whose
`user.tapefs.error` says why it was skipped."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tapefs.datastore.naming import BackupSnapshot
from tests.helpers import reliability_fuzz_archives as hostile
from tests.helpers.fuse_mounts import mounts_of
from tests.helpers.synthetic_snapshots import make_snapshot
from tests.helpers.tape_jobs import run_backup
from tests.helpers.tape_setup import add_cartridges

pytestmark = pytest.mark.vtape
TIME = "2024-01-01T00:00:00Z"


@pytest.mark.slow
def test_the_mount_shows_nothing_outside_its_tree_and_says_what_it_skipped(tape_setup, tmp_path):
    archives = {"links": hostile.absolute_and_climbing_symlinks(),
                "twice": hostile.symlink_then_directory(os.fsencode(tmp_path)),
                "dotdot": hostile.named(b"..")}
    for name, archive in archives.items():
        make_snapshot(tape_setup.datastore, BackupSnapshot.parse(f"host/{name}/{TIME}"), pieces=[archive])
    add_cartridges(tape_setup.library, 1, "32MiB", "4MiB")
    tape_setup.label("SM0001L8")
    run_backup(tape_setup, eject_media=True)

    with mounts_of(dict(os.environ), tmp_path) as make:
        mounted = make()
        host = mounted.path / "snapshots" / "store" / "host"
        links = host / "links" / TIME / "data.pxar"
        assert os.readlink(links / "abs") == "/etc/passwd"
        assert os.readlink(links / "up") == "../../../../../../../../tmp"
        assert (links / "plain").read_bytes() == b"plain"
        for name, reason in (("twice", b"a second entry named b'a'"), ("dotdot", b"not a single path component")):
            skipped = host / name / TIME / "data.pxar"
            assert os.listdir(skipped) == []
            assert reason in os.getxattr(skipped, "user.tapefs.error")
        inside = mounted.path.resolve()
        for directory, dirs, files in os.walk(mounted.path):
            for entry in dirs + files:
                path = Path(directory, entry)
                assert entry not in ("..", ".") and "/" not in entry
                if not path.is_symlink():
                    assert path.resolve().is_relative_to(inside), path
