"""R5 through a full tape restore: a tape whose content is hostile, restored with `tapefs restore
MEDIA_SET STORE`, writes nothing outside the target datastore, and says in one line (no
traceback) what it refused.

Three kinds of hostile content, each on a real vtape cartridge:

* snapshot archives (the pxar of a snapshot's files that a tape carries) with entries a writer
  never makes: `..`, `/`, NUL and non-UTF-8 names, a symlink, a subdirectory, a hardlink, a
  device node, a size past the end, a manifest whose file list climbs out of the snapshot
  directory;
* a tape archive header naming a snapshot path that climbs out, or one that is no JSON (the
  header patched on the cartridge; the readers' refusal of such names is
  tests/reliability/test_hostile_names.py);
* snapshots whose data archive (`data.pxar`) is hostile (tests/helpers/reliability_fuzz_archives.py):
  the tape restore copies them as they are, and the file-level `tapefs datastore restore` from the
  restored datastore refuses them or restores links as links, as it does from any datastore
  (tests/reliability/test_hostile_archives.py).

Outside means the parent directory of the target datastore and of each file-level target:
its whole tree is listed before and after, and only the target itself may change."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from tapefs.datastore.manifest import MANIFEST_BLOB_NAME, Manifest
from tapefs.datastore.naming import BackupSnapshot
from tapefs.errors import ExitCode
from tapefs.jobs import backup as backup_job
from tapefs.pxar.encoder import Encoder
from tapefs.pxar.entry import Metadata
from tapefs.tapeformat.block import HEADER_SIZE as BLOCK_HEADER_SIZE
from tapefs.tapeformat.content_header import CONTENT_HEADER_SIZE
from tests.helpers import reliability_fuzz_archives as hostile
from tests.helpers.commands import one_error_line, tapefs, tapefs_json
from tests.helpers.reliability_corruption import tape_blocks
from tests.helpers.reliability_crash import create_datastore
from tests.helpers.synthetic_snapshots import make_snapshot
from tests.helpers.tape_jobs import run_backup
from tests.helpers.tape_setup import add_cartridges

pytestmark = [pytest.mark.vtape, pytest.mark.slow]
TIME = "2024-01-01T00:00:00Z"
FILE = Metadata(mode=stat.S_IFREG | 0o644, mtime_secs=1700000000)
ROOT = Metadata(mode=stat.S_IFDIR | 0o755, mtime_secs=1700000000)


def tree(path: Path) -> dict[str, tuple]:
    """Every entry under `path` (not following links): relative path → type, size, link target."""
    found = {}
    for directory, dirs, files in os.walk(path):
        for name in dirs + files:
            entry = Path(directory, name)
            info = entry.lstat()
            target = os.readlink(entry) if entry.is_symlink() else None
            found[str(entry.relative_to(path))] = (stat.S_IFMT(info.st_mode), info.st_size, target)
    return found


def outside(before: dict[str, tuple], after: dict[str, tuple], *targets: str) -> dict[str, tuple]:
    """What changed in a tree between two listings, leaving out the `targets` and what is under them."""

    def elsewhere(name: str) -> bool:
        return not any(name == t or name.startswith(t + "/") for t in targets)

    keys = {k for k in before.keys() | after.keys() if elsewhere(k)}
    return {k: (before.get(k), after.get(k)) for k in sorted(keys) if before.get(k) != after.get(k)}


def snapshot_pxar(files: list[tuple[bytes, bytes]], build=None) -> bytes:
    """A snapshot archive's pxar: a root directory of (name, content) files, then `build(encoder)`."""
    out = io.BytesIO()
    encoder = Encoder(out, ROOT)
    for name, content in files:
        encoder.add_file(name, FILE, len(content), content)
    if build is not None:
        build(encoder)
    encoder.finish()
    return out.getvalue()


def manifest_naming(*filenames: str) -> bytes:
    manifest = Manifest("host", "x", 1704067200)
    for name in filenames:
        manifest.add_file(name, 0, bytes(32))
    return manifest.encode()


def hostile_snapshot_archives(escape: Path) -> dict[str, tuple[bytes, str]]:
    """Case → (snapshot archive pxar, words of the one-line error). `escape` is a directory
    outside the target that a naive extractor would write into."""
    manifest = (MANIFEST_BLOB_NAME.encode(), manifest_naming())
    escape_bytes = os.fsencode(escape)

    def patched(name: bytes) -> bytes:
        """A file named `name` (placeholder `n` * len, patched after encoding, as only a broken
        writer could make it)."""
        placeholder = b"n" * len(name)
        data = snapshot_pxar([manifest, (placeholder, b"bad")])
        return data.replace(placeholder + b"\0", name + b"\0", 1)

    climbing = b"../../../../../../../.." + escape_bytes + b"/x"
    return {
        "dot-dot": (patched(b".."), "not a single path component"),
        "climbing-name": (patched(climbing), "not a single path component"),
        "nul-name": (patched(b"index.json.blob\0x"), "not a single path component"),
        "not-utf8": (patched(b"\xff\xfe"), "is not UTF-8"),
        "symlink": (
            snapshot_pxar([manifest], lambda e: e.add_symlink(b"index.json.blob.link", hostile.SYMLINK, escape_bytes)),
            "unexpected entry",
        ),
        "subdirectory": (
            snapshot_pxar([manifest], lambda e: (e.begin_directory(b"sub", ROOT), e.add_file(b"x", FILE, 3, b"bad"),
                                                 e.end_directory())),
            "unexpected entry",
        ),
        "hardlink": (
            snapshot_pxar([manifest], lambda e: e.add_hardlink(b"h", b"../../" + escape_bytes, 0)),
            "unexpected entry",
        ),
        "device": (
            snapshot_pxar([manifest], lambda e: e.add_device(b"null", hostile.CHAR_DEVICE, 1, 3)),
            "unexpected entry",
        ),
        "huge-size": (huge_snapshot_file(manifest), "runs past the end"),
        "manifest-climbing": (
            snapshot_pxar([(MANIFEST_BLOB_NAME.encode(), manifest_naming("../../../../x.fidx"))]),
            "which the snapshot archive does not hold",
        ),
    }


def huge_snapshot_file(manifest: tuple[bytes, bytes]) -> bytes:
    data = bytearray(snapshot_pxar([manifest, (b"big", b"8 bytes.")]))
    payload = data.index(b"8 bytes.") - 16
    data[payload + 8 : payload + 16] = (2**62 + 16).to_bytes(8, "little")
    return bytes(data)


@pytest.fixture
def hostile_tape(tape_setup, tmp_path, monkeypatch):
    """Media set of one tape: snapshot `host/<case>` for each hostile snapshot archive (the real
    snapshot in the datastore is sound; the backup writes the hostile pxar in its place), then
    `host/plain`, a sound one. Returns (setup, media set, cases, escape directory)."""
    escape = tmp_path / "escape"
    escape.mkdir()
    cases = hostile_snapshot_archives(escape)
    for name in [*cases, "plain"]:
        make_snapshot(tape_setup.datastore, BackupSnapshot.parse(f"host/{name}/{TIME}"),
                      pieces=[snapshot_pxar([(b"f", b"plain data")])])
    real = backup_job.encode_snapshot_pxar

    def encode(datastore, snapshot):
        case = cases.get(snapshot.group.backup_id)
        return case[0] if case else real(datastore, snapshot)

    monkeypatch.setattr(backup_job, "encode_snapshot_pxar", encode)
    add_cartridges(tape_setup.library, 1, "32MiB", "4MiB")
    tape_setup.label("SM0001L8")
    result = run_backup(tape_setup, eject_media=True)
    monkeypatch.setattr(backup_job, "encode_snapshot_pxar", real)
    return tape_setup, result.media_set, cases, escape


def test_hostile_snapshot_archives_on_tape_are_refused_and_write_nothing_outside(hostile_tape, tmp_path):
    setup, media_set, cases, escape = hostile_tape
    create_datastore("restored", tmp_path / "restored")
    before = tree(tmp_path)
    # The full restore stops at the first hostile snapshot archive, naming tape and file.
    full = tapefs("restore", media_set, "restored", "--drive", "drive1", check=False)
    line = one_error_line(full, ExitCode.DATA, "tapefs")
    assert "tape SM0001L8 file " in line, line
    # Each one named on its own is refused with its own reason; none is listed afterwards.
    for case, (_, words) in cases.items():
        result = tapefs("restore", media_set, "restored", f"store:host/{case}/{TIME}", "--drive", "drive1",
                        check=False)
        line = one_error_line(result, ExitCode.DATA, "tapefs")
        assert words in line and "tape SM0001L8 file " in line, f"{case}: {line}"
    assert [s["snapshot"] for s in tapefs_json("datastore", "snapshots", "restored")] == []
    assert os.listdir(escape) == []
    assert outside(before, tree(tmp_path), "restored", "state", "config") == {}
    # The sound snapshot after them restores.
    tapefs("restore", media_set, "restored", f"store:host/plain/{TIME}", "--drive", "drive1")
    assert [s["snapshot"] for s in tapefs_json("datastore", "snapshots", "restored")] == [f"host/plain/{TIME}"]


def patch_snapshot_header(cartridge: Path, file_number: int, old: str, new: str | None) -> None:
    """Replace the snapshot path `old` in the JSON header of tape file `file_number` by `new`
    (no longer than `old`; padded with blanks after the JSON, as test_hostile_names does), or
    with None make the header no JSON at all."""
    _, offset, length = tape_blocks(cartridge, file_number)[0]
    with open(cartridge / "data", "r+b") as data:
        data.seek(offset)
        block = data.read(length)
        start = BLOCK_HEADER_SIZE + CONTENT_HEADER_SIZE
        end = block.index(b"}", start) + 1
        header = json.loads(block[start:end])
        assert header["snapshot"] == old, header
        header["snapshot"] = new
        text = json.dumps(header).encode() if new is not None else b"[" + block[start + 1 : end]
        assert len(text) <= end - start
        data.seek(offset + start)
        data.write(text.ljust(end - start))


@pytest.mark.parametrize("path, words", [
    ("host/../2024-01-01T00:00:00Z", "not a snapshot path"),
    ("../../../x/2024-01-01T00:00:00Z", "not a snapshot path"),
    (None, "header data is not JSON"),
], ids=["dot-dot", "climbing", "not-json"])
def test_a_hostile_tape_header_is_refused_naming_the_tape(tape_setup, tmp_path, path, words):
    make_snapshot(tape_setup.datastore, BackupSnapshot.parse(f"host/headers/{TIME}"),
                  pieces=[snapshot_pxar([(b"f", b"data")])])
    add_cartridges(tape_setup.library, 1, "32MiB", "4MiB")
    tape_setup.label("SM0001L8")
    result = run_backup(tape_setup, eject_media=True)
    with tape_setup.catalog() as catalog:
        [place] = catalog.snapshots_in_set(result.media_set)
    patch_snapshot_header(tape_setup.library.path / "cartridges" / "SM0001L8", place.file_number,
                          f"host/headers/{TIME}", path)
    create_datastore("restored", tmp_path / "restored")
    before = tree(tmp_path)
    # Refused by the full restore and when named, with the tape and file.
    for named in ([], [f"store:host/headers/{TIME}"]):
        restore = tapefs("restore", result.media_set, "restored", *named, "--drive", "drive1", check=False)
        line = one_error_line(restore, ExitCode.DATA, "tapefs")
        assert words in line and f"tape SM0001L8: tape file {place.file_number}:" in line, line
    assert outside(before, tree(tmp_path), "restored", "state", "config") == {}
    assert tapefs_json("datastore", "snapshots", "restored") == []


#: data archives (data.pxar) refused by the file-level restore: (case, archive, words of the error)
REFUSED = [
    ("symlink-then-directory", lambda escape: hostile.symlink_then_directory(os.fsencode(escape)), "not a directory"),
    ("hardlink-climbing", lambda escape: hostile.hardlink_outside(b"a/../../x"), "refusing"),
    ("dot-dot-name", lambda escape: hostile.named(b".."), "not a single path component"),
    ("slash-name", lambda escape: hostile.named(b"/etc"), "not a single path component"),
    ("nul-name", lambda escape: hostile.named(b"a\0b"), "not a single path component"),
    ("huge-size", lambda escape: hostile.huge_file(2**62), "runs past the end"),
]


def test_hostile_data_archives_restored_from_tape_write_nothing_outside(tape_setup, tmp_path):
    escape = tmp_path / "escape"
    escape.mkdir()
    datastore = tape_setup.datastore
    for case, archive, _ in REFUSED:
        make_snapshot(datastore, BackupSnapshot.parse(f"host/{case}/{TIME}"), pieces=[archive(escape)])
    make_snapshot(datastore, BackupSnapshot.parse(f"host/links/{TIME}"),
                  pieces=[hostile.absolute_and_climbing_symlinks()])
    add_cartridges(tape_setup.library, 1, "32MiB", "4MiB")
    tape_setup.label("SM0001L8")
    result = run_backup(tape_setup, eject_media=True)
    create_datastore("restored", tmp_path / "restored")
    before = tree(tmp_path)
    # The tape restore copies the snapshots as they are: their data is chunks, not files.
    tapefs("restore", result.media_set, "restored", "--drive", "drive1")
    assert len(tapefs_json("datastore", "snapshots", "restored")) == len(REFUSED) + 1
    files = tmp_path / "files"
    files.mkdir()
    for case, _, words in REFUSED:
        target = files / case
        restore = tapefs("datastore", "restore", "restored", f"host/{case}/{TIME}", "data.pxar", target, check=False)
        line = one_error_line(restore, ExitCode.DATA, "tapefs")
        assert words in line, f"{case}: {line}"
        assert not (target / "big").exists()
    tapefs("datastore", "restore", "restored", f"host/links/{TIME}", "data.pxar", files / "links")
    links = files / "links"
    assert os.readlink(links / "abs") == "/etc/passwd"
    assert os.readlink(links / "up") == "../../../../../../../../tmp"
    assert (links / "plain").read_bytes() == b"plain"
    assert os.listdir(escape) == []
    # Only the restored datastore, the file-level targets and the private state changed.
    assert outside(before, tree(tmp_path), "restored", "files", "state", "config") == {}
