"""File catalog tests: a datastore and an open file catalog per test (their helpers are in
tests/helpers/catalog_snapshots.py)."""
from __future__ import annotations

import pytest

from tapefs.catalog.file_catalog import FileCatalog
from tapefs.datastore.datastore import Datastore


@pytest.fixture
def datastore(tmp_path) -> Datastore:
    return Datastore.create(tmp_path / "store", "store", prefix_dirs=False)


@pytest.fixture
def catalog(tmp_path):
    with FileCatalog.open(tmp_path / "status") as opened:
        yield opened
