"""The tape drive's LOG SENSE pages (SPC-4 and SSC-4, as LTO drives fill them).

``log_pages(drive)`` gives the page table the SPC framing in spc.py serves:
page code -> function returning the page's parameters. Every page answers
without a medium (the volume pages then say so with zeros or PageValid=0),
because tapeinfo, sg_logs and PBS read them from an empty drive too.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from construct import BitStruct, Flag, Int8ub, Padding, Struct

from .spc import LogParameter, ascii_field

if TYPE_CHECKING:
    from .drive import TapeDrive

MB = 1000 * 1000
#: Medium manufacturer in the volume statistics and the MAM.
MANUFACTURER = "VTAPE"

# Parameter control bytes (SPC format-and-linking): counters, ASCII lists, binary lists.
COUNTER = 0x00
ASCII_LIST = 0x01
BINARY_LIST = 0x03

TAPE_ALERT_FLAGS = 64
# TapeAlert flags raised by real conditions (SSC-4 annex).
ALERT_WRITE_PROTECT = 0x09
ALERT_MEDIA_LIFE = 0x07
ALERT_CLEAN_NOW = 0x14
ALERT_CLEAN_PERIODIC = 0x15
ALERT_EXPIRED_CLEANING_MEDIA = 0x16

#: Middle-of-tape passes after which a cartridge reports "media life" (LTO: 16000 end-to-end passes).
MEDIA_LIFE_PASSES = 16000

#: Device object buffer, MB (LTO-8 drives carry 1 GiB).
BUFFER_MB = 1024
#: The drive does not compress, so both ratios are 100 %.
COMPRESSION_RATIO_PERCENT = 100
TEMPERATURE_CELSIUS = 35
REFERENCE_TEMPERATURE_CELSIUS = 55

ACTIVITY_IDLE, ACTIVITY_CLEANING, ACTIVITY_LOADING = 0x00, 0x01, 0x02

# Very high frequency data of the DT device status page (PBS `device_activity` reads it).
VHF_DATA = Struct(
    "status"
    / BitStruct(
        "prevent_removal" / Flag,
        "host_initiated_unload" / Flag,
        "mam_accessible" / Flag,
        "compression" / Flag,
        "write_protect" / Flag,
        "cleaning_requested" / Flag,
        "cleaning_required" / Flag,
        "initialized" / Flag,
        "in_transition" / Flag,
        Padding(1),
        "robotic_access_allowed" / Flag,
        "medium_present" / Flag,
        Padding(1),
        "medium_seated" / Flag,
        "medium_threaded" / Flag,
        "mounted" / Flag,
    ),
    "activity" / Int8ub,
    "flags"
    / BitStruct(
        Padding(2),
        "diagnostic_data" / Flag,
        "encryption_parameters_present" / Flag,
        "encryption_service_request" / Flag,
        "recovery_requested" / Flag,
        "interface_changed" / Flag,
        "tape_alert_changed" / Flag,
    ),
).compile()


def _counter(code: int, value: int, size: int) -> LogParameter:
    """A counter, saturated at its field size as SPC prescribes for counters that overflow."""
    return LogParameter(code, min(value, (1 << (8 * size)) - 1).to_bytes(size, "big"), COUNTER)


def _flag(code: int, value: bool) -> LogParameter:
    return LogParameter(code, bytes([1 if value else 0]), BINARY_LIST)


def _medium(drive: TapeDrive):
    """The data cartridge in the drive, threaded or not; None when empty or a cleaning cartridge."""
    cart = drive.cartridge
    return None if cart is None or cart.meta["cleaning"] else cart


def active_tape_alerts(drive: TapeDrive) -> set[int]:
    """The flags raised by events (faults, an expired cleaning cartridge) plus those of lasting conditions.

    Condition flags stay set while their condition holds, so reading page 2Eh
    clears only the event flags; a condition flag goes when its cause does.
    """
    flags = set(drive.tape_alerts)
    cart = _medium(drive)
    if cart is not None:
        if max(cart.meta["bop_passes"], cart.meta["mot_passes"]) > MEDIA_LIFE_PASSES:
            flags.add(ALERT_MEDIA_LIFE)
    if drive.cleaning_required:
        flags.add(ALERT_CLEAN_NOW)
    return flags


def tape_alert_bitmap(drive: TapeDrive) -> bytes:
    """64 flags, MSB first: flag 01h is bit 7 of byte 0, flag 40h bit 0 of byte 7 (pages 12h, MAM 0002h)."""
    bits = 0
    for flag in active_tape_alerts(drive):
        bits |= 1 << (TAPE_ALERT_FLAGS - flag)
    return bits.to_bytes(8, "big")


def _lifetime(drive: TapeDrive, meta_key: str, counter: str, saved: str) -> int:
    """A cartridge's life counter including what this load has not yet saved to its metadata."""
    return drive.cartridge.meta[meta_key] + drive.load_counters[counter] - drive.load_counters.get(saved, 0)


def lifetime_bytes_written(drive: TapeDrive) -> int:
    return _lifetime(drive, "bytes_written", "bytes_from_host", "saved_written")


def lifetime_bytes_read(drive: TapeDrive) -> int:
    return _lifetime(drive, "bytes_read", "bytes_to_host", "saved_read")


# -- the pages --------------------------------------------------------------------


def _error_counters(drive: TapeDrive, bytes_processed: int) -> list[LogParameter]:
    """Write (02h) or read (03h) error counters: the emulated medium never errs."""
    return [_counter(code, 0, 4) for code in range(5)] + [_counter(0x0005, bytes_processed, 8), _counter(0x0006, 0, 4)]


def write_error_counters(drive: TapeDrive) -> list[LogParameter]:
    return _error_counters(drive, drive.load_counters["bytes_from_host"])


def read_error_counters(drive: TapeDrive) -> list[LogParameter]:
    return _error_counters(drive, drive.load_counters["bytes_to_host"])


def sequential_access(drive: TapeDrive) -> list[LogParameter]:
    """0Ch: byte counters of the current load and the native capacities in MB."""
    counters = drive.load_counters
    cart = _medium(drive)
    threaded = cart is not None and drive.threaded
    used = cart.data_end if threaded else 0
    to_early_warning = cart.early_warning_at if threaded else 0
    after_early_warning = cart.meta["early_warning"] if threaded else 0
    here = cart.data_offset(drive.position) if threaded else 0
    return [
        _counter(0x0000, counters["bytes_from_host"], 8),
        _counter(0x0001, counters["bytes_from_host"], 8),  # no compression: as many bytes reach the tape
        _counter(0x0002, counters["bytes_to_host"], 8),
        _counter(0x0003, counters["bytes_to_host"], 8),
        _counter(0x0004, used // MB, 4),
        _counter(0x0005, to_early_warning // MB, 4),
        _counter(0x0006, after_early_warning // MB, 4),
        _counter(0x0007, here // MB, 4),
        _counter(0x0008, BUFFER_MB, 4),
        _counter(0x0100, 1 if drive.cleaning_required else 0, 8),
    ]


def temperature(drive: TapeDrive) -> list[LogParameter]:
    """0Dh: a steady operating temperature and the limit it never reaches."""
    return [
        LogParameter(0x0000, bytes([0, TEMPERATURE_CELSIUS]), BINARY_LIST),
        LogParameter(0x0001, bytes([0, REFERENCE_TEMPERATURE_CELSIUS]), BINARY_LIST),
    ]


def _activity(drive: TapeDrive) -> int:
    """Commands run one at a time, so between them the drive is idle unless it cleans or loads."""
    if drive.cleaning:
        return ACTIVITY_CLEANING
    if drive.threaded and time.monotonic() < drive.ready_at:
        return ACTIVITY_LOADING
    return ACTIVITY_IDLE


def device_status(drive: TapeDrive) -> list[LogParameter]:
    """11h DT device status: one VHF data parameter of exactly 4 bytes, DINIT set (PBS checks both)."""
    cart = drive.cartridge
    present = cart is not None
    threaded = present and drive.threaded
    alerts = active_tape_alerts(drive)
    vhf = VHF_DATA.build(
        dict(
            status=dict(
                prevent_removal=drive.prevent,
                host_initiated_unload=False,
                mam_accessible=present,
                compression=drive.compression,
                write_protect=bool(present and cart.meta["write_protected"]),
                cleaning_requested=ALERT_CLEAN_PERIODIC in alerts,
                cleaning_required=drive.cleaning_required,
                initialized=True,
                in_transition=_activity(drive) == ACTIVITY_LOADING,
                robotic_access_allowed=not threaded,
                medium_present=present,
                medium_seated=present,
                medium_threaded=threaded,
                mounted=threaded and drive.not_ready_reason() is None,
            ),
            activity=_activity(drive),
            flags=dict(
                diagnostic_data=False,
                encryption_parameters_present=drive.cipher.has_key,
                encryption_service_request=False,
                recovery_requested=False,
                interface_changed=False,
                tape_alert_changed=bool(alerts),
            ),
        )
    )
    return [LogParameter(0x0000, vhf, BINARY_LIST)]


def tape_alert_response(drive: TapeDrive) -> list[LogParameter]:
    """12h: the 64 flags as one 8-byte bitmap; PBS checks page length 0Ch and parameter length 8.

    Reading it leaves the flags set.
    """
    return [LogParameter(0x0000, tape_alert_bitmap(drive), BINARY_LIST)]


def _ascii(code: int, text: str, size: int) -> LogParameter:
    return LogParameter(code, ascii_field(text, size), ASCII_LIST)


def volume_statistics(drive: TapeDrive) -> list[LogParameter]:
    """17h: the cartridge's life and this mount. PageValid=0 alone when no data cartridge is in the drive."""
    cart = _medium(drive)
    if cart is None:
        return [_counter(0x0000, 0, 1)]
    meta, counters = cart.meta, drive.load_counters
    mount_seconds = max(int(time.monotonic() - drive.ready_at), 0) if drive.threaded else 0
    return [
        _counter(0x0000, 1, 1),
        _counter(0x0001, meta["load_count"], 4),
        _counter(
            0x0002,
            meta["datasets_written"] + counters["datasets_written"] - counters.get("saved_datasets_written", 0),
            8,
        ),
        _counter(0x0003, 0, 4),
        _counter(0x0004, 0, 2),
        _counter(0x0005, 0, 2),
        _counter(0x0006, 0, 2),
        _counter(0x0007, meta["datasets_read"] + counters["datasets_read"] - counters.get("saved_datasets_read", 0), 8),
        _counter(0x0008, 0, 4),
        _counter(0x0009, 0, 2),
        _counter(0x000C, 0, 2),
        _counter(0x000D, 0, 2),
        _counter(0x000E, counters["bytes_from_host"] // MB, 4),
        _counter(0x000F, counters["bytes_to_host"] // MB, 4),
        _counter(0x0010, lifetime_bytes_written(drive) // MB, 8),
        _counter(0x0011, lifetime_bytes_read(drive) // MB, 8),
        _counter(0x0012, COMPRESSION_RATIO_PERCENT, 2),
        _counter(0x0013, COMPRESSION_RATIO_PERCENT, 2),
        _counter(0x0014, mount_seconds, 6),
        _counter(0x0015, mount_seconds, 6),
        _counter(0x0016, cart.capacity // MB, 4),
        _counter(0x0017, cart.data_end // MB, 4),
        _ascii(0x0040, meta["serial"], 32),
        _ascii(0x0041, meta["manufactured"], 8),  # lot: the production day
        _ascii(0x0042, cart.barcode, 32),
        _ascii(0x0043, MANUFACTURER, 8),
        _ascii(0x0044, "", 4),
        _ascii(0x0045, f"LTO-{meta['generation']}", 9),
        _flag(0x0080, meta["write_protected"]),
        _flag(0x0081, meta["worm"]),
        _flag(0x0082, False),
        _counter(0x0101, meta["bop_passes"], 4),
        _counter(0x0102, meta["mot_passes"], 4),
    ]


def tape_alert(drive: TapeDrive) -> list[LogParameter]:
    """2Eh: flags 01h..40h, one byte each (tapeinfo aborts on any other code).

    Reading the whole page clears the event flags, as SSC prescribes (TapeDrive.log_page_read:
    a truncated read such as sg_logs' 4-byte length probe leaves them set).
    """
    active = active_tape_alerts(drive)
    return [
        LogParameter(flag, bytes([1 if flag in active else 0]), BINARY_LIST) for flag in range(1, TAPE_ALERT_FLAGS + 1)
    ]


def tape_usage(drive: TapeDrive) -> list[LogParameter]:
    """30h (IBM tape usage): the cartridge's life counters; zeros without one."""
    cart = _medium(drive)
    meta = cart.meta if cart else None

    def life(key: str, counter: str, saved: str) -> int:
        return _lifetime(drive, key, counter, saved) if cart else 0

    return [
        _counter(0x0001, meta["load_count"] if meta else 0, 4),
        _counter(0x0002, life("datasets_written", "datasets_written", "saved_datasets_written"), 8),
        _counter(0x0003, 0, 4),
        _counter(0x0004, 0, 2),
        _counter(0x0005, 0, 2),
        _counter(0x0006, 0, 2),
        _counter(0x0007, life("datasets_read", "datasets_read", "saved_datasets_read"), 8),
        _counter(0x0008, 0, 4),
        _counter(0x0009, 0, 2),
        _counter(0x000A, 0, 2),
        _counter(0x000B, 0, 2),
    ]


def tape_capacity(drive: TapeDrive) -> list[LogParameter]:
    """31h: remaining and maximum capacity of partitions 0 and 1 in MB; page length 32 (tapeinfo checks)."""
    cart = _medium(drive)
    maximum = cart.capacity // MB if cart else 0
    remaining = max(cart.capacity - cart.data_end, 0) // MB if cart else 0
    return [
        _counter(0x0001, remaining, 4),
        _counter(0x0002, 0, 4),
        _counter(0x0003, maximum, 4),
        _counter(0x0004, 0, 4),
    ]


def data_compression(drive: TapeDrive) -> list[LogParameter]:
    """32h (IBM data compression): ratios and transfer totals of this load, split into MB and the bytes left over."""
    counters = drive.load_counters
    parameters = [_counter(0x0000, COMPRESSION_RATIO_PERCENT, 2), _counter(0x0001, COMPRESSION_RATIO_PERCENT, 2)]
    code = 0x0002
    # to host, read from tape, from host, written to tape (nothing is compressed: pairs are equal)
    for total in (
        counters["bytes_to_host"],
        counters["bytes_to_host"],
        counters["bytes_from_host"],
        counters["bytes_from_host"],
    ):
        parameters += [_counter(code, total // MB, 4), _counter(code + 1, total % MB, 4)]
        code += 2
    return parameters


def log_pages(drive: TapeDrive) -> dict[int, Callable[[], list[LogParameter]]]:
    pages = {
        0x02: write_error_counters,
        0x03: read_error_counters,
        0x0C: sequential_access,
        0x0D: temperature,
        0x11: device_status,
        0x12: tape_alert_response,
        0x17: volume_statistics,
        0x2E: tape_alert,
        0x30: tape_usage,
        0x31: tape_capacity,
        0x32: data_compression,
    }
    return {code: functools.partial(page, drive) for code, page in pages.items()}
