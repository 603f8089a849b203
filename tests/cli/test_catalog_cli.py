"""`tapefs catalog`, `tapefs scan` and `tapefs inventory --catalog` as real subprocesses against
a real vtape library, after the tape state directory (inventory and catalogs) was deleted."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tapefs.config.paths import tape_status_dir
from tapefs.datastore.datastore import Datastore
from tapefs.datastore.registry import DatastoreRegistry
from tests.helpers.commands import command_path, one_error_line, shell_env, tapefs, tapefs_json
from tests.helpers.tape_jobs import run_backup, snapshot_tree
from tests.helpers.tape_setup import add_cartridges

pytestmark = pytest.mark.vtape

@pytest.fixture
def backed_up(tape_setup):
    add_cartridges(tape_setup.library, 3, "16MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8", "SM0003L8")
    tape_setup.snapshots = [tape_setup.add_snapshot("vm/100", 3), tape_setup.add_snapshot("vm/101", 1),
                            tape_setup.add_snapshot("ct/200", 1, ns="site")]
    result = run_backup(tape_setup, eject_media=True)
    tape_setup.media_set, tape_setup.tapes = result.media_set, result.tapes
    assert len(result.tapes) >= 2
    return tape_setup


@pytest.mark.slow
def test_state_lost_then_inventory_catalog_and_scan_rebuild_then_restore(backed_up, tmp_path):
    setup = backed_up
    shutil.rmtree(tape_status_dir())
    rows = tapefs_json("inventory", "--read-labels", "--catalog", "--drive", "drive0")
    by_label = {row["label-text"]: row for row in rows}
    used = setup.tapes
    # The last tape of the set carries the catalogs of the earlier ones too.
    assert by_label[used[-1]]["catalog"] == "catalog-archive"
    assert {by_label[label]["catalog"] for label in used[:-1]} == {"present"}
    media = {row["label-text"]: row for row in tapefs_json("media", "list")}
    assert all(media[label]["catalog"] and media[label]["media-set-uuid"] == setup.media_set for label in used)

    # The catalogs exist now: rebuilding one needs --force; --scan records the chunk offsets.
    refused = tapefs("catalog", "--label-text", used[0], "--drive", "drive0", check=False)
    assert one_error_line(refused, 1).startswith(f"tapefs: error: tape {used[0]} already has a catalog (")
    assert refused.stderr.strip().endswith("--force rebuilds it from the tape")
    for label in used:
        result = tapefs_json("catalog", "--scan", "--force", "--label-text", label, "--drive", "drive0")
        assert result["method"] == "scan" and result["damaged"] == []
    text = tapefs("catalog", "--scan", "--force", "--verbose", "--label-text", used[-1], "--drive", "drive0").stdout
    assert f"tape {used[-1]} " in text and "catalog rebuilt from the tape (scanned)" in text
    assert "  chunk " in text and "file 2: " in text

    # A selective restore (single-chunk reads) and a full restore match the source.
    DatastoreRegistry().create("one", tmp_path / "one")
    wanted = setup.snapshots[0]
    restored = json.loads(tapefs("restore", setup.media_set, "store=one", f"store:{wanted}", "--drive", "drive1",
                                 "--output-format", "json").stdout)
    assert restored["snapshots"] == [f"store:{wanted}"]
    source = snapshot_tree(setup.datastore)
    one = snapshot_tree(Datastore.open(tmp_path / "one"))
    assert one and all(source[path] == data for path, data in one.items())
    DatastoreRegistry().create("full", tmp_path / "full")
    tapefs("restore", setup.media_set, "store=full", "--drive", "drive1")
    assert snapshot_tree(Datastore.open(tmp_path / "full")) == source


@pytest.mark.slow
def test_catalog_falls_back_to_a_scan_and_says_so(backed_up):
    setup = backed_up
    shutil.rmtree(tape_status_dir())
    first = tapefs("catalog", "--label-text", setup.tapes[0], "--drive", "drive0")
    assert "no usable catalog archive" in first.stdout and "(scanned)" in first.stdout
    assert f"added {setup.tapes[0]} to the inventory (media set {setup.media_set}, member 0)" in first.stdout
    # Without --label-text: the tape in the drive.
    tapefs("load-media", setup.tapes[-1], "--drive", "drive0")
    last = tapefs_json("catalog", "--drive", "drive0")
    assert last["label-text"] == setup.tapes[-1]
    assert last["method"] == "catalog-archive" and last["inventorized"]
    listed = tapefs_json("media", "content", "--media-set", setup.media_set)
    assert len(listed) == 3


def test_scan_lists_every_file(backed_up):
    setup = backed_up
    last = tapefs_json("scan", "--label-text", setup.tapes[-1], "--drive", "drive0")
    types = [row["type"] for row in last]
    assert types[:2] == ["media-label", "media-set-label"] and types[-1] == "catalog-archive"
    # A later tape of the set starts with the catalogs of the earlier members.
    assert types[2] == "catalog-archive"
    assert [row["file"] for row in last] == list(range(len(last)))
    assert last[0]["header"]["label_text"] == setup.tapes[-1]
    assert all(row["uuid"] and row["error"] is None for row in last)
    on_tapes = [row for label in setup.tapes for row in tapefs_json("scan", "--label-text", label,
                                                                     "--drive", "drive0")]
    snapshots = {row["snapshot"] for row in on_tapes if row["type"] == "snapshot-archive"
                 and not row["incomplete"] and not row["missing-end-marker"]}
    assert len(snapshots) == 3
    assert sum(row["chunks"] for row in on_tapes if row["type"] == "chunk-archive") >= 5
    text = tapefs("scan", "--label-text", setup.tapes[0], "--drive", "drive0").stdout
    assert "media-label" in text and "chunk-archive" in text and f"{setup.tapes[0]}, pool daily" in text


def test_unlabelled_tape_and_unknown_label_fail_with_one_line(tape_setup):
    add_cartridges(tape_setup.library, 1, "16MiB", "4MiB", prefix="UN")
    unlabelled = tapefs("catalog", "--label-text", "UN0001L8", "--drive", "drive0", check=False)
    assert one_error_line(unlabelled, 1) == ("tapefs: error: tape UN0001L8 in drive drive0 has no media label")
    missing = tapefs("catalog", "--label-text", "NOPE01L8", "--drive", "drive0", check=False)
    assert one_error_line(missing, status=5) == "tapefs: error: tape NOPE01L8 is not in changer lib"
    assert tapefs("scan", "--label-text", "UN0001L8", "--drive", "drive0").stdout.strip() == "the tape is empty"


@pytest.mark.slow
def test_scan_killed_midway_continues_when_run_again(backed_up):
    """kill -9 once the scan has finished a file: the next run continues after it and the
    catalog ends up naming every archive exactly once."""
    setup = backed_up
    label = setup.tapes[0]
    expected = tapefs_json("catalog", "--scan", "--force", "--label-text", label, "--drive", "drive0")
    shutil.rmtree(tape_status_dir())
    proc = subprocess.Popen([command_path("tapefs"), "catalog", "--scan", "--label-text", label, "--drive", "drive0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    deadline = time.monotonic() + 60
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        states = list(tape_status_dir().glob("*.scan")) if tape_status_dir().exists() else []
        try:
            progressed = states and json.loads(states[0].read_text())["next-file"] >= 4
        except (ValueError, OSError):
            progressed = False
        if progressed:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.002)
    proc.wait()
    if not killed:
        pytest.skip("the scan finished before it could be killed")
    assert proc.returncode == -signal.SIGKILL
    resumed = tapefs("catalog", "--label-text", label, "--drive", "drive0", "--output-format", "json")
    result = json.loads(resumed.stdout)
    assert result["method"] == "scan" and result["resumed-at"] >= 4
    assert any(note.startswith("continuing the interrupted scan") for note in result["notes"])
    assert "scanning tape" in resumed.stderr and "run `tapefs catalog" in resumed.stderr
    assert (result["archives"], result["snapshots"], result["chunks"]) == \
        (expected["archives"], expected["snapshots"], expected["chunks"])
    assert len(tapefs_json("media", "content", "--label-text", label)) == expected["snapshots"]


DOC = Path(__file__).resolve().parents[2] / "docs" / "catalog.md"
DOC_PREFIX = "/tmp/vtcat"


def doc_script(prefix: str) -> str:
    """The `$ ` lines of docs/catalog.md as one bash script; a line shown with "[exit status N]"
    must fail with exactly N."""
    steps: list[list] = []
    for block in re.findall(r"```console\n(.*?)```", DOC.read_text(), re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append([line[2:].replace(DOC_PREFIX, prefix), 0])
            elif steps and (match := re.fullmatch(r"\[exit status (\d+)\]", line)):
                steps[-1][1] = int(match.group(1))
    lines = ["set -euo pipefail"]
    for command, status in steps:
        if status:
            lines.append(f"if {command}; then exit 99; else rc=$?; [ $rc -eq {status} ]; fi")
        else:
            lines.append(command)
    return "\n".join(lines)


@pytest.mark.slow
def test_doc_walkthrough_runs_as_written():
    root = Path(tempfile.mkdtemp(prefix="vc", dir="/tmp"))
    prefix = str(root / "vtcat")
    env = shell_env(root)
    try:
        script = doc_script(prefix)
        assert "--catalog" in script and "catalog --scan" in script and "tapefs scan" in script
        proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=300,
                              cwd=root)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        assert "catalog-archive" in proc.stdout and "verified 1 snapshots" in proc.stdout
    finally:
        subprocess.run([command_path("vtape"), "stop", prefix], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
