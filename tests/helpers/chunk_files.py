"""The chunk files of a datastore as garbage collection sees them: names and access times."""

from __future__ import annotations

import os
import time

from tapefs.datastore.datastore import Datastore


def age_all_chunks(store: Datastore, seconds: int) -> None:
    """Set every chunk's access and modification time `seconds` into the past."""
    when = time.time() - seconds
    for path in store.chunk_store.chunk_dir.rglob("*"):
        if path.is_file():
            os.utime(path, (when, when))


def chunk_names(store: Datastore) -> set[str]:
    return {p.name for p in store.chunk_store.chunk_dir.rglob("*") if p.is_file()}
