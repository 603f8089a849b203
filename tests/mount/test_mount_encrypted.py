"""An encrypted media set through the mount: it lists like any other; reads work with the key and
fail with EACCES naming the key fingerprint without it."""
import errno
import os

import pytest

from tapefs.keys.key_store import TapeKeyStore
from tests.helpers.fuse_mounts import mounts_of
from tests.helpers.tape_jobs import run_backup
from tests.helpers.tape_setup import add_cartridges, create_key

pytestmark = [pytest.mark.slow, pytest.mark.fuse, pytest.mark.vtape]


def test_encrypted_set_lists_and_reads_with_its_key_and_fails_with_eacces_without(tape_setup, tmp_path):
    fingerprint = create_key(["daily"])
    add_cartridges(tape_setup.library, 1, "64MiB", "4MiB")
    tape_setup.label("SM0001L8")
    data = os.urandom(1024 * 1024)
    snapshot = tape_setup.add_snapshot("vm/100", 1, data=data)
    run_backup(tape_setup, eject_media=True)
    env = dict(os.environ)
    with mounts_of(env, tmp_path) as mount:
        mounted = mount()
        copy = mounted.path / "snapshots" / "store" / snapshot
        assert os.getxattr(copy, "user.tapefs.key-fingerprint").decode() == fingerprint
        with open(copy / "disk.img", "rb") as file:
            assert file.read(len(data)) == data

    TapeKeyStore().remove(fingerprint)
    with mounts_of(env, tmp_path / "without-key") as mount:
        mounted = mount()
        image = mounted.path / "snapshots" / "store" / snapshot / "disk.img"
        assert image.stat().st_size == len(data) + 4 * 1024 * 1024
        with pytest.raises(OSError) as failure, open(image, "rb") as file:
            file.read(4096)
        assert failure.value.errno == errno.EACCES
        assert fingerprint in mounted.log()
