"""Per-command timeouts, generous enough for real drives.

PBS once used 2 minutes and had to raise it to 10 (commit 4bb38763); LTFS logs show drives that
report 2940 s for LOCATE and 7920 s for LOAD. A timeout only bounds a hang; a command that is
merely slow must never hit it.
"""

from __future__ import annotations

from tapefs.scsi import cdb as cdbs

MINUTE = 60.0
HOUR = 3600.0

DEFAULT_TIMEOUT = 10 * MINUTE

_BY_OPCODE = {
    cdbs.TEST_UNIT_READY: 1 * MINUTE,
    cdbs.INQUIRY: 1 * MINUTE,
    cdbs.REQUEST_SENSE: 1 * MINUTE,
    cdbs.LOG_SENSE: 2 * MINUTE,
    cdbs.READ_POSITION: 2 * MINUTE,
    cdbs.REWIND: 1 * HOUR,
    cdbs.SPACE_6: 3 * HOUR,
    cdbs.SPACE_16: 3 * HOUR,
    cdbs.LOCATE_16: 3 * HOUR,
    0x2B: 3 * HOUR,  # LOCATE(10)
    cdbs.LOAD_UNLOAD: 3 * HOUR,  # LTO-9 first load optimizes the medium (up to 2 h)
    cdbs.MOVE_MEDIUM: 1 * HOUR,
    cdbs.INITIALIZE_ELEMENT_STATUS: 1 * HOUR,
    cdbs.READ_ELEMENT_STATUS: 10 * MINUTE,
    cdbs.FORMAT_MEDIUM: 4 * HOUR,
    cdbs.WRITE_FILEMARKS_6: 30 * MINUTE,  # count 0 flushes the drive buffer
}

#: A long ERASE writes the erase pattern to the end of the tape: 12 TB at LTO-8 speed is ~9 h.
LONG_ERASE_TIMEOUT = 16 * HOUR
SHORT_ERASE_TIMEOUT = 1 * HOUR


def timeout_for(cdb: bytes) -> float:
    """Seconds to allow this CDB."""
    if cdb[0] == cdbs.ERASE:
        return LONG_ERASE_TIMEOUT if cdb[1] & 0x01 else SHORT_ERASE_TIMEOUT
    return _BY_OPCODE.get(cdb[0], DEFAULT_TIMEOUT)
