"""Errors a job reports to its caller: one line that names the tape, file and offset involved."""


class JobError(Exception):
    """An expected failure: bad input, wrong tape, no writable media, damaged data."""

    exit_code = 1
