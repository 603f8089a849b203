"""``tapefs key`` as real subprocesses with private config and state directories: every command,
one-line errors that change nothing, and no key bytes in any output or log line."""
import base64
import json
import os
import pty
import stat
import subprocess
import time
import uuid

import pytest

from tapefs.datastore.crypt_config import CryptConfig
from tapefs.keys.key_store import KEY_CONFIGS_FILE, RAW_KEYS_FILE, TapeKeyStore, protect_key
from tapefs.keys.media_set_key import derive_drive_key
from tapefs.media import drive_selection, tape_devices
from tapefs.media.tape_config import load_tape_config
from tapefs.tapeformat.block_device import DriveBlockDevice
from tapefs.tapeformat.labels import MediaLabel, MediaSetLabel, write_media_label, write_media_set_label
from tests.helpers.commands import command_path, isolated_env, tapefs

PASSWORD = b"tape key password"
FD = "{password-fd}"


class KeyCli:
    """Runs tapefs with INFO logging; passwords go through a pipe named by ``{password-fd}``."""

    def __init__(self, tmp_path):
        self.env = isolated_env(tmp_path, TAPEFS_LOG="info")  # debug adds the traceback of expected errors
        self.config_dir = tmp_path / "config"
        self.outputs: list[str] = []

    def run(self, *args, passwords=(), check=True) -> subprocess.CompletedProcess:
        read_end, write_end = os.pipe()
        os.write(write_end, b"".join(password + b"\n" for password in passwords))
        os.close(write_end)
        try:
            proc = tapefs(*(str(read_end) if arg == FD else arg for arg in args), env=self.env, check=check,
                          pass_fds=(read_end,))
        finally:
            os.close(read_end)
        self.outputs += [proc.stdout, proc.stderr]
        return proc

    def json(self, *args, passwords=()):
        return json.loads(self.run(*args, "--output-format", "json", passwords=passwords).stdout)

    def error(self, *args, passwords=()) -> str:
        proc = self.run(*args, passwords=passwords, check=False)
        assert proc.returncode != 0
        errors = [line for line in proc.stderr.splitlines() if not line.startswith(("DEBUG", "INFO"))]
        assert len(errors) == 1, proc.stderr
        return errors[0]

    def create(self, hint="in the safe") -> str:
        return self.json("key", "create", "--hint", hint, "--password-fd", FD, passwords=[PASSWORD])["fingerprint"]

    def raw_key(self, fingerprint) -> bytes:
        return TapeKeyStore(self.config_dir).raw_key(fingerprint)

    def store_files(self) -> dict[str, bytes]:
        return {name: (self.config_dir / name).read_bytes() for name in (RAW_KEYS_FILE, KEY_CONFIGS_FILE)
                if (self.config_dir / name).exists()}

    def assert_no_key_material(self, *keys: bytes) -> None:
        everything = "\n".join(self.outputs)
        for key in keys:
            for form in (key.hex(), key.hex().upper(), ":".join(f"{b:02x}" for b in key),
                         base64.b64encode(key).decode().rstrip("="), base64.urlsafe_b64encode(key).decode().rstrip("=")):
                assert form not in everything


@pytest.fixture
def cli(tmp_path):
    return KeyCli(tmp_path)


@pytest.mark.slow
def test_create_list_show_remove_without_showing_the_key(cli):
    fingerprint = cli.create()
    assert [(k["fingerprint"], k["hint"], k["kdf"]) for k in cli.json("key", "list")] == [(fingerprint, "in the safe", "Scrypt")]
    shown = cli.json("key", "show", fingerprint.replace(":", "").upper())
    assert shown["fingerprint"] == fingerprint and set(shown) == {"fingerprint", "hint", "kdf", "created", "modified"}
    assert fingerprint in cli.run("key", "list").stdout and "in the safe" in cli.run("key", "show", fingerprint).stdout
    for name in (RAW_KEYS_FILE, KEY_CONFIGS_FILE):
        assert stat.S_IMODE((cli.config_dir / name).stat().st_mode) == 0o600
    key = cli.raw_key(fingerprint)
    cli.run("key", "paperkey", fingerprint, "--output-format", "text")
    cli.run("key", "paperkey", fingerprint)
    cli.run("pool", "create", "daily", "--encrypt", fingerprint)
    assert "used by media pool daily" in cli.error("key", "remove", fingerprint)
    assert len(cli.json("key", "list")) == 1
    cli.run("key", "remove", fingerprint, "--force")
    assert cli.json("key", "list") == [] and "no tape encryption keys" in cli.run("key", "list").stdout
    assert cli.error("key", "show", fingerprint) == f"tapefs: error: tape encryption key {fingerprint} not found"
    cli.assert_no_key_material(key, derive_drive_key(key, str(uuid.uuid4())))


def test_create_refuses_bad_input_and_stores_nothing(cli):
    assert "at least 5 bytes" in cli.error("key", "create", "--hint", "h", "--password-fd", FD, passwords=[b"1234"])
    assert "1 to 32" in cli.error("key", "create", "--hint", "x" * 33, "--password-fd", FD, passwords=[PASSWORD])
    assert "--password-fd" in cli.error("key", "create", "--hint", "h")  # no terminal to ask
    assert "'none' is not one of" in cli.run("key", "create", "--hint", "h", "--kdf", "none", check=False).stderr
    assert cli.store_files() == {}


@pytest.mark.slow
def test_change_passphrase_wrong_password_then_right_then_forced(cli):
    fingerprint = cli.create()
    key = cli.raw_key(fingerprint)
    before = cli.store_files()
    line = cli.error("key", "change-passphrase", fingerprint, "--password-fd", FD, "--new-password-fd", FD,
                     passwords=[b"not the password", b"new password"])
    assert line == "tapefs: error: unable to decrypt key (wrong passphrase?)"
    assert cli.store_files() == before
    cli.run("key", "change-passphrase", fingerprint, "--kdf", "pbkdf2", "--password-fd", FD, "--new-password-fd", FD,
            passwords=[PASSWORD, b"second password"])
    assert cli.json("key", "show", fingerprint)["kdf"] == "PBKDF2"
    # The password is lost: --force re-protects the root-only raw copy without asking for it.
    cli.run("key", "change-passphrase", fingerprint, "--force", "--hint", "new hint", "--new-password-fd", FD,
            passwords=[b"third password"])
    paper = cli.run("key", "paperkey", fingerprint, "--output-format", "text").stdout
    cli.run("key", "remove", fingerprint)
    assert cli.json("key", "restore", "--key", paper, "--password-fd", FD,
                    passwords=[b"third password"])["fingerprint"] == fingerprint
    assert cli.raw_key(fingerprint) == key and cli.json("key", "show", fingerprint)["hint"] == "new hint"
    cli.assert_no_key_material(key)


@pytest.mark.slow
def test_restore_from_paper_key_file_and_typos(cli, tmp_path):
    fingerprint = cli.create()
    key = cli.raw_key(fingerprint)
    paper = tmp_path / "paper.txt"
    paper.write_text(cli.run("key", "paperkey", fingerprint, "--subject", "pool daily", "--output-format", "text").stdout)
    assert "already exists" in cli.error("key", "restore", "--key-file", paper, "--password-fd", FD, passwords=[PASSWORD])
    cli.run("key", "remove", fingerprint)
    typo = tmp_path / "typo.txt"
    typo.write_text(paper.read_text().replace('"modified":', '"modified"', 1))
    assert "not valid JSON" in cli.error("key", "restore", "--key-file", typo, "--password-fd", FD, passwords=[PASSWORD])
    assert "wrong passphrase" in cli.error("key", "restore", "--key-file", paper, "--password-fd", FD, passwords=[b"guessed it"])
    assert cli.store_files() in ({}, {RAW_KEYS_FILE: b"[]\n", KEY_CONFIGS_FILE: b"[]\n"})
    assert cli.json("key", "restore", "--key-file", paper, "--password-fd", FD, passwords=[PASSWORD]) == {"fingerprint": fingerprint}
    assert cli.raw_key(fingerprint) == key
    cli.assert_no_key_material(key)


@pytest.mark.slow
@pytest.mark.vtape
def test_restore_from_the_media_set_label_of_a_tape(cli, make_vtape_library, monkeypatch):
    library = make_vtape_library(cartridges=2, capacity=16 * 1024**2)
    cli.run("changer", "create", "lib0", "--path", library.changer)
    cli.run("drive", "create", "drive0", "--path", library.drives[0], "--changer", "lib0", "--changer-drivenum", 0)
    cli.run("load-media-from-slot", 1, "--drive", "drive0")
    fingerprint = cli.create()
    key = cli.raw_key(fingerprint)
    set_uuid = uuid.uuid4()
    monkeypatch.setenv("TAPEFS_CONFIG_DIR", str(cli.config_dir))
    drive = drive_selection.choose_drive(load_tape_config(), "drive0")

    def label_tape(key_config):
        with tape_devices.open_drive(drive, need_medium=True) as opened:
            device = DriveBlockDevice(opened)
            write_media_label(device, MediaLabel(uuid.uuid4(), "VT0001L8", int(time.time()), "daily"))
            write_media_set_label(device, MediaSetLabel("daily", set_uuid, 0, int(time.time()), fingerprint, key_config))

    label_tape(TapeKeyStore(cli.config_dir).key_config(fingerprint).to_json())
    cli.run("key", "remove", fingerprint)
    line = cli.error("key", "restore", "--drive", "drive0", "--password-fd", FD, passwords=[b"wrong password"])
    assert line == "tapefs: error: unable to decrypt key (wrong passphrase?)"
    assert cli.json("key", "list") == []
    restored = cli.json("key", "restore", "--drive", "drive0", "--password-fd", FD, passwords=[PASSWORD])
    assert restored == {"fingerprint": fingerprint} and cli.raw_key(fingerprint) == key

    label_tape(None)
    assert cli.error("key", "restore", "--drive", "drive0", "--password-fd", FD, passwords=[PASSWORD]) == \
        "tapefs: error: media does not contain any encryption key configuration"
    cli.assert_no_key_material(key, derive_drive_key(key, str(set_uuid)))


@pytest.mark.slow
def test_create_asks_for_the_password_twice_on_a_terminal(cli):
    pid, terminal = pty.fork()
    if pid == 0:  # the child: tapefs on the pty as its controlling terminal
        os.execve(command_path("tapefs"), [command_path("tapefs"), "key", "create", "--hint", "typed in"], cli.env)
    transcript = b""
    for answer in (PASSWORD, PASSWORD):
        while b":" not in transcript.rsplit(b"\n", 1)[-1]:
            transcript += os.read(terminal, 1024)
        os.write(terminal, answer + b"\n")
        transcript += b"\n"
    _, status = os.waitpid(pid, 0)
    while True:
        try:
            chunk = os.read(terminal, 1024)
        except OSError:  # EIO: the child is gone and the pty drained
            break
        if not chunk:
            break
        transcript += chunk
    os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == 0, transcript
    assert b"Tape key password" in transcript and b"Repeat for confirmation" in transcript
    assert PASSWORD not in transcript  # not echoed
    (created,) = TapeKeyStore(cli.config_dir).key_configs()
    assert created.hint == "typed in"
    assert created.fingerprint.hex(":") in transcript.decode()


def test_text_output_prints_fingerprints_verbatim_even_where_they_look_like_emoji_codes(cli):
    # rich turns ":ab:" into an emoji unless told not to; 1 in ~8 fingerprints contains it.
    store = TapeKeyStore(cli.config_dir)
    key = next(key for key in (os.urandom(32) for _ in range(1000))
               if ":ab:" in CryptConfig(key).fingerprint_text())
    fingerprint = store.insert(key, protect_key(key, PASSWORD, kdf="pbkdf2", hint="[not markup]"))
    assert fingerprint in cli.run("key", "list").stdout
    shown = cli.run("key", "show", fingerprint).stdout
    assert fingerprint in shown and "[not markup]" in shown
