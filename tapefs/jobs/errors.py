"""Errors a job reports to its caller: one line that names the tape, file and offset involved."""

from tapefs.errors import DataDamaged, DeviceFailure, TapefsError


class JobError(TapefsError):
    """An expected failure: bad input, wrong tape, no writable media, damaged data."""


class ArchiveDamaged(DataDamaged, JobError):
    """An archive read from tape holds what the format does not allow: a damaged or hostile
    header, or a snapshot archive with other entries than the snapshot's files. The message
    names the tape and the file."""


class MediaOffline(DeviceFailure, JobError):
    """The tape a job needs is not in the library (offline, vaulted, or in an import/export slot
    nobody moved it from)."""

    def __init__(self, label_text: str, message: str):
        super().__init__(message)
        self.label_text = label_text


class DeviceConnectionLost(DeviceFailure, JobError):
    """A drive or changer stopped answering mid-job: its vtape daemon died or its link dropped.
    The message names the device by its tape.cfg name and says where the job left its tapes."""


class TapeReadFailed(DeviceFailure, JobError):
    """The drive could not read part of a tape (a medium or hardware error): the message names
    the tape and the file, so the user knows what of the set could not be restored."""


class TapeWriteFailed(DeviceFailure, JobError):
    """The drive could not write the tape (a medium error): the tape is marked damaged and the
    message says what of the job is safely on tape."""
