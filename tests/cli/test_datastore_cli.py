"""``tapefs datastore`` as a user runs it: the installed entry point in a subprocess."""

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tapefs.datastore.key_config import KeyConfig
from tests.helpers.commands import command_path, one_error_line, tapefs
from tests.helpers.datastore_cli import snapshot_names


def test_add_and_list(store, env, tmp_path):
    listing = json.loads(tapefs("datastore", "list", "--output-format", "json", env=env).stdout)
    assert listing == [{"name": "main", "path": str(store), "comment": None}]
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
    assert chunk.name not in proc.stderr  # said once, not also as a log warning
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


def start_backup_from_fifo(env, tmp_path, name: str, head: bytes):
    """A `tapefs datastore backup` of group host/box reading an image from a FIFO: it has
    consumed `head` and waits for more, its snapshot directory half written."""
    fifo = tmp_path / f"{name}.fifo"
    os.mkfifo(fifo)
    process = subprocess.Popen([command_path("tapefs"), "datastore", "backup", "main", "host/box", f"disk.img:{fifo}"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = open(fifo, "wb")  # returns once the backup opened the FIFO, its index being created
    writer.write(head)
    writer.flush()
    return process, writer


def wait_for(condition, process, what: str):
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"no {what} within 60 s"
        time.sleep(0.02)


def chunk_files(store: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in (store / ".chunks").rglob("*") if path.is_file()}


@pytest.mark.slow
def test_backup_killed_with_sigkill_leaves_a_leftover_that_is_reported_and_removed(store, env, tmp_path):
    # One backup of the group is running all along, its input stalled.
    running, running_input = start_backup_from_fifo(env, tmp_path, "running", random.Random(4).randbytes(1 << 20))
    wait_for(lambda: list((store / "host" / "box").glob("*/disk.img.tmp_fidx")), running, "snapshot")
    [running_dir] = [path for path in (store / "host" / "box").iterdir() if path.is_dir()]
    running_name = f"host/box/{running_dir.name}"
    # Another one has stored one 4 MiB chunk and waits for more input when it is killed.
    killed, killed_input = start_backup_from_fifo(env, tmp_path, "killed", random.Random(3).randbytes(5 << 20))
    wait_for(lambda: chunk_files(store), killed, "chunk")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    killed_input.close()
    [leftover] = [path for path in (store / "host" / "box").iterdir() if path.is_dir() and path != running_dir]
    assert [p.name for p in leftover.iterdir()] == ["disk.img.tmp_fidx"]
    chunks_of_killed = chunk_files(store)

    rows = json.loads(tapefs("datastore", "snapshots", "main", "--output-format", "json", env=env).stdout)
    assert [(row["snapshot"], row["unfinished"], row["size"]) for row in rows] == [
        (running_name, "in-progress", None), (f"host/box/{leftover.name}", "abandoned", None)]
    text = tapefs("datastore", "snapshots", "main", env=env).stdout
    assert (f"host/box/{leftover.name}: unfinished snapshot (left by an interrupted backup; "
            "the next backup of host/box removes it)") in text
    assert f"{running_name}: unfinished snapshot (a backup is still writing it)" in text
    verify = tapefs("datastore", "verify", "main", env=env).stdout.splitlines()
    assert verify[0] == f"unfinished snapshot {running_name} (a backup is still writing it)"
    assert verify[1] == (f"unfinished snapshot host/box/{leftover.name} (left by an interrupted backup; "
                         "the next backup of host/box removes it)")
    assert verify[-1].endswith(": ok")
    report = json.loads(tapefs("datastore", "verify", "main", "--output-format", "json", env=env).stdout)
    assert report["ok"] and [(u["snapshot"], u["state"]) for u in report["unfinished-snapshots"]] == [
        (running_name, "in-progress"), (f"host/box/{leftover.name}", "abandoned")]

    # The next backup of the group removes the leftover, not the snapshot still being written.
    image = tmp_path / "disk.raw"
    image.write_bytes(random.Random(5).randbytes(1 << 20))
    next_backup = tapefs("datastore", "backup", "main", "host/box", f"disk.img:{image}", env=env).stdout
    assert next_backup.splitlines()[0] == f"removed unfinished snapshot host/box/{leftover.name} (left by an interrupted backup)"
    assert not leftover.exists()
    assert (store / running_name).is_dir()
    # The killed backup's chunks stay as they were: only garbage collection may remove chunks.
    assert {name: chunk_files(store)[name] for name in chunks_of_killed} == chunks_of_killed

    running_input.write(random.Random(6).randbytes(1 << 20))
    running_input.close()
    assert running.wait(timeout=60) == 0, running.communicate()
    assert len(snapshot_names(env)) == 2
    report = json.loads(tapefs("datastore", "verify", "main", "--output-format", "json", env=env).stdout)
    assert report["ok"] and report["snapshots"] == 2 and report["unfinished-snapshots"] == []


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["legacy", "data"])  # pxar v1; split v2 archive
def test_restore_never_overwrites_existing_data(store, env, tree, tmp_path, mode):
    os.link(tree / "dir" / "data.bin", tree / "hard")  # the archive has the file first, then the link
    proc = tapefs("datastore", "backup", "main", "host/web", tree, "--change-detection-mode", mode, env=env)
    snapshot = proc.stdout.splitlines()[0].removeprefix("snapshot ")
    target = tmp_path / "home"
    target.mkdir()
    os.chmod(target, 0o1777)
    if os.geteuid() == 0:
        os.chown(target, 65534, 65534)
    before = target.stat()

    def restore(*options):
        return tapefs("datastore", "restore", "main", snapshot, "root.pxar", target, *options, env=env, check=False)

    (target / "notes.txt").write_text("IMPORTANT-DATA")
    refused = restore()
    assert one_error_line(refused) == (f"tapefs: error: refusing to overwrite existing file {target}/notes.txt; "
                                       "--overwrite-files or --overwrite replaces it")
    assert (target / "notes.txt").read_text() == "IMPORTANT-DATA"
    assert os.listdir(target) == ["notes.txt"]  # the conflict was found before anything was written

    for name, needed, insufficient in (("link", "--overwrite-symlinks", "--overwrite-files"),
                                       ("hard", "--overwrite-hardlinks", "--overwrite-symlinks")):
        (target / name).write_text("IMPORTANT-DATA")
        refused = restore("--overwrite-files", insufficient)
        assert one_error_line(refused).endswith(f" {target}/{name}; {needed} or --overwrite replaces it")
        assert (target / name).read_text() == "IMPORTANT-DATA"
        (target / name).unlink()

    os.unlink(target / "notes.txt")
    (target / "dir").mkdir(mode=0o700)
    (target / "mine.txt").write_text("kept")
    assert restore().returncode == 0  # merged into the existing directories
    assert (target / "mine.txt").read_text() == "kept" and (target / "notes.txt").read_text() == "tapefs\n"
    after = target.stat()
    assert (after.st_mode, after.st_uid, after.st_gid) == (before.st_mode, before.st_uid, before.st_gid)
    assert (target / "dir").stat().st_mode & 0o7777 == 0o700

    (target / "notes.txt").write_text("old")
    assert restore("--overwrite").returncode == 0
    assert (target / "notes.txt").read_text() == "tapefs\n"
    assert (target / "link").is_symlink() and (target / "hard").stat().st_ino == (target / "dir" / "data.bin").stat().st_ino
    assert target.stat().st_mode & 0o7777 == (tree.stat().st_mode & 0o7777)  # asked for with --overwrite

    tapefs("datastore", "restore", "main", snapshot, "root.pxar", tmp_path / "new", env=env)
    assert (tmp_path / "new" / "dir" / "data.bin").read_bytes() == (tree / "dir" / "data.bin").read_bytes()


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
