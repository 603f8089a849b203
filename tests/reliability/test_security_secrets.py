"""R6: no key, passphrase or derived drive key in anything a run writes: the commands' output (-v,
TAPEFS_LOG=debug), the `show`/`list` commands, and every file of the configuration, the state, the
datastores and the vtape library (its daemon log, command events and cartridges). Only the raw key
file itself holds the key, and it is private (0600)."""
from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from tapefs.datastore.key_config import KeyConfig
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.keys.key_store import TapeKeyStore
from tapefs.keys.media_set_key import derive_drive_key
from tests.helpers.commands import tapefs
from tests.helpers.tape_setup import KEY_PASSWORD, add_cartridges, create_key

pytestmark = pytest.mark.vtape

DATASTORE_PASSPHRASE = b"datastore passphrase 7d1e"


def forms(secret: bytes) -> list[bytes]:
    """The ways a program could print a secret."""
    found = [secret, secret.hex().encode(), secret.hex().upper().encode(), base64.b64encode(secret).rstrip(b"="),
             base64.urlsafe_b64encode(secret).rstrip(b"="), repr(secret).encode()]
    if len(secret) == 32:
        found.append(b":".join(f"{byte:02x}".encode() for byte in secret))
    return found


def files_below(*roots):
    for root in roots:
        for directory, _, names in os.walk(root):
            for name in names:
                path = os.path.join(directory, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    yield path


@pytest.mark.slow
def test_no_secret_in_any_output_log_trace_or_file(tape_setup, tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEFS_LOG", "debug")
    monkeypatch.setenv("TAPEFS_KEY_PASSPHRASE", DATASTORE_PASSPHRASE.decode())
    fingerprint = create_key(["daily"])
    datastore_key = os.urandom(32)
    keyfile = tmp_path / "datastore-key.json"
    KeyConfig.create(datastore_key, DATASTORE_PASSPHRASE, "PBKDF2").save(keyfile)
    source = tmp_path / "source"
    source.mkdir()
    (source / "file.txt").write_text("secret data\n")
    add_cartridges(tape_setup.library, 1, "32MiB", "4MiB")
    tape_setup.label("SM0001L8")

    outputs = [
        tapefs("-v", "datastore", "backup", "store", "--keyfile", keyfile, "host/secret", source),
        tapefs("-v", "datastore", "backup", "store", "host/plain", source),
    ]
    backup = tapefs("-v", "backup", "store", "daily", "--drive", "drive0", "--eject-media", "--output-format", "json")
    media_set = json.loads(backup.stdout)["media-set"]
    DatastoreRegistry().create("restored", tmp_path / "restored")
    outputs += [
        backup,
        tapefs("-v", "restore", media_set, "store=restored", "--drive", "drive1"),
        tapefs("key", "list"), tapefs("key", "show", fingerprint), tapefs("pool", "config", "daily"),
        tapefs("media", "list"), tapefs("datastore", "snapshots", "store"),
    ]

    tape_key = TapeKeyStore().raw_key(fingerprint)
    secrets = {"tape key password": [KEY_PASSWORD], "datastore passphrase": [DATASTORE_PASSPHRASE],
               "tape key": forms(tape_key), "drive key": forms(derive_drive_key(tape_key, media_set)),
               "datastore key": forms(datastore_key)}
    raw_keys = TapeKeyStore().raw_keys_path
    assert stat.S_IMODE(raw_keys.stat().st_mode) == 0o600
    # The one place a key belongs: proof that the scan below recognises one where it is.
    assert any(form in raw_keys.read_bytes() for form in secrets["tape key"])
    assert stat.S_IMODE(TapeKeyStore().key_configs_path.stat().st_mode) == 0o600
    places = {f"output of tapefs {' '.join(map(str, output.args[1:4]))}": (output.stdout + output.stderr).encode()
              for output in outputs}
    written = list(files_below(tmp_path, tape_setup.library.root))
    assert any(path.endswith("daemon.log") for path in written) and len(written) > 20
    for path in written:
        if path != str(raw_keys):
            with open(path, "rb") as file:
                places[path] = file.read()
    leaks = [f"{what} in {place}" for place, data in places.items()
             for what, secret_forms in secrets.items() if any(form in data for form in secret_forms)]
    assert leaks == []
