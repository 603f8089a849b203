"""Who can read a datastore: ``tapefs datastore create/backup/verify/fix-permissions`` as
subprocesses, checked by walking the tree and by reading as another user."""

import grp
import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tapefs.datastore.datastore import Datastore
from tests.helpers.commands import one_error_line, tapefs
from tests.helpers.datastore_cli import snapshot_names

AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="reading as another user needs root")


@pytest.fixture(autouse=True)
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def open_dir():
    """A directory every user may enter (pytest's own are 0700, which would hide everything)."""
    path = Path(tempfile.mkdtemp(prefix="tapefs-perm-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


def walk(root: Path):
    """(path, lstat) of root and everything below it."""
    yield root, root.lstat()
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            yield path, path.lstat()


def modes(root: Path) -> dict[str, set[Path]]:
    found = {}
    for path, info in walk(root):
        kind = "dir" if stat.S_ISDIR(info.st_mode) else "file"
        found.setdefault(f"{kind} {stat.S_IMODE(info.st_mode):o}", set()).add(path)
    return found


@pytest.fixture
def store(tmp_path, env):
    # without the 65536 prefix dirs (seconds saved); those are covered by the slow test
    Datastore.create(tmp_path / "store", prefix_dirs=False)
    tapefs("datastore", "add", "main", tmp_path / "store", env=env)
    return tmp_path / "store"


def test_backup_writes_only_private_dirs_and_files(store, env, tree, tmp_path):
    tapefs("datastore", "backup", "main", "host/web", tree, env=env)
    tapefs("datastore", "backup", "main", "--ns", "site/a", "host/web", tree, env=env)
    found = modes(store)
    assert set(found) == {"dir 750", "file 640"}, {k: sorted(map(str, v))[:3] for k, v in found.items()}
    files = {p.relative_to(store).parts[0] for p in found["file 640"]}
    assert files == {".lock", ".chunks", "host", "ns"}
    assert any(p.name == "index.json.blob" for p in found["file 640"])
    assert set(modes(tmp_path / "config")) == {"dir 750", "file 640"}


@pytest.mark.slow
def test_create_with_group_gives_every_dir_and_file_the_group(env, tree, tmp_path):
    group = "nogroup" if os.geteuid() == 0 else grp.getgrgid(os.getegid()).gr_name
    gid = grp.getgrnam(group).gr_gid
    tapefs("datastore", "create", "main", tmp_path / "store", "--group", group, env=env)
    tapefs("datastore", "backup", "main", "host/web", tree, env=env)
    found = modes(tmp_path / "store")
    assert set(found) == {"dir 2750", "file 640"}
    assert len(found["dir 2750"]) > 65536
    assert {info.st_gid for _, info in walk(tmp_path / "store")} == {gid}


def test_create_with_unknown_group_is_one_line_and_creates_nothing(env, tmp_path):
    proc = tapefs("datastore", "create", "main", tmp_path / "store", "--group", "no-such-group", env=env, check=False)
    assert one_error_line(proc) == "tapefs: error: no group named 'no-such-group'"
    assert not (tmp_path / "store").exists()
    assert "no datastores" in tapefs("datastore", "list", env=env).stdout


@needs_root
def test_other_users_cannot_read_a_chunk(env, tree, open_dir):
    control = open_dir / "public.txt"
    control.write_text("anyone\n")
    control.chmod(0o644)
    assert subprocess.run([*AS_NOBODY, "cat", control], capture_output=True, text=True).stdout == "anyone\n"

    Datastore.create(open_dir / "store", prefix_dirs=False)
    tapefs("datastore", "add", "main", open_dir / "store", env=env)
    tapefs("datastore", "backup", "main", "host/web", tree, env=env)
    chunk = next(p for p in (open_dir / "store" / ".chunks").rglob("*") if p.is_file())
    denied = subprocess.run([*AS_NOBODY, "cat", chunk], capture_output=True, text=True)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr

    # the datastore's group reads it (nobody's group is nogroup here)
    tapefs("datastore", "fix-permissions", "main", "--group", "nogroup", env=env)
    allowed = subprocess.run([*AS_NOBODY, "cat", chunk], capture_output=True)
    assert allowed.returncode == 0 and allowed.stdout == chunk.read_bytes()


def test_verify_warns_and_fix_permissions_restricts_a_world_readable_datastore(store, env, tree):
    tapefs("datastore", "backup", "main", "host/web", tree, env=env)
    subprocess.run(["chmod", "-R", "o+rwX,g+w", store], check=True)
    found = modes(store)
    dirs, files = len(found["dir 777"]), len(found["file 666"])

    text = tapefs("datastore", "verify", "main", env=env).stdout
    warning = (f"warning: {dirs} directories and {files} files of datastore main are open to other users; "
               f"'tapefs datastore fix-permissions main' restricts them")
    assert warning in text.splitlines() and text.strip().endswith(": ok")
    report = json.loads(tapefs("datastore", "verify", "main", "--output-format", "json", env=env).stdout)
    assert report["open-to-others"] == {"directories": dirs, "files": files}

    fixed = tapefs("datastore", "fix-permissions", "main", env=env).stdout
    # one more file than before: .verify-status, which verify wrote (0640 already)
    assert fixed == f"checked {dirs} directories and {files + 1} files of datastore main, changed {dirs + files}\n"
    assert set(modes(store)) == {"dir 750", "file 640"}
    again = json.loads(tapefs("datastore", "fix-permissions", "main", "--output-format", "json", env=env).stdout)
    assert again == {"directories": dirs, "files": files + 1, "changed": 0}
    text = tapefs("datastore", "verify", "main", env=env).stdout
    assert "warning" not in text
    report = json.loads(tapefs("datastore", "verify", "main", "--output-format", "json", env=env).stdout)
    assert report["open-to-others"] == {"directories": 0, "files": 0}
    [snapshot] = snapshot_names(env)
    tapefs("datastore", "restore", "main", snapshot, "root.pxar", store.parent / "out", env=env)
    assert subprocess.run(["diff", "-r", "--no-dereference", tree, store.parent / "out"]).returncode == 0


def test_fix_permissions_errors_are_one_line(store, env):
    proc = tapefs("datastore", "fix-permissions", "main", "--group", "no-such-group", env=env, check=False)
    assert one_error_line(proc) == "tapefs: error: no group named 'no-such-group'"
    proc = tapefs("datastore", "fix-permissions", "nope", env=env, check=False)
    assert "no datastore named 'nope'" in one_error_line(proc)
