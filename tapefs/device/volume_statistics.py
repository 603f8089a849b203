"""Volume statistics, LOG SENSE page 17h: mounts, data volumes, errors, passes, identity."""

from __future__ import annotations

import dataclasses

from tapefs.device.log_pages import VOLUME_STATISTICS_PAGE, parse_log_page

#: The number of end-to-end passes after which LTO media count as worn out (PBS uses the same).
LTO_RATED_PASSES = 16000

_COUNTERS = {
    0x0001: "volume_mounts",
    0x0002: "volume_datasets_written",
    0x0003: "recovered_write_data_errors",
    0x0004: "unrecovered_write_data_errors",
    0x0005: "write_servo_data_errors",
    0x0006: "unrecovered_write_servo_errors",
    0x0007: "volume_datasets_read",
    0x0008: "recovered_read_errors",
    0x0009: "unrecovered_read_errors",
    0x000C: "last_mount_unrecovered_write_errors",
    0x000D: "last_mount_unrecovered_read_errors",
    0x000E: "last_mount_megabytes_written",
    0x000F: "last_mount_megabytes_read",
    0x0010: "lifetime_megabytes_written",
    0x0011: "lifetime_megabytes_read",
    0x0012: "last_load_write_compression_ratio",
    0x0013: "last_load_read_compression_ratio",
    0x0014: "medium_mount_time",
    0x0015: "medium_ready_time",
    0x0016: "total_native_capacity",
    0x0017: "total_used_native_capacity",
    0x0101: "beginning_of_medium_passes",
    0x0102: "middle_of_tape_passes",
}
_TEXTS = {
    0x0040: "serial",
    0x0041: "tape_lot_id",
    0x0042: "barcode",
    0x0043: "manufacturer",
    0x0044: "license_code",
    0x0045: "personality",
}
_FLAGS = {0x0080: "write_protect", 0x0081: "worm", 0x0082: "temperature_exceeded"}


@dataclasses.dataclass
class VolumeStatistics:
    volume_mounts: int = 0
    volume_datasets_written: int = 0
    recovered_write_data_errors: int = 0
    unrecovered_write_data_errors: int = 0
    write_servo_data_errors: int = 0
    unrecovered_write_servo_errors: int = 0
    volume_datasets_read: int = 0
    recovered_read_errors: int = 0
    unrecovered_read_errors: int = 0
    last_mount_unrecovered_write_errors: int = 0
    last_mount_unrecovered_read_errors: int = 0
    last_mount_megabytes_written: int = 0
    last_mount_megabytes_read: int = 0
    lifetime_megabytes_written: int = 0
    lifetime_megabytes_read: int = 0
    last_load_write_compression_ratio: int = 0
    last_load_read_compression_ratio: int = 0
    medium_mount_time: int = 0
    medium_ready_time: int = 0
    total_native_capacity: int = 0
    total_used_native_capacity: int = 0
    write_protect: bool = False
    worm: bool = False
    temperature_exceeded: bool = False
    beginning_of_medium_passes: int = 0
    middle_of_tape_passes: int = 0
    serial: str = ""
    tape_lot_id: str = ""
    barcode: str = ""
    manufacturer: str = ""
    license_code: str = ""
    personality: str = ""

    @property
    def medium_passes(self) -> int:
        return max(self.beginning_of_medium_passes, self.middle_of_tape_passes)

    @property
    def wearout(self) -> float:
        """Fraction of the rated passes used, 0.0 = new."""
        return self.medium_passes / LTO_RATED_PASSES

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def parse_volume_statistics(data: bytes) -> VolumeStatistics:
    parameters = {p.code: p for p in parse_log_page(data, VOLUME_STATISTICS_PAGE)}
    valid = parameters.get(0x0000)
    if valid is None or not valid.as_int():
        raise ValueError("volume statistics page is not valid (page-valid parameter missing or zero)")
    stats = VolumeStatistics()
    for code, parameter in parameters.items():
        if code in _COUNTERS:
            if not 1 <= len(parameter.value) <= 8:
                raise ValueError(f"volume statistics counter {code:#06x} has length {len(parameter.value)}")
            setattr(stats, _COUNTERS[code], parameter.as_int())
        elif code in _TEXTS:
            setattr(stats, _TEXTS[code], parameter.as_text())
        elif code in _FLAGS:
            setattr(stats, _FLAGS[code], bool(parameter.as_int()))
    return stats
