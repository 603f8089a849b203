"""``tapefs datastore`` as a user runs it: the installed entry point in a subprocess."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.key_config import KeyConfig

TAPEFS = str(Path(sys.executable).parent / "tapefs")


@pytest.fixture
def env(tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TAPEFS_")}
    environment["TAPEFS_CONFIG_DIR"] = str(tmp_path / "config")
    environment["TAPEFS_STATE_DIR"] = str(tmp_path / "state")
    return environment


def tapefs(*args, env, check=True):
    proc = subprocess.run([TAPEFS, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    if check:
        assert proc.returncode == 0, f"tapefs {' '.join(map(str, args))}: {proc.stderr}"
    return proc


def one_error_line(proc) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def store(tmp_path, env):
    # made by the library without the 65536 prefix dirs (seconds saved), then registered
    # through the CLI like an existing PBS datastore
    Datastore.create(tmp_path / "store", prefix_dirs=False)
    tapefs("datastore", "add", "main", tmp_path / "store", env=env)
    return tmp_path / "store"


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "data.bin").write_bytes(random.Random(1).randbytes(300000))
    (root / "notes.txt").write_text("tapefs\n")
    os.symlink("notes.txt", root / "link")
    return root


def snapshot_names(env, *extra):
    return [row["snapshot"] for row in json.loads(tapefs("datastore", "snapshots", "main", *extra, "--output-format", "json", env=env).stdout)]


def test_add_and_list(store, env, tmp_path):
    listing = json.loads(tapefs("datastore", "list", "--output-format", "json", env=env).stdout)
    assert listing == [{"name": "main", "path": str(store), "comment": ""}]
    assert "main" in tapefs("datastore", "list", env=env).stdout
    assert (tmp_path / "config" / "datastore.cfg").read_text() == f"datastore: main\n\tpath {store}\n"


@pytest.mark.slow
def test_backup_snapshots_restore_verify(store, env, tree, tmp_path):
    proc = tapefs("datastore", "backup", "main", "host/web", tree, env=env)
    assert proc.stdout.startswith("snapshot host/web/")
    [snapshot] = snapshot_names(env)
    rows = json.loads(tapefs("datastore", "snapshots", "main", "--output-format", "json", env=env).stdout)
    assert [f["filename"] for f in rows[0]["files"]] == ["root.pxar.didx", "catalog.pcat1.didx"]
    assert rows[0]["size"] == sum(f["size"] for f in rows[0]["files"]) > 300000
    assert snapshot in tapefs("datastore", "snapshots", "main", env=env).stdout

    target = tmp_path / "restored"
    tapefs("datastore", "restore", "main", snapshot, "root.pxar", target, env=env)
    assert subprocess.run(["diff", "-r", "--no-dereference", tree, target]).returncode == 0
    assert os.readlink(target / "link") == "notes.txt"

    verify = tapefs("datastore", "verify", "main", env=env)
    assert verify.stdout.strip().endswith(": ok")


@pytest.mark.slow
def test_image_backup_in_namespace(store, env, tmp_path):
    image = tmp_path / "vm-disk.raw"
    image.write_bytes(random.Random(2).randbytes(5 << 20))
    tapefs("datastore", "backup", "main", "--ns", "lab/rack1", "vm/101", image, env=env)
    assert snapshot_names(env) != []
    [snapshot] = snapshot_names(env, "--ns", "lab")
    assert (store / "ns" / "lab" / "ns" / "rack1" / "vm" / "101").is_dir()
    tapefs("datastore", "restore", "main", "--ns", "lab/rack1", snapshot, "vm-disk.img", tmp_path / "out.raw", env=env)
    assert (tmp_path / "out.raw").read_bytes() == image.read_bytes()


@pytest.mark.slow
def test_encrypted_backup_with_keyfile(store, env, tree, tmp_path):
    keyfile = tmp_path / "key.json"
    KeyConfig.create(b"\x09" * 32, b"long passphrase", "PBKDF2").save(keyfile)
    env["TAPEFS_KEY_PASSPHRASE"] = "long passphrase"
    tapefs("datastore", "backup", "main", "--keyfile", keyfile, "host/secret", tree, env=env)
    [snapshot] = snapshot_names(env)
    no_key = tapefs("datastore", "restore", "main", snapshot, "root.pxar", tmp_path / "x", env=env, check=False)
    assert "key is needed" in one_error_line(no_key)
    tapefs("datastore", "restore", "main", "--keyfile", keyfile, snapshot, "root.pxar", tmp_path / "ok", env=env)
    assert (tmp_path / "ok" / "notes.txt").read_text() == "tapefs\n"
    env["TAPEFS_KEY_PASSPHRASE"] = "wrong passphrase"
    wrong = tapefs("datastore", "restore", "main", "--keyfile", keyfile, snapshot, "root.pxar", tmp_path / "y", env=env, check=False)
    assert "wrong passphrase" in one_error_line(wrong)


def test_verify_lists_bad_chunk_and_snapshot(store, env, tree):
    tapefs("datastore", "backup", "main", "host/web", tree, env=env)
    [snapshot] = snapshot_names(env)
    chunk = next(p for p in (store / ".chunks").rglob("*") if p.is_file())
    raw = bytearray(chunk.read_bytes())
    raw[-1] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    proc = tapefs("datastore", "verify", "main", env=env, check=False)
    assert proc.returncode == 1
    assert f"bad chunk {chunk.name}: " in proc.stdout and "CRC mismatch" in proc.stdout
    assert f"  used by {snapshot}" in proc.stdout
    report = json.loads(tapefs("datastore", "verify", "main", "--output-format", "json", env=env, check=False).stdout)
    assert report["ok"] is False and report["bad-chunks"][0]["snapshots"] == [snapshot]


def test_corrupt_index_is_one_line_error_with_offset(store, env, tree, tmp_path):
    tapefs("datastore", "backup", "main", "host/web", tree, env=env)
    [snapshot] = snapshot_names(env)
    index = store / snapshot / "root.pxar.didx"
    raw = bytearray(index.read_bytes())
    raw[0] ^= 1
    index.write_bytes(bytes(raw))
    proc = tapefs("datastore", "restore", "main", snapshot, "root.pxar", tmp_path / "out", env=env, check=False)
    assert one_error_line(proc) == f"tapefs: error: {index}: at byte 0: not a dynamic index (magic {bytes(raw[:8]).hex()})"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("datastore", "snapshots", "nope"), "no datastore named 'nope'"),
        (("datastore", "backup", "main", "disk/x", "/"), "invalid backup type 'disk'"),
        (("datastore", "backup", "main", "host/x", "/does/not/exist"), "No such file or directory"),
        (("datastore", "restore", "main", "host/x/2020-01-01T00:00:00Z", "root.pxar", "/tmp/x"), "not found"),
        (("datastore", "restore", "main", "host/x/yesterday", "root.pxar", "/tmp/x"), "invalid backup time"),
        (("datastore", "add", "other", "/"), "not a datastore"),
    ],
)
def test_errors_are_one_line(store, env, args, fragment):
    line = one_error_line(tapefs(*args, env=env, check=False))
    assert fragment in line


def test_bad_config_file_names_line(env, tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "datastore.cfg").write_text("datastore: a\n\tpath /x\ngarbage\n")
    line = one_error_line(tapefs("datastore", "list", env=env, check=False))
    assert f"{tmp_path / 'config' / 'datastore.cfg'}:3:" in line


@pytest.mark.slow
def test_create_makes_pbs_layout(env, tmp_path):
    tapefs("datastore", "create", "fresh", tmp_path / "fresh", env=env)
    assert len(os.listdir(tmp_path / "fresh" / ".chunks")) == 65536
    assert (tmp_path / "fresh" / ".lock").exists()
    again = tapefs("datastore", "create", "fresh", tmp_path / "fresh2", env=env, check=False)
    assert "already exists" in one_error_line(again)


@pytest.mark.slow
def test_snapshots_lists_around_a_corrupt_manifest(store, env, tree):
    tapefs("datastore", "backup", "main", "host/a", tree, env=env)
    tapefs("datastore", "backup", "main", "host/b", tree, env=env)
    first, second = snapshot_names(env)
    (store / first / "index.json.blob").write_bytes(b"garbage, not a blob")
    rows = json.loads(tapefs("datastore", "snapshots", "main", "--output-format", "json", env=env).stdout)
    assert [r["snapshot"] for r in rows] == [first, second]
    assert "unknown blob magic" in rows[0]["error"] and rows[0]["size"] is None
    assert rows[1]["size"] > 0
    text = tapefs("datastore", "snapshots", "main", env=env).stdout
    assert "unknown blob magic" in text and second in text


def test_verify_with_another_key_and_mark_bad_keeps_the_datastore_restorable(store, env, tree, tmp_path):
    right, wrong = tmp_path / "right.json", tmp_path / "wrong.json"
    KeyConfig.create(b"\x09" * 32, None, None).save(right)
    KeyConfig.create(b"\x0a" * 32, None, None).save(wrong)
    tapefs("datastore", "backup", "main", "--keyfile", right, "host/secret", tree, env=env)
    [snapshot] = snapshot_names(env)
    chunks_before = sorted(p.name for p in (store / ".chunks").rglob("*") if p.is_file())

    text = tapefs("datastore", "verify", "main", "--keyfile", wrong, "--mark-bad", env=env).stdout
    assert f"snapshot {snapshot}: manifest was written with key " in text
    assert "its chunks were checked by CRC only" in text
    assert text.strip().endswith(": ok") and "CRC only: no matching key" in text
    report = json.loads(tapefs("datastore", "verify", "main", "--keyfile", wrong, "--mark-bad",
                               "--output-format", "json", env=env).stdout)
    assert report["ok"] is True and report["bad-chunks"] == []
    assert list(report["key-mismatch"]) == [snapshot] and report["crc-only"] == len(chunks_before)
    assert sorted(p.name for p in (store / ".chunks").rglob("*") if p.is_file()) == chunks_before

    tapefs("datastore", "restore", "main", "--keyfile", right, snapshot, "root.pxar", tmp_path / "out", env=env)
    assert subprocess.run(["diff", "-r", "--no-dereference", tree, tmp_path / "out"]).returncode == 0
    assert tapefs("datastore", "verify", "main", "--keyfile", right, env=env).stdout.strip().endswith(": ok")
