"""Tape drive API (SSC): positioning, block I/O, options, status, TapeAlert, MAM, encryption.

Every method sends the same CDBs over vtape and over SG_IO. Conditions that end a command
(filemark, end of data, no medium, ...) come back as the typed exceptions of
`tapefs.scsi.errors`; the drive keeps no position state of its own, the tape's is the truth.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time

from tapefs.device import encryption, mam
from tapefs.device.density import FIRST_FORMAT_DENSITY, IMMEDIATE_FORMAT_DENSITY, density_name
from tapefs.device.handle import DeviceHandle
from tapefs.device.log_pages import (
    DEVICE_STATUS_PAGE,
    TAPE_ALERT_RESPONSE_PAGE,
    VOLUME_STATISTICS_PAGE,
    DeviceStatus,
    parse_device_status,
)
from tapefs.device.mode_pages import (
    DATA_COMPRESSION_PAGE,
    MEDIUM_CONFIGURATION_PAGE,
    ModeData,
    build_mode_select_10,
    parse_data_compression,
    parse_mode_sense_10,
    with_compression,
)
from tapefs.device.position import LONG_FORM_LENGTH, Position, parse_long_form
from tapefs.device.tape_alert import parse_tape_alert_response
from tapefs.device.volume_statistics import VolumeStatistics, parse_volume_statistics
from tapefs.scsi import cdb as cdbs
from tapefs.scsi.errors import (
    BecomingReady,
    CheckCondition,
    EarlyWarning,
    IllegalRequest,
    NotReady,
    ScsiError,
    UnitAttention,
)
from tapefs.scsi.inquiry import PERIPHERAL_TAPE, unit_serial_number
from tapefs.scsi.sense import Sense, SenseFormatError, decode_sense
from tapefs.scsi.timeouts import timeout_for
from tapefs.scsi.trace import Tracer

log = logging.getLogger(__name__)

#: PBS writes and reads 256 KiB records; a READ with a larger buffer returns the record as is.
DEFAULT_BLOCK_SIZE = 256 * 1024
MAX_BLOCK_SIZE = 0x800000
MODE_SENSE_ALLOCATION = 4096
LOG_SENSE_ALLOCATION = 8192
SECURITY_PROTOCOL_ALLOCATION = 8196
#: How often to poll TEST UNIT READY while an immediate FORMAT runs.
READY_POLL_INTERVAL = 1.0
#: A drive may queue several unit attentions (reset, then medium change); each is reported once.
UNIT_ATTENTION_RETRIES = 4
#: How long opening a drive waits while it reports "becoming ready" (a cartridge being threaded
#: and calibrated); PBS waits as long when it opens a drive.
OPEN_READY_TIMEOUT = 600.0


class PositionError(ScsiError):
    """The drive did not end up where a positioning command should have taken it."""


class DriveNotReady(ScsiError):
    """The drive still reported "becoming ready" when the wait for it ended."""


class EncryptionUnsupported(ScsiError):
    """The drive offers no AES-256-GCM algorithm with a 32-byte key."""


@dataclasses.dataclass
class DriveOptions:
    compression: bool
    block_length: int
    buffer_mode: bool


@dataclasses.dataclass
class DriveStatus:
    """What `pmt status` shows; media fields are None without a ready medium."""

    vendor: str
    product: str
    revision: str
    serial: str | None
    blocksize: int
    compression: bool
    buffer_mode: int
    density: str | None
    write_protect: bool
    drive_activity: str | None
    alert_flags: list[int]
    medium_present: bool
    file_number: int | None = None
    block_number: int | None = None
    manufactured: str | None = None
    bytes_read: int | None = None
    bytes_written: int | None = None
    medium_passes: int | None = None
    medium_wearout: float | None = None
    volume_mounts: int | None = None

    def to_dict(self) -> dict:
        return {key.replace("_", "-"): value for key, value in dataclasses.asdict(self).items()}


class Drive(DeviceHandle):
    peripheral_type = PERIPHERAL_TAPE
    kind = "tape drive"

    @classmethod
    def open(cls, path: str, tracer: Tracer | None = None, ready_timeout: float = OPEN_READY_TIMEOUT) -> Drive:
        """Open the drive as the Linux st driver and PBS do: absorb the unit attention a load
        leaves ("medium may have changed") and wait up to ready_timeout seconds while a cartridge
        is becoming ready, so that the first command after a changer load works. An empty drive
        or one holding a cleaning cartridge opens at once; its commands report that themselves."""
        drive = super().open(path, tracer)
        try:
            drive.settle(ready_timeout)
        except BaseException:
            drive.close()
            raise
        return drive

    def settle(self, ready_timeout: float) -> None:
        """TEST UNIT READY until the drive has no unit attention left to report and is not
        becoming ready; DriveNotReady when it still is after ready_timeout seconds."""
        deadline = time.monotonic() + ready_timeout
        attentions = 0
        while True:
            try:
                self.test_unit_ready()
                return
            except UnitAttention as exc:
                attentions += 1
                if attentions > UNIT_ATTENTION_RETRIES:
                    raise
                log.info("%s: %s", self.path, exc.sense.condition)
            except BecomingReady as exc:
                if time.monotonic() >= deadline:
                    raise DriveNotReady(
                        f"{self.path}: the drive did not become ready within {ready_timeout:g} s "
                        f"(it still reports: {exc.sense.condition})"
                    ) from None
                time.sleep(min(READY_POLL_INTERVAL, max(deadline - time.monotonic(), 0.0)))
            except NotReady as exc:
                log.info("%s: %s", self.path, exc.sense.condition)
                return

    def serial_number(self) -> str | None:
        try:
            return unit_serial_number(self.channel)
        except (IllegalRequest, ValueError):
            return None

    def test_unit_ready(self) -> None:
        self.channel.run(cdbs.test_unit_ready())

    def is_ready(self) -> bool:
        """True when a medium is loaded and ready; unit attentions met on the way are consumed."""
        retries = UNIT_ATTENTION_RETRIES
        while True:
            try:
                self.test_unit_ready()
                return True
            except NotReady:
                return False
            except UnitAttention as exc:
                if retries == 0:
                    raise
                retries -= 1
                log.info("%s: %s", self.path, exc.sense.condition)

    def request_sense(self) -> Sense | None:
        """The drive's current sense; also clears a pending unit attention."""
        result = self.channel.run(cdbs.request_sense(252), data_in_len=252)
        try:
            return decode_sense(result.data)
        except SenseFormatError:
            return None

    # --- block I/O ----------------------------------------------------------------------

    def read_block(self, buffer_size: int = DEFAULT_BLOCK_SIZE) -> bytes:
        """Read the next variable-length block. Raises FilemarkDetected at the end of a file
        (the tape then stands after the filemark) and EndOfData past the last file."""
        result = self.channel.run(cdbs.read_6(buffer_size, sili=True), data_in_len=buffer_size)
        return result.data

    def read_blocks(self, count: int, buffer_size: int = DEFAULT_BLOCK_SIZE) -> list[bytes | ScsiError]:
        """Up to `count` READs queued at once (see `Channel.run_reads`): each block, or the
        exception `read_block` would have raised in its place. Where the transport queues them,
        the drive ran all of them: after a filemark or an error the tape may stand past the
        blocks that followed it."""
        outcomes = self.channel.run_reads(cdbs.read_6(buffer_size, sili=True), count, buffer_size)
        return [outcome if isinstance(outcome, ScsiError) else outcome.data for outcome in outcomes]

    def write_block(self, data: bytes | memoryview) -> bool:
        """Write one variable-length block; True if the tape is in the early-warning zone (the
        block was written, but the tape is nearly full)."""
        if not 0 < len(data) <= MAX_BLOCK_SIZE:
            raise ValueError(f"block of {len(data)} bytes; blocks are 1 to {MAX_BLOCK_SIZE} bytes")
        try:
            self.channel.run(cdbs.write_6(len(data)), data_out=data)
        except EarlyWarning:
            return True
        return False

    def write_filemarks(self, count: int = 1, immediate: bool = False) -> bool:
        """Write count filemarks (0 flushes the drive buffer); True in the early-warning zone."""
        try:
            self.channel.run(cdbs.write_filemarks_6(count, immediate=immediate))
        except EarlyWarning:
            return True
        return False

    def sync(self) -> None:
        self.write_filemarks(0)

    # --- positioning ----------------------------------------------------------------------

    def rewind(self) -> None:
        self.channel.run(cdbs.rewind())

    def space_blocks(self, count: int) -> None:
        """Space over count blocks (negative: backwards); stops at a filemark with FilemarkDetected."""
        if count:
            self.channel.run(cdbs.space(cdbs.SPACE_BLOCKS, count))

    def space_filemarks(self, count: int) -> None:
        """Space over count filemarks: forward ends after the filemark, backward before it."""
        if count:
            self.channel.run(cdbs.space(cdbs.SPACE_FILEMARKS, count))

    def space_to_end_of_data(self) -> None:
        self.channel.run(cdbs.space(cdbs.SPACE_END_OF_DATA, 0))

    def forward_space_filemarks_then_back(self, count: int) -> None:
        """fsfm: forward over count filemarks, then back before the last one."""
        self.space_filemarks(count)
        self.space_filemarks(-1)

    def backward_space_filemarks_then_forward(self, count: int) -> None:
        """bsfm: back over count filemarks, then forward after the last one."""
        self.space_filemarks(-count)
        self.space_filemarks(1)

    def locate_object(self, logical_object_number: int) -> None:
        self.channel.run(cdbs.locate_16(logical_object_number, dest_type=cdbs.LOCATE_OBJECT))

    def locate_file(self, file_number: int) -> Position:
        """Stand at the first block of file `file_number` (0 = beginning of tape).

        LOCATE(16) to a file goes to the BOP side of filemark file_number-1; one SPACE over it
        reaches the file. READ POSITION confirms, since drives differ in how they count."""
        if file_number < 0:
            raise ValueError("file numbers start at 0")
        if file_number == 0:
            self.rewind()
        else:
            self.channel.run(cdbs.locate_16(file_number - 1, dest_type=cdbs.LOCATE_FILE))
            self.space_filemarks(1)
        position = self.read_position()
        if position.file_number != file_number:
            raise PositionError(f"{self.path}: LOCATE to file {file_number} ended in file {position.file_number}")
        return position

    def read_position(self) -> Position:
        result = self.channel.run(cdbs.read_position(cdbs.READ_POSITION_LONG), data_in_len=LONG_FORM_LENGTH)
        position = parse_long_form(result.data)
        if position.partition != 0:
            raise PositionError(f"{self.path}: tape is in partition {position.partition}; only 0 is supported")
        return position

    # --- medium handling ------------------------------------------------------------------

    def load(self) -> None:
        self.channel.run(cdbs.load_unload(True))

    def eject(self) -> None:
        """Rewind and unthread; in a library the cartridge waits in the drive for the robot."""
        self.channel.run(cdbs.load_unload(False))

    def lock(self) -> None:
        self.channel.run(cdbs.prevent_allow_medium_removal(True))

    def unlock(self) -> None:
        self.channel.run(cdbs.prevent_allow_medium_removal(False))

    def erase(self, fast: bool = True) -> None:
        """Erase from the current position: fast writes an EOD mark, long overwrites to the end."""
        self.channel.run(cdbs.erase(long=not fast))

    def format_medium(self, fast: bool = True) -> None:
        """Erase the whole tape. LTO-5 and later: FORMAT MEDIUM (immediate and polled from
        LTO-9, whose format optimises the medium); a long erase follows unless fast. Older
        generations: rewind and erase."""
        self.rewind()
        try:
            density = self.mode_sense(MEDIUM_CONFIGURATION_PAGE).density_code
        except IllegalRequest:
            density = 0  # no medium configuration page: LTO-4 or older
        if density >= FIRST_FORMAT_DENSITY:
            immediate = density >= IMMEDIATE_FORMAT_DENSITY
            self.channel.run(cdbs.format_medium(immediate=immediate))
            if immediate:
                self.wait_until_ready(timeout_for(cdbs.format_medium()))
            if not fast:
                self.erase(fast=False)
        else:
            self.erase(fast=fast)

    def wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.test_unit_ready()
                return
            except BecomingReady:
                if time.monotonic() > deadline:
                    raise
                time.sleep(READY_POLL_INTERVAL)

    # --- mode pages and options -----------------------------------------------------------

    def mode_sense(self, page_code: int) -> ModeData:
        result = self.channel.run(
            cdbs.mode_sense_10(page_code, MODE_SENSE_ALLOCATION), data_in_len=MODE_SENSE_ALLOCATION
        )
        return parse_mode_sense_10(result.data, page_code)

    def options(self) -> DriveOptions:
        mode = self.mode_sense(DATA_COMPRESSION_PAGE)
        page = parse_data_compression(mode.page)
        return DriveOptions(page.flags.dce, mode.block_length, bool(mode.buffered_mode))

    def set_options(
        self, compression: bool | None = None, block_length: int | None = None, buffer_mode: bool | None = None
    ) -> DriveOptions:
        """Change the given options, keep the others (one MODE SENSE, one MODE SELECT)."""
        if block_length is not None and not 0 <= block_length <= MAX_BLOCK_SIZE:
            raise ValueError(f"block length {block_length} is outside 0..{MAX_BLOCK_SIZE} (0 = variable)")
        mode = self.mode_sense(DATA_COMPRESSION_PAGE)
        page = mode.page if compression is None else with_compression(mode.page, compression)
        new_block_length = mode.block_length if block_length is None else block_length
        new_buffered = mode.buffered_mode if buffer_mode is None else int(buffer_mode)
        parameters = build_mode_select_10(mode, buffered_mode=new_buffered, block_length=new_block_length, page=page)
        self.channel.run(cdbs.mode_select_10(len(parameters)), data_out=parameters)
        return self.options()

    def set_default_options(self) -> DriveOptions:
        """What PBS sets when it opens a drive: compression on, variable blocks, buffered mode."""
        return self.set_options(compression=True, block_length=0, buffer_mode=True)

    # --- log pages ------------------------------------------------------------------------

    def _log_sense(self, page_code: int, allocation: int = LOG_SENSE_ALLOCATION) -> bytes:
        return self.channel.run(cdbs.log_sense(page_code, allocation), data_in_len=allocation).data

    def device_status(self) -> DeviceStatus:
        return parse_device_status(self._log_sense(DEVICE_STATUS_PAGE))

    def tape_alert_flags(self) -> list[int]:
        return parse_tape_alert_response(self._log_sense(TAPE_ALERT_RESPONSE_PAGE, 512))

    def volume_statistics(self) -> VolumeStatistics:
        return parse_volume_statistics(self._log_sense(VOLUME_STATISTICS_PAGE))

    # --- cartridge memory -------------------------------------------------------------------

    def cartridge_memory(self) -> list[mam.Attribute]:
        result = self.channel.run(cdbs.read_attribute(mam.READ_ALLOCATION), data_in_len=mam.READ_ALLOCATION)
        return mam.parse_attributes(result.data)

    def write_attribute(self, attribute_id: int, value: bytes | str | int | None) -> None:
        parameters = mam.build_write_attribute(attribute_id, value)
        self.channel.run(cdbs.write_attribute(len(parameters)), data_out=parameters)

    # --- hardware encryption ----------------------------------------------------------------

    def _security_protocol_in(self, page: int) -> bytes:
        result = self.channel.run(
            cdbs.security_protocol_in(page, SECURITY_PROTOCOL_ALLOCATION), data_in_len=SECURITY_PROTOCOL_ALLOCATION
        )
        return result.data

    def encryption_status(self) -> encryption.EncryptionStatus:
        return encryption.parse_status(self._security_protocol_in(encryption.STATUS_PAGE))

    def set_encryption_key(self, key: bytes) -> None:
        """Encrypt what is written from now on with key; read encrypted and plain blocks."""
        index = encryption.find_aes_gcm_algorithm(self._security_protocol_in(encryption.CAPABILITIES_PAGE))
        if index is None:
            raise EncryptionUnsupported(f"{self.path}: drive offers no AES-256-GCM encryption")
        page = encryption.build_set_data_encryption(key, index)
        self.channel.run(cdbs.security_protocol_out(encryption.SET_DATA_ENCRYPTION_PAGE, len(page)), data_out=page)

    def clear_encryption_key(self) -> None:
        page = encryption.build_set_data_encryption(None, 0)
        self.channel.run(cdbs.security_protocol_out(encryption.SET_DATA_ENCRYPTION_PAGE, len(page)), data_out=page)

    # --- status -------------------------------------------------------------------------------

    def status(self) -> DriveStatus:
        """Drive and medium status in the order PBS reads it. Optional pages a drive may lack
        (device status, TapeAlert, MAM, volume statistics) leave their fields empty."""
        identity = self.inquiry()
        # Clears a deferred error or a "medium may have changed" unit attention first.
        self.request_sense()
        mode = self.mode_sense(DATA_COMPRESSION_PAGE)
        compression = parse_data_compression(mode.page).flags.dce
        activity = None
        try:
            activity = self.device_status().activity_name
        except (CheckCondition, ValueError) as exc:
            log.info("%s: no device status page: %s", self.path, exc)
        alert_flags: list[int] = []
        try:
            alert_flags = self.tape_alert_flags()
        except (CheckCondition, ValueError) as exc:
            log.info("%s: no TapeAlert page: %s", self.path, exc)
        status = DriveStatus(
            vendor=identity.vendor,
            product=identity.product,
            revision=identity.revision,
            serial=self.serial_number(),
            blocksize=mode.block_length,
            compression=compression,
            buffer_mode=mode.buffered_mode,
            density=density_name(mode.density_code),
            write_protect=mode.write_protect,
            drive_activity=activity,
            alert_flags=alert_flags,
            medium_present=self.is_ready(),
        )
        if not status.medium_present:
            return status
        position = self.read_position()
        status.file_number, status.block_number = position.file_number, position.block_number
        try:
            attributes = {a.id: a for a in self.cartridge_memory()}
        except (CheckCondition, ValueError) as exc:
            log.info("%s: cartridge memory not readable: %s", self.path, exc)
            attributes = {}
        if mam.MANUFACTURE_DATE in attributes:
            status.manufactured = _iso_date(str(attributes[mam.MANUFACTURE_DATE].value))
        if mam.TOTAL_MIB_READ in attributes:
            status.bytes_read = int(attributes[mam.TOTAL_MIB_READ].value) * 1024 * 1024
        if mam.TOTAL_MIB_WRITTEN in attributes:
            status.bytes_written = int(attributes[mam.TOTAL_MIB_WRITTEN].value) * 1024 * 1024
        try:
            statistics = self.volume_statistics()
        except (CheckCondition, ValueError) as exc:
            log.info("%s: no volume statistics: %s", self.path, exc)
        else:
            status.medium_passes = statistics.medium_passes
            status.medium_wearout = statistics.wearout
            status.volume_mounts = statistics.volume_mounts
        return status


def _iso_date(yyyymmdd: str) -> str | None:
    try:
        return datetime.datetime.strptime(yyyymmdd, "%Y%m%d").date().isoformat()
    except ValueError:
        return None
