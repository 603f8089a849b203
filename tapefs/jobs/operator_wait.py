"""Waiting for the operator to bring a tape into the library (PBS fix #4719: a job that needs a
tape that is not in the library should ask for it and wait, not fail at once).

The request names the tape, where the inventory last saw it (a vault, or offline) and the
changer to put it into; it is logged and sent as a ``tape-load`` notification. The changer is then polled, opened afresh each time so that other
programs can use it meanwhile. A tape that shows up in an import/export slot (mail slot) is
moved into a free storage slot; the wait ends when the tape is in a storage slot or a drive.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from tapefs.device.changer import Changer
from tapefs.jobs.errors import JobError, MediaOffline
from tapefs.media.inventory import Inventory
from tapefs.media.media_admin import free_storage_slot, is_mail_slot
from tapefs.media.media_id import LocationKind, MediaLocation
from tapefs.media.tape_config import ChangerConfig
from tapefs.notify import events
from tapefs.notify.dispatch import send

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 2.0


def _log_request(message: str) -> None:
    log.warning("%s", message)


@dataclass
class OperatorWait:
    """How long a job waits for a missing tape, and whom it tells.

    ``timeout`` 0 means not at all: the job fails with MediaOffline at once. ``inventory``, when
    given, supplies the tape's last known location for the request and records it as online
    once it is back. ``notify`` receives the request (by default it is logged as a warning).
    """

    timeout: float
    inventory: Inventory | None = None
    poll_interval: float = DEFAULT_POLL_INTERVAL
    notify: Callable[[str], None] = _log_request

    def __post_init__(self) -> None:
        if self.timeout < 0:
            raise ValueError(f"wait timeout {self.timeout} is negative")
        if self.poll_interval <= 0:
            raise ValueError(f"poll interval {self.poll_interval} must be positive")

    def request(self, label_text: str, changer_name: str) -> str:
        """What the operator is asked to do."""
        where = self._known_location(label_text)
        whence = f" (vault {where.name})" if where is not None and where.kind is LocationKind.VAULT else ""
        return f"insert tape {label_text}{whence} into changer {changer_name}"

    def _known_location(self, label_text: str) -> MediaLocation | None:
        if self.inventory is None:
            return None
        entries = self.inventory.find_all_media_by_label_text(label_text)
        return entries[0].effective_location if len(entries) == 1 else None

    def wait_for_tape(
        self, changer_config: ChangerConfig, label_text: str, open_changer: Callable[[str], Changer] = Changer.open
    ) -> None:
        """Return once ``label_text`` is in a storage slot or a drive of the changer, taking it
        in from an import/export slot; MediaOffline after the timeout."""
        request = self.request(label_text, changer_config.name)
        deadline = time.monotonic() + self.timeout
        asked = False
        while True:
            with open_changer(changer_config.path) as changer:
                if _take_in(changer, changer_config, label_text):
                    break
            if time.monotonic() >= deadline:
                raise MediaOffline(label_text, f"{request}: not there after waiting {self.timeout:g} s")
            if not asked:
                self.notify(f"{request} (waiting up to {self.timeout:g} s)")
                send(events.tape_load(label_text, changer_config.name, f"A job is waiting for it: {request}."))
                asked = True
            time.sleep(min(self.poll_interval, max(deadline - time.monotonic(), 0.0)))
        self._record_online(label_text, changer_config.name)

    def _record_online(self, label_text: str, changer_name: str) -> None:
        if self.inventory is None:
            return
        entries = self.inventory.find_all_media_by_label_text(label_text)
        if len(entries) == 1:
            self.inventory.set_location(entries[0].uuid, MediaLocation.online(changer_name))


def _take_in(changer: Changer, changer_config: ChangerConfig, label_text: str) -> bool:
    """Whether the tape is in the library now; one in a mail slot is moved to a storage slot."""
    status = changer.status()
    if any(drive.full and drive.barcode == label_text for drive in status.drives):
        return True
    slot = next((s for s in status.slots if s.full and s.barcode == label_text), None)
    if slot is None:
        return False
    if not is_mail_slot(slot, changer_config):
        return True
    target = free_storage_slot(status, changer_config)
    if target is None:
        raise JobError(
            f"tape {label_text} is in import/export slot {slot.number} of changer "
            f"{changer_config.name}, but no storage slot is free to take it in"
        )
    log.info("taking tape %s from import/export slot %d into slot %d", label_text, slot.number, target)
    changer.transfer(slot.number, target)
    return True
