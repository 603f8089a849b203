"""R5 hostile archives through the real command: `tapefs datastore restore` of pxar archives that try
to write outside the target (a symlink then a directory of the same name, a hardlink out of the
tree, `..` and `/` names, a size past the end). Each is refused with one line that names the entry,
or restored as what it is (symlinks stay symlinks, never followed); nothing appears outside. One
datastore holds every case, one snapshot each, to keep the commands few."""
from __future__ import annotations

import os
import stat

import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupSnapshot
from tapefs.errors import ExitCode
from tests.helpers import reliability_fuzz_archives as hostile
from tests.helpers.commands import tapefs
from tests.helpers.synthetic_snapshots import make_snapshot

#: (case, archive, words of the one-line error)
REFUSED = [
    ("symlink-then-directory", lambda outside: hostile.symlink_then_directory(os.fsencode(outside)), "not a directory"),
    ("hardlink-up", lambda outside: hostile.hardlink_outside(b"../" + os.fsencode(outside.name) + b"/x"), "refusing"),
    ("hardlink-climbing", lambda outside: hostile.hardlink_outside(b"a/../../x"), "refusing"),
    ("dot-dot-name", lambda outside: hostile.named(b".."), "not a single path component"),
    ("slash-name", lambda outside: hostile.named(b"/etc"), "not a single path component"),
    ("huge-size", lambda outside: hostile.huge_file(2**62), "runs past the end"),
]


@pytest.mark.slow
def test_hostile_archives_write_nothing_outside_the_target(store, env, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    datastore = Datastore.open(store)
    for case, archive, _ in REFUSED:
        make_snapshot(datastore, BackupSnapshot.parse(f"host/{case}/2024-01-01T00:00:00Z"), pieces=[archive(outside)])
    for case, _, words in REFUSED:
        target = tmp_path / case
        result = tapefs("datastore", "restore", "main", f"host/{case}/2024-01-01T00:00:00Z", "data.pxar", target,
                        env=env, check=False)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == ExitCode.DATA, f"{case}: {result.stderr}"
        assert len(lines) == 1 and lines[0].startswith("tapefs: error: ") and words in lines[0], f"{case}: {lines}"
        assert os.listdir(outside) == [], case
        assert not (target / "big").exists()


@pytest.mark.slow
def test_links_out_of_the_tree_are_restored_as_links_and_never_followed(store, env, tmp_path):
    """Symlinks stay symlinks; a hardlink target is a path from the archive root, so `/etc/passwd`
    is the archive's own (missing) etc/passwd and the link gets a copy of the file it points at by
    offset, never the host's file."""
    datastore = Datastore.open(store)
    make_snapshot(datastore, BackupSnapshot.parse("host/links/2024-01-01T00:00:00Z"),
                  pieces=[hostile.absolute_and_climbing_symlinks()])
    make_snapshot(datastore, BackupSnapshot.parse("host/absolute/2024-01-01T00:00:00Z"),
                  pieces=[hostile.hardlink_outside(b"/etc/passwd")])
    for name in ("links", "absolute"):
        tapefs("datastore", "restore", "main", f"host/{name}/2024-01-01T00:00:00Z", "data.pxar", tmp_path / name,
               env=env)
    links = tmp_path / "links"
    assert os.readlink(links / "abs") == "/etc/passwd"
    assert os.readlink(links / "up") == "../../../../../../../../tmp"
    assert (links / "plain").read_bytes() == b"plain"
    if os.geteuid() == 0:
        node = os.lstat(links / "null")
        assert stat.S_ISCHR(node.st_mode) and os.major(node.st_rdev) == 1
    assert (tmp_path / "absolute" / "h").read_bytes() == b"file"
    assert not (tmp_path / "absolute" / "etc").exists()
