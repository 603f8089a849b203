"""Fixtures for datastore commands run as subprocesses, for every test directory (tests/conftest.py
loads this plugin): a private environment, a registered datastore `main` and a small tree to
back up."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tapefs.datastore.datastore import Datastore
from tests.helpers.commands import isolated_env, tapefs


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The commands' environment: configuration and state under tmp_path, no device variables."""
    return isolated_env(tmp_path)


@pytest.fixture
def store(tmp_path, env) -> Path:
    """Datastore `main` at tmp_path/store: made by the library without the 65536 prefix
    directories (seconds saved), then registered through the CLI like an existing PBS datastore."""
    Datastore.create(tmp_path / "store", prefix_dirs=False)
    tapefs("datastore", "add", "main", tmp_path / "store", env=env)
    return tmp_path / "store"


@pytest.fixture
def tree(tmp_path) -> Path:
    """A directory, a 300 kB random file, a text file and a symlink."""
    root = tmp_path / "tree"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "data.bin").write_bytes(random.Random(1).randbytes(300000))
    (root / "notes.txt").write_text("tapefs\n")
    os.symlink("notes.txt", root / "link")
    return root
