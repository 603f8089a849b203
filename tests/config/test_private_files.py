"""Catalogs, state and configuration are never readable by other local users, whatever the umask."""

import hashlib
import os
import stat
import uuid
from pathlib import Path

import pytest

from tapefs.catalog.file_catalog import FileCatalog
from tapefs.catalog.media_catalog import MediaCatalog
from tapefs.config import section_config
from tapefs.config.private_files import make_private_dir, make_private_dirs
from tapefs.config.section_config import Section, SectionConfig
from tapefs.jobs.catalog_rebuild import ScanState
from tapefs.keys.key_store import TapeKeyStore
from tapefs.media.drive_lock import DriveLock
from tapefs.media.inventory import Inventory
from tapefs.media.locks import lock_pool
from tapefs.mount.chunk_cache import ChunkCache
from tapefs.tapeformat.media_catalog_log import MediaCatalogLog


@pytest.fixture
def umask():
    """Sets a umask for the test and puts the old one back."""
    old = os.umask(0)
    os.umask(old)
    yield os.umask
    os.umask(old)


def modes_below(root):
    """path -> permission bits (with setgid) of root and everything below it."""
    found = {root: stat.S_IMODE(os.lstat(root).st_mode)}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            found[path] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def test_state_and_configuration_are_private_with_umask_0(tmp_path, umask):
    umask(0)
    state, config = tmp_path / "state" / "tape", tmp_path / "config"
    media_uuid = uuid.uuid4()
    with Inventory.open(state), MediaCatalog.open(state) as catalog, FileCatalog.open(state):
        log = MediaCatalogLog.create(state, media_uuid)
        catalog.import_log(log.path.read_bytes())
        catalog.export_log(str(media_uuid), state)
    with DriveLock("drive0", state), lock_pool(state, "daily"):
        pass
    ScanState(state / "x.scan", "set", 2).save()
    cache = ChunkCache(state / "mount-cache", 1 << 20)
    data = b"chunk"
    cache.put(hashlib.sha256(data).digest(), data)
    section_config.save(config / "tape.cfg", SectionConfig([Section("drive", "d0", {"path": "/dev/x"})]))
    TapeKeyStore(config / "keys").create(b"long passphrase", "hint", kdf="pbkdf2")

    modes = {**modes_below(tmp_path / "state"), **modes_below(config)}
    assert len(modes) > 12
    open_to_others = {str(p): oct(m) for p, m in modes.items() if m & stat.S_IRWXO}
    assert open_to_others == {}
    group_writable = {str(p): oct(m) for p, m in modes.items() if m & stat.S_IWGRP}
    assert group_writable == {}
    key_files = [p for p in modes if p.parent == config / "keys" and p.name.endswith(".json")]
    assert key_files and all(modes[p] == 0o600 for p in key_files)


def test_private_dir_keeps_the_setgid_bit_it_inherits_under_a_strict_umask(tmp_path, umask):
    parent = tmp_path / "shared"
    parent.mkdir()
    os.chmod(parent, 0o2750)
    umask(0o077)
    make_private_dirs(parent / "a" / "b")
    assert stat.S_IMODE((parent / "a" / "b").stat().st_mode) == 0o2750
    assert make_private_dir(parent / "a", exist_ok=True) is False
    with pytest.raises(FileExistsError):
        make_private_dir(parent / "a")
    (parent / "file").touch()
    with pytest.raises(FileExistsError):
        make_private_dir(parent / "file", exist_ok=True)
