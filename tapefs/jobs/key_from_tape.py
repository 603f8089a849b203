"""Restoring a tape key from the tape itself: the media-set label of the tape in a drive carries
the key config the set was written with (password-protected)."""

from __future__ import annotations

from tapefs.keys.errors import TapeKeyError
from tapefs.keys.key_restore import restore_from_media_set_label
from tapefs.keys.key_store import TapeKeyStore
from tapefs.media.tape_config import DriveConfig
from tapefs.media.tape_devices import open_drive
from tapefs.tapeformat.block_device import DriveBlockDevice
from tapefs.tapeformat.labels import read_labels


def restore_from_drive(store: TapeKeyStore, drive: DriveConfig, password: bytes) -> str:
    """Read the labels of the tape in ``drive`` (no key loaded: labels are never encrypted) and
    restore the key its media-set label carries. Returns the fingerprint."""
    with open_drive(drive, need_medium=True) as opened:
        labels = read_labels(DriveBlockDevice(opened))
    if labels.media is None:
        raise TapeKeyError(f"the tape in drive {drive.name!r} is not labelled")
    if labels.media_set is None:
        raise TapeKeyError(f"tape {labels.media.label_text} has no media-set label")
    return restore_from_media_set_label(store, labels.media_set, password)
