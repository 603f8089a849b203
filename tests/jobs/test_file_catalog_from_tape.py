"""`tapefs file-catalog`: the mount's file catalog rebuilt from tape alone, as for tapes that PBS
wrote (their backups never recorded anything here)."""
import json
import os
import shutil
from pathlib import Path

import pytest

from tapefs.catalog.file_catalog import FileCatalog
from tapefs.datastore.backup import backup, parse_sources
from tapefs.datastore.naming import BackupGroup, BackupNamespace
from tests.helpers.commands import tapefs
from tests.helpers.tape_jobs import run_backup
from tests.helpers.tape_setup import add_cartridges

pytestmark = [pytest.mark.vtape, pytest.mark.slow]


def make_tree(root: Path) -> Path:
    for n in range(30):
        directory = root / f"dir{n % 3}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"file{n}.bin").write_bytes(os.urandom(1000 + n * 5000))
    os.symlink("dir0/file0.bin", root / "link")
    return root


def entry_names(catalog: FileCatalog, store: str, path: str) -> set[bytes]:
    snapshot_id = catalog.snapshot_id(store, path)
    (archive,) = catalog.archives(snapshot_id)
    names, stack = set(), [(archive.root_entry, b"")]
    while stack:
        parent, prefix = stack.pop()
        for row in catalog.children(parent, limit=100000):
            names.add(prefix + row.name)
            if row.kind == "dir":
                stack.append((row.id, prefix + row.name + b"/"))
    return names


def test_file_catalog_is_rebuilt_from_tape_with_every_entry(tape_setup, tmp_path):
    add_cartridges(tape_setup.library, 2, "64MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8")
    tree = make_tree(tmp_path / "tree")
    result = backup(tape_setup.datastore, BackupGroup.parse("host/tree", BackupNamespace()),
                    parse_sources([f"root.pxar:{tree}"]), sync=False)
    snapshot = str(result.snapshot)
    media_set = run_backup(tape_setup, eject_media=True).media_set
    status_dir = Path(os.environ["TAPEFS_STATE_DIR"]) / "tape"
    with FileCatalog.open(status_dir) as catalog:
        expected = entry_names(catalog, "store", snapshot)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{status_dir / 'files.sqlite'}{suffix}").unlink(missing_ok=True)

    rebuilt = json.loads(tapefs("file-catalog", media_set, "--drive", "drive0", "--output-format", "json").stdout)
    assert rebuilt["recorded"] == [f"store:{snapshot}"]
    with FileCatalog.open(status_dir) as catalog:
        assert entry_names(catalog, "store", snapshot) == expected
        assert {path.relative_to(tree).as_posix().encode() for path in tree.rglob("*")} == expected
    again = json.loads(tapefs("file-catalog", media_set, "--drive", "drive0", "--output-format", "json").stdout)
    assert again["recorded"] == [] and again["already-recorded"] == [f"store:{snapshot}"]


def test_unknown_media_set_is_a_clear_error(tape_setup):
    proc = tapefs("file-catalog", "00000000-0000-4000-8000-000000000000", "--drive", "drive0", check=False)
    assert proc.returncode == 1
    assert "names no snapshot on media set 00000000-0000-4000-8000-000000000000" in proc.stderr


def test_after_losing_the_state_directory_scan_then_file_catalog_rebuild_the_tree(tape_setup, tmp_path):
    add_cartridges(tape_setup.library, 2, "64MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8")
    tree = make_tree(tmp_path / "tree")
    result = backup(tape_setup.datastore, BackupGroup.parse("host/tree", BackupNamespace()),
                    parse_sources([f"root.pxar:{tree}"]), sync=False)
    backed_up = run_backup(tape_setup, eject_media=True)
    state = Path(os.environ["TAPEFS_STATE_DIR"])
    shutil.rmtree(state)
    for label in backed_up.tapes:
        tapefs("catalog", "--scan", "--force", "--drive", "drive0", "--label-text", label)
    rebuilt = json.loads(tapefs("file-catalog", backed_up.media_set, "--drive", "drive0",
                                "--output-format", "json").stdout)
    assert rebuilt["recorded"] == [f"store:{result.snapshot}"]
    with FileCatalog.open(state / "tape") as catalog:
        assert entry_names(catalog, "store", str(result.snapshot)) == \
            {path.relative_to(tree).as_posix().encode() for path in tree.rglob("*")}
