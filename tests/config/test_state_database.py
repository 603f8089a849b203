"""StateDatabase: the SQLite files of the tape state directory."""
from __future__ import annotations

import subprocess
import sys

from tapefs.config.state_database import StateDatabase


class Numbers(StateDatabase):
    schema = "CREATE TABLE number (value INTEGER);"
    schema_version = 1
    kind = "test"

    def values(self) -> list[int]:
        return [row[0] for row in self._query("SELECT value FROM number ORDER BY value")]


def commit_elsewhere(path, value: int) -> None:
    """Another process adds a row and closes its connection, as a tapefs command does."""
    subprocess.run([sys.executable, "-c", "import sqlite3, sys\n"
                    "db = sqlite3.connect(sys.argv[1])\n"
                    "with db:\n    db.execute('INSERT INTO number VALUES (?)', (int(sys.argv[2]),))\n"
                    "db.close()\n", str(path), str(value)], check=True)


def test_a_second_connection_in_the_process_leaves_the_first_one_seeing_other_processes_commits(tmp_path):
    # The mount holds connections to one file from the tree and from the read planner. Opening
    # the second must not drop the first one's locks: another process would then delete the
    # write-ahead log as its last user, and the first connection would see no commit after.
    path = tmp_path / "numbers.db"
    first = Numbers(path)
    try:
        version = first.data_version()
        second = Numbers(path)
        second.close()
        for value in (1, 2, 3):
            commit_elsewhere(path, value)
            assert first.data_version() != version, f"commit {value} unseen"
            version = first.data_version()
            assert first.values() == list(range(1, value + 1))
    finally:
        first.close()


def test_a_new_database_file_is_private(tmp_path):
    path = tmp_path / "state" / "numbers.db"
    Numbers(path).close()
    assert path.stat().st_mode & 0o007 == 0
