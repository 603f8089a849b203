"""What a drive and a changer have in common: an open channel to a device of the right type."""

from __future__ import annotations

from typing import TypeVar

from tapefs.scsi.channel import Channel
from tapefs.scsi.errors import WrongDeviceType
from tapefs.scsi.inquiry import InquiryData, inquiry
from tapefs.scsi.trace import Tracer

HandleT = TypeVar("HandleT", bound="DeviceHandle")


class DeviceHandle:
    """A device opened by path; subclasses name the peripheral type they accept."""

    peripheral_type: int
    kind: str  # "tape drive", "medium changer": for WrongDeviceType messages

    def __init__(self, channel: Channel):
        self.channel = channel
        self._inquiry: InquiryData | None = None

    @classmethod
    def open(cls: type[HandleT], path: str, tracer: Tracer | None = None) -> HandleT:
        """Open the device; WrongDeviceType if it is something else (a changer, a disk, ...)."""
        channel = Channel.open(path, tracer)
        handle = cls(channel)
        try:
            identity = handle.inquiry()
            if identity.device_type != cls.peripheral_type:
                raise WrongDeviceType(path, cls.kind, identity.device_type_name)
        except BaseException:
            channel.close()
            raise
        return handle

    @property
    def path(self) -> str:
        return self.channel.path

    def close(self) -> None:
        self.channel.close()

    def __enter__(self: HandleT) -> HandleT:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def inquiry(self) -> InquiryData:
        if self._inquiry is None:
            self._inquiry = inquiry(self.channel)
        return self._inquiry
