"""Encrypted media pools (docs/keys.md) on a real vtape library: the drive encrypts what the backup
writes with the set's derived key, the set label carries the fingerprint and the password-protected
key, restore needs the key and names it when it is missing, and no key material leaks."""
import base64
import dataclasses
import logging
import os
from pathlib import Path

import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.device.drive import Drive
from tapefs.jobs.tape_encryption import TapeKeyMissing, clear_drive_key, set_drive_key_for_set
from tapefs.keys.errors import KeyNotFound
from tapefs.keys.key_store import TapeKeyStore
from tapefs.keys.media_set_key import derive_drive_key
from tests.helpers.commands import tapefs
from tests.helpers.tape_jobs import run_backup, run_restore, snapshot_tree
from tests.helpers.tape_setup import KEY_PASSWORD, add_cartridges, create_key

pytestmark = pytest.mark.vtape


def marker() -> bytes:
    """Plain text a cartridge may hold only if the data was written unencrypted."""
    return b"tapefs plaintext marker " + os.urandom(8).hex().encode()


def cartridge_bytes(setup, barcode: str) -> bytes:
    directory = Path(setup.library.path) / "cartridges" / barcode
    return b"".join(path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file())


def set_label_on_tape(setup, label_text: str):
    with setup.session("drive1") as session:
        _, labels = session.read_labels(label_text)
        session.eject()
    return labels.media_set


def drive_mode(path: str) -> str:
    with Drive.open(path) as drive:
        return drive.encryption_status().mode


def key_forms(key: bytes) -> list[str]:
    return [key.hex(), key.hex().upper(), ":".join(f"{b:02x}" for b in key), base64.b64encode(key).decode().rstrip("=")]


def test_encrypted_backup_restores_and_its_cartridge_holds_no_plaintext(tape_setup, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    fingerprint = create_key(["daily"])
    add_cartridges(tape_setup.library, 2, "32MiB", "4MiB")
    tape_setup.label("SM0001L8")
    tape_setup.label("SM0002L8", pool="other")
    secret, plain = marker(), marker()
    tape_setup.add_snapshot("vm/100", 1, data=secret)
    encrypted = run_backup(tape_setup)
    assert encrypted.tapes == ["SM0001L8"]
    assert drive_mode(tape_setup.library.drives[0]) == "off"  # the key left the drive with the job

    other = Datastore.create(tmp_path / "plainsource", "plainsource", prefix_dirs=False)
    plain_setup = dataclasses.replace(tape_setup, datastore=other)
    plain_setup.add_snapshot("vm/200", 1, data=plain)
    plain_result = run_backup(plain_setup, pool="other")
    assert plain_result.tapes == ["SM0002L8"]
    assert plain in cartridge_bytes(tape_setup, "SM0002L8")
    assert secret not in cartridge_bytes(tape_setup, "SM0001L8")

    label = set_label_on_tape(tape_setup, "SM0001L8")
    assert label.encryption_key_fingerprint == fingerprint
    assert label.key_config["fingerprint"] == fingerprint and label.key_config["kdf"] is not None
    assert set_label_on_tape(tape_setup, "SM0002L8").key_config is None

    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    restored = run_restore(tape_setup, encrypted.media_set, {"store": target})
    assert len(restored.snapshots_restored) == 1
    assert snapshot_tree(target) == snapshot_tree(tape_setup.datastore)
    assert drive_mode(tape_setup.library.drives[1]) == "off"  # the restore took the key out again

    key = TapeKeyStore().raw_key(fingerprint)
    for form in key_forms(key) + key_forms(derive_drive_key(key, encrypted.media_set)):
        assert form not in caplog.text


@pytest.mark.slow
def test_restore_without_the_key_names_it_and_key_restore_from_the_tape_fixes_it(tape_setup, tmp_path):
    fingerprint = create_key(["daily"])
    add_cartridges(tape_setup.library, 1, "32MiB", "4MiB")
    tape_setup.label("SM0001L8")
    tape_setup.add_snapshot("vm/100", 1, data=marker())
    result = run_backup(tape_setup)
    key = TapeKeyStore().raw_key(fingerprint)
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    DatastoreRegistry().add("restored", target.root)
    empty = snapshot_tree(target)

    assert tapefs("key", "remove", fingerprint, "--force", check=False, text=False).returncode == 0
    failed = tapefs("restore", result.media_set, "restored", "--drive", "drive1", check=False, text=False)
    assert failed.returncode == 3  # the key is not found
    message = failed.stderr.decode().strip()
    assert message.startswith(f"tapefs: error: tape encryption key {fingerprint} not found: tape SM0001L8 ")
    assert "tapefs key restore" in message and "\n" not in message
    assert snapshot_tree(target) == empty
    with pytest.raises(TapeKeyMissing, match=fingerprint):
        run_restore(tape_setup, result.media_set, {"store": target})

    # The tape is still in drive1: its set label gives the key back to whoever knows the password.
    restored_key = tapefs("key", "restore", "--drive", "drive1", "--password-fd", "0", check=False, text=False,
                         input=KEY_PASSWORD + b"\n")
    assert restored_key.returncode == 0, restored_key.stderr
    assert TapeKeyStore().raw_key(fingerprint) == key
    done = tapefs("restore", result.media_set, "restored", "--drive", "drive1", check=False, text=False)
    assert done.returncode == 0, done.stderr
    assert snapshot_tree(target) == snapshot_tree(tape_setup.datastore)
    for output in (failed, restored_key, done):
        for form in key_forms(key) + key_forms(derive_drive_key(key, result.media_set)):
            assert form.encode() not in output.stdout + output.stderr


def test_set_continued_on_a_second_tape_and_appended_to_is_encrypted_throughout(tape_setup, tmp_path):
    fingerprint = create_key(["daily"])
    add_cartridges(tape_setup.library, 3, "16MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8", "SM0003L8")
    secrets = [marker() for _ in range(4)]
    # Enough data to meet early warning on the first tape (the catalog archive alone would go
    # into its early-warning zone).
    for number, secret in enumerate(secrets[:3]):
        tape_setup.add_snapshot(f"vm/{100 + number}", 2 if number == 2 else 1, data=secret)
    first = run_backup(tape_setup)
    assert first.tapes == ["SM0001L8", "SM0002L8"]
    # A second job appends to the set's last tape: the drive gets the key again before it writes.
    tape_setup.add_snapshot("vm/200", 0, data=secrets[3] + os.urandom(100_000))
    second = run_backup(tape_setup)
    assert second.media_set == first.media_set and second.tapes == ["SM0002L8"]

    for barcode in first.tapes:
        label = set_label_on_tape(tape_setup, barcode)
        assert label.encryption_key_fingerprint == fingerprint and label.key_config["fingerprint"] == fingerprint
        contents = cartridge_bytes(tape_setup, barcode)
        assert not [secret for secret in secrets if secret in contents]
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    restored = run_restore(tape_setup, first.media_set, {"store": target})
    assert len(restored.snapshots_restored) == 4
    assert snapshot_tree(target) == snapshot_tree(tape_setup.datastore)


def test_backup_to_a_pool_whose_key_is_missing_fails_before_touching_a_tape(tape_setup):
    fingerprint = create_key(["daily"])
    TapeKeyStore().remove(fingerprint)
    add_cartridges(tape_setup.library, 1, "16MiB", "4MiB")
    tape_setup.label("SM0001L8")
    tape_setup.add_snapshot("vm/100", 0, data=marker())
    with pytest.raises(KeyNotFound, match=f"key {fingerprint} not found: media pool daily encrypts with it"):
        run_backup(tape_setup)
    with tape_setup.inventory() as inventory:
        assert inventory.find_media_by_label_text("SM0001L8").id.media_set_label is None
    assert set_label_on_tape(tape_setup, "SM0001L8") is None


def test_plain_pool_writes_plain_even_if_the_drive_was_left_with_a_key(tape_setup):
    add_cartridges(tape_setup.library, 1, "16MiB", "4MiB")
    tape_setup.label("SM0001L8")
    plain = marker()
    tape_setup.add_snapshot("vm/100", 0, data=plain + os.urandom(100_000))
    with Drive.open(tape_setup.library.drives[0]) as drive:
        drive.set_encryption_key(os.urandom(32))  # as another program might have left it
    run_backup(tape_setup)
    assert plain in cartridge_bytes(tape_setup, "SM0001L8")


def test_set_drive_key_for_set_loads_the_sets_key_or_clears_it(tape_setup):
    fingerprint = create_key(["daily"])
    add_cartridges(tape_setup.library, 2, "16MiB", "4MiB")
    tape_setup.label("SM0001L8")
    tape_setup.label("SM0002L8", pool="other")
    tape_setup.add_snapshot("vm/100", 0, data=marker())
    run_backup(tape_setup)
    with tape_setup.session("drive1") as session:
        device, labels = session.read_labels("SM0001L8")
        assert set_drive_key_for_set(device.drive, labels) == fingerprint
        assert device.drive.encryption_status().mode == "mixed"
        _, plain_labels = session.read_labels("SM0002L8")
        assert set_drive_key_for_set(session.device.drive, plain_labels) is None
        assert session.device.drive.encryption_status().mode == "off"
        clear_drive_key(session.device.drive)  # clearing twice is fine
        TapeKeyStore().remove(fingerprint)
        with pytest.raises(KeyNotFound, match=f"key {fingerprint} not found: tape SM0001L8 .*tapefs key restore"):
            set_drive_key_for_set(session.device.drive, labels)
        session.eject()


def test_key_leaves_the_drive_when_the_backup_fails(tape_setup):
    create_key(["daily"])
    add_cartridges(tape_setup.library, 1, "16MiB", "4MiB")
    tape_setup.label("SM0001L8")
    tape_setup.add_snapshot("vm/100", 2)
    tape_setup.add_snapshot("vm/101", 2)
    with pytest.raises(Exception, match="no usable media found"):
        run_backup(tape_setup)
    assert drive_mode(tape_setup.library.drives[0]) == "off"
