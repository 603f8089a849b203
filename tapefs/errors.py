"""The root of every tapefs exception, and the exit status each kind of failure gives.

Each package keeps its own error class (``DatastoreError``, ``ScsiError``, ...) for callers that
handle one area's failures; all of them derive from :class:`TapefsError`, and the classes below
say which kind of failure an error is. The command lines turn an error into one line on stderr
and exit with its ``exit_code`` (docs/cli.md has the table).
"""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    #: the operation failed, or a check (verify) found damage
    FAILED = 1
    #: a bad option, argument, name or configuration value
    USAGE = 2
    #: an unknown datastore, snapshot, archive, drive, pool, tape, key or directory
    NOT_FOUND = 3
    #: a lock another process holds: a drive, a datastore, a running daemon
    BUSY = 4
    #: the device or medium failed: SCSI errors, lost connections, a tape that is not there
    DEVICE = 5
    #: stored data is damaged or cannot be decoded: bad magic, checksums, a wrong key
    DATA = 6
    #: a bug in tapefs; ``--debug`` shows the traceback
    INTERNAL = 70
    #: interrupted by the user (SIGINT)
    INTERRUPTED = 130


class TapefsError(Exception):
    exit_code: int = ExitCode.FAILED


class InvalidInput(TapefsError):
    exit_code = ExitCode.USAGE


class NotFound(TapefsError):
    exit_code = ExitCode.NOT_FOUND


class Busy(TapefsError):
    exit_code = ExitCode.BUSY


class DeviceFailure(TapefsError):
    exit_code = ExitCode.DEVICE


class DataDamaged(TapefsError):
    exit_code = ExitCode.DATA
