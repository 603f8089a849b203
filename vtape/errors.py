"""The root of every vtape exception, with the exit status the ``vtape`` command gives for it.

vtape never imports tapefs, so it keeps its own root; the numbers are tapefs's (docs/cli.md),
and a test keeps the two tables equal.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    BUSY = 4
    DEVICE = 5
    DATA = 6
    INTERNAL = 70
    INTERRUPTED = 130


class VtapeError(Exception):
    exit_code: int = ExitCode.FAILED
