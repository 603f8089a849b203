"""Exceptions of the SCSI layer, one class per condition a caller reacts to.

Every error names the device and the command, so the one line a CLI prints is enough to act on:
``/dev/sg3: READ(6): end of data (sense 8/00/05 BLANK CHECK, end-of-data detected, ...)``.
"""

from __future__ import annotations

from tapefs.errors import DeviceFailure, InvalidInput, NotFound
from tapefs.scsi import sense as sense_codes
from tapefs.scsi.sense import Sense


class ScsiError(DeviceFailure):
    """Base of every error the SCSI layer raises."""


class TransportError(ScsiError):
    """The command did not reach the device, or its reply did not come back."""

    def __init__(self, device: str, command: str, reason: str):
        self.device, self.command, self.reason = device, command, reason
        where = f"{device}: {command}" if command else device
        super().__init__(f"{where}: {reason}")


class DeviceNotFound(NotFound, TransportError):
    """No file at the device path."""


class NotAScsiDevice(InvalidInput, TransportError):
    """The path exists but is neither a vtape device socket nor a SCSI generic node."""


class CommandTimeout(TransportError):
    """The device did not answer within the command's timeout."""


class ConnectionLost(TransportError):
    """The path to the device broke mid-job: the vtape daemon died or closed its socket, or a real
    drive went away (unplugged, link down). Nothing more reaches the device over this channel."""

    def __init__(self, device: str, command: str, cause: str):
        self.cause = cause
        super().__init__(device, command, f"connection lost ({cause})")


class WrongDeviceType(InvalidInput, ScsiError):
    """A device answered INQUIRY with a peripheral type other than the one asked for."""

    def __init__(self, device: str, expected: str, found: str):
        self.device = device
        super().__init__(f"{device}: not a {expected} (INQUIRY reports {found})")


class StatusError(ScsiError):
    """A status other than GOOD or CHECK CONDITION (BUSY, RESERVATION CONFLICT), or CHECK
    CONDITION without usable sense data."""

    def __init__(self, device: str, command: str, status: int, detail: str = ""):
        self.device, self.command, self.status = device, command, status
        name = STATUS_NAMES.get(status, f"status {status:#04x}")
        super().__init__(f"{device}: {command}: {name}{': ' + detail if detail else ''}")


STATUS_NAMES = {
    0x00: "GOOD",
    0x02: "CHECK CONDITION",
    0x04: "CONDITION MET",
    0x08: "BUSY",
    0x18: "RESERVATION CONFLICT",
    0x28: "TASK SET FULL",
    0x30: "ACA ACTIVE",
    0x40: "TASK ABORTED",
}


class CheckCondition(ScsiError):
    """CHECK CONDITION with decoded sense. ``result`` keeps data and residual: a READ that
    hits a filemark or a short block still moved data."""

    def __init__(self, device: str, command: str, sense: Sense, result=None):
        self.device, self.command, self.sense, self.result = device, command, sense, result
        super().__init__(f"{device}: {command}: {sense.describe()}")


class FilemarkDetected(CheckCondition):
    pass


class EndOfData(CheckCondition):
    pass


class BeginningOfMedium(CheckCondition):
    pass


class EarlyWarning(CheckCondition):
    """Writing reached the early-warning zone; the data was written."""


class VolumeOverflow(CheckCondition):
    """Physical end of medium: the data was not written."""


class IncorrectLength(CheckCondition):
    pass


class NotReady(CheckCondition):
    pass


class MediumNotPresent(NotReady):
    pass


class BecomingReady(NotReady):
    pass


class CleaningCartridgeInstalled(NotReady):
    pass


class MediumError(CheckCondition):
    pass


class HardwareError(CheckCondition):
    pass


class IllegalRequest(CheckCondition):
    pass


class InvalidOpcode(IllegalRequest):
    pass


class InvalidField(IllegalRequest):
    pass


class InvalidElementAddress(IllegalRequest):
    pass


class SourceElementEmpty(IllegalRequest):
    pass


class DestinationElementFull(IllegalRequest):
    pass


class MediumRemovalPrevented(IllegalRequest):
    pass


class UnitAttention(CheckCondition):
    pass


class DataProtect(CheckCondition):
    pass


class WriteProtected(DataProtect):
    pass


class WormOverwrite(DataProtect):
    pass


class EncryptionError(DataProtect):
    pass


class AbortedCommand(CheckCondition):
    pass


class DeferredError(CheckCondition):
    """Sense reported for an earlier command (typically a buffered write that failed)."""


_BY_CODE: dict[tuple[int | None, int, int | None], type[CheckCondition]] = {
    (None, 0x00, 0x01): FilemarkDetected,
    (None, 0x00, 0x02): EarlyWarning,
    (None, 0x00, 0x04): BeginningOfMedium,
    (None, 0x00, 0x05): EndOfData,
    (None, 0x00, 0x07): EarlyWarning,
    (sense_codes.VOLUME_OVERFLOW, 0x00, None): VolumeOverflow,
    (None, 0x3A, None): MediumNotPresent,
    (None, 0x04, 0x01): BecomingReady,
    (None, 0x30, 0x03): CleaningCartridgeInstalled,
    (None, 0x20, 0x00): InvalidOpcode,
    (None, 0x24, 0x00): InvalidField,
    (None, 0x26, None): InvalidField,
    (None, 0x21, 0x01): InvalidElementAddress,
    (None, 0x3B, 0x0E): SourceElementEmpty,
    (None, 0x3B, 0x0D): DestinationElementFull,
    (None, 0x53, 0x02): MediumRemovalPrevented,
    (None, 0x27, None): WriteProtected,
    (None, 0x30, 0x0C): WormOverwrite,
    (None, 0x74, None): EncryptionError,
}

_BY_KEY: dict[int, type[CheckCondition]] = {
    sense_codes.NOT_READY: NotReady,
    sense_codes.MEDIUM_ERROR: MediumError,
    sense_codes.HARDWARE_ERROR: HardwareError,
    sense_codes.ILLEGAL_REQUEST: IllegalRequest,
    sense_codes.UNIT_ATTENTION: UnitAttention,
    sense_codes.DATA_PROTECT: DataProtect,
    sense_codes.BLANK_CHECK: EndOfData,
    sense_codes.ABORTED_COMMAND: AbortedCommand,
    sense_codes.VOLUME_OVERFLOW: VolumeOverflow,
}


def error_class_for(sense: Sense) -> type[CheckCondition]:
    """The most specific exception class for this sense."""
    if sense.deferred:
        return DeferredError
    if sense.key != sense_codes.UNIT_ATTENTION:
        for key in (sense.key, None):
            for ascq in (sense.ascq, None):
                cls = _BY_CODE.get((key, sense.asc, ascq))
                if cls is not None:
                    return cls
    if sense.key == sense_codes.NO_SENSE:
        if sense.filemark:
            return FilemarkDetected
        if sense.ili:
            return IncorrectLength
        if sense.eom:
            return EarlyWarning
    return _BY_KEY.get(sense.key, CheckCondition)
