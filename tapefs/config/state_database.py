"""An SQLite file in the tape state directory: the inventory and the media catalog both use one.

One connection, handed between the job's threads and used one call at a time; WAL and
synchronous=FULL because what these databases say describes data on tape.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tapefs.config.private_files import make_private_dirs, open_private_file


class StateDatabase:
    """Opens (and creates or upgrades) the schema; subclasses add the queries."""

    schema: str
    schema_version: int
    kind: str  # "inventory", "catalog": for the version error

    def __init__(self, db_path: str | Path, timeout: float = 30.0):
        self.db_path = Path(db_path)
        # Catalogs and the inventory say what is on which tape: not for every local user. The
        # file is made before SQLite opens it, which then gives its journals the same mode. An
        # existing file is not opened here: closing a descriptor of it would drop every POSIX lock
        # this process holds on it, those of its other connections too (the mount has several),
        # and another process would then take a commit of its own for the last one and delete the
        # write-ahead log under them: they would never see a change again.
        make_private_dirs(self.db_path.parent)
        try:
            os.close(open_private_file(self.db_path, os.O_RDWR | os.O_EXCL))
        except FileExistsError:
            pass
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.db_path, isolation_level=None, timeout=timeout, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > self.schema_version:
            self._db.close()
            raise self.version_error(f"{self.db_path}: {self.kind} schema version {version} is newer than this tapefs")
        if version < self.schema_version:
            # executescript commits by itself, so it runs outside our explicit transactions.
            self._db.executescript(self.schema + f"PRAGMA user_version = {self.schema_version};")

    def version_error(self, message: str) -> Exception:
        return RuntimeError(message)

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def data_version(self) -> int:
        """Changes whenever another connection commits: readers use it to see that they are stale."""
        return self._query("PRAGMA data_version")[0][0]

    def _query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()
