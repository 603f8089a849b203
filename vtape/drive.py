"""An LTO tape drive (SSC-3/4) over a file-backed cartridge.

The position is an object index p in 0..n (n = end of data); LON = p and the
logical file id is the number of filemarks before p, as IBM drives and mhvtl
count. See docs/vtape.md for the full command list.
"""

from __future__ import annotations

import logging
import time

from . import drive_logs, mam, media, security_protocol, sense
from .block_cipher import BlockCipher
from .cartridge import Cartridge, CartridgeError, Entry, FileRegion
from .drive_logs import ALERT_CLEAN_NOW, ALERT_CLEAN_PERIODIC, ALERT_EXPIRED_CLEANING_MEDIA, ALERT_WRITE_PROTECT
from .sense import CheckCondition
from .spc import ModePage, Outcome, ScsiDevice, ascii_field, command

log = logging.getLogger(__name__)

MAX_BLOCK = 8 * 1024 * 1024
CLEANING_SECONDS = 0.5


class TapeDrive(ScsiDevice):
    peripheral_type = 0x01

    def __init__(self, library, index: int, identity, generation: int):
        super().__init__(identity)
        self.library = library
        self.index = index
        self.generation = generation
        self.cartridge: Cartridge | None = None
        self.threaded = False
        self.position = 0
        self.block_length = 0
        self.compression = True
        self.buffered_mode = 1
        self.prevent = False
        self.cipher = BlockCipher()
        self.ready_at = 0.0
        self.cleaning_until = 0.0
        self.not_ready_fault = False
        self.cleaning_required = False
        self.tape_alerts: set[int] = set()
        self.pending_delay = 0.0
        self.load_counters = self._zero_counters()

    @staticmethod
    def _zero_counters() -> dict:
        return {"bytes_from_host": 0, "bytes_to_host": 0, "datasets_written": 0, "datasets_read": 0}

    @property
    def timing(self) -> dict:
        return self.library.config["timing"]

    def _delay(self, seconds: float) -> None:
        if self.timing["enabled"]:
            self.pending_delay += seconds

    def take_delay(self) -> float:
        delay, self.pending_delay = self.pending_delay, 0.0
        return delay

    # -- the cartridge slot (driven by the changer) ------------------------------

    def insert(self, cartridge: Cartridge, unit_attention: bool = True) -> None:
        """A cartridge arrives from the changer: thread it, or clean with it."""
        self.cartridge = cartridge
        self.position = 0
        self.load_counters = self._zero_counters()
        meta = cartridge.meta
        meta["load_count"] += 1
        tag = ascii_field(self.identity.vendor, 8) + ascii_field(self.identity.serial, 32)
        meta["last_loads"] = [tag.decode()] + meta["last_loads"][:3]
        if meta["cleaning"]:
            self.threaded = False
            if meta["cleaning_cycles_left"] > 0:
                meta["cleaning_cycles_left"] -= 1
                self.cleaning_until = time.monotonic() + CLEANING_SECONDS
                self.cleaning_required = False
                self.tape_alerts -= {ALERT_CLEAN_NOW, ALERT_CLEAN_PERIODIC}
                log.info(
                    "drive%d: cleaning with %s (%d cycles left)",
                    self.index,
                    cartridge.barcode,
                    meta["cleaning_cycles_left"],
                )
            else:
                self.tape_alerts.add(ALERT_EXPIRED_CLEANING_MEDIA)
                log.warning("drive%d: cleaning cartridge %s is expired", self.index, cartridge.barcode)
        else:
            self.threaded = True
            self.ready_at = time.monotonic() + (self.timing["load_seconds"] if self.timing["enabled"] else 0)
        cartridge.save_meta()
        if unit_attention and self.library.config.get("unit_attention_on_load", True):
            self.raise_unit_attention(0x28, 0x00)

    def remove(self) -> Cartridge:
        """The changer takes the cartridge out; an unload happens first if needed."""
        if self.prevent:
            raise sense.medium_removal_prevented()
        cartridge = self.cartridge
        if self.threaded:
            self._unthread()
        self.cartridge = None
        cartridge.save_meta()
        return cartridge

    def _unthread(self) -> None:
        self._rewind()
        self._delay(self.timing["unload_seconds"])
        self._save_usage()
        self.threaded = False

    def _save_usage(self) -> None:
        meta, counters = self.cartridge.meta, self.load_counters
        meta["bytes_written"] += counters["bytes_from_host"] - counters.get("saved_written", 0)
        meta["bytes_read"] += counters["bytes_to_host"] - counters.get("saved_read", 0)
        meta["datasets_written"] += counters["datasets_written"] - counters.get("saved_datasets_written", 0)
        meta["datasets_read"] += counters["datasets_read"] - counters.get("saved_datasets_read", 0)
        counters["saved_written"] = counters["bytes_from_host"]
        counters["saved_read"] = counters["bytes_to_host"]
        counters["saved_datasets_written"] = counters["datasets_written"]
        counters["saved_datasets_read"] = counters["datasets_read"]
        self.cartridge.save_meta()

    def reset_log_counters(self) -> None:
        if self.cartridge is not None and self.threaded:
            self._save_usage()  # lifetime totals keep what the per-load counters held
        self.load_counters = self._zero_counters()

    def shutdown(self) -> None:
        if self.cartridge is not None and self.threaded:
            self._save_usage()

    def execute(self, cdb, data_out, allocation):
        try:
            return super().execute(cdb, data_out, allocation)
        except CartridgeError as e:
            # Damaged cartridge files look to the host like a damaged tape.
            log.error("drive%d: %s", self.index, e)
            return Outcome(sense.CHECK_CONDITION, sense=CheckCondition(sense.MEDIUM_ERROR, 0x31, 0x00).sense())

    # -- readiness ---------------------------------------------------------------

    @property
    def cleaning(self) -> bool:
        return time.monotonic() < self.cleaning_until

    def not_ready_reason(self) -> CheckCondition | None:
        if self.not_ready_fault:
            return CheckCondition(sense.NOT_READY, 0x04, 0x00)  # cause not reportable
        if self.cartridge is not None and self.cartridge.meta["cleaning"]:
            return sense.cleaning_cartridge_installed()
        if self.cartridge is None or not self.threaded:
            return sense.medium_not_present()
        if time.monotonic() < self.ready_at:
            return sense.becoming_ready()
        return None

    def test_ready(self) -> None:
        reason = self.not_ready_reason()
        if reason:
            raise reason

    def current_sense(self) -> CheckCondition | None:
        return self.not_ready_reason()

    def _loaded(self) -> Cartridge:
        self.test_ready()
        return self.cartridge

    def _writable(self) -> Cartridge:
        cart = self._loaded()
        if cart.meta["write_protected"]:
            self.tape_alerts.add(ALERT_WRITE_PROTECT)  # as drives do: on the refused write, not at load
            raise sense.write_protected()
        if not media.can_write(self.generation, cart.meta["generation"]):
            raise CheckCondition(sense.DATA_PROTECT, 0x30, 0x05)  # cannot write medium: incompatible format
        return cart

    def _refuse_worm_overwrite(self, cart: Cartridge) -> None:
        if cart.meta["worm"] and self.position < cart.count:
            raise sense.worm_overwrite()

    def _at_early_warning(self, cart: Cartridge) -> bool:
        return cart.data_offset(self.position) >= cart.early_warning_at

    # -- identity ------------------------------------------------------------------

    def standard_inquiry(self) -> bytes:
        ident = self.identity
        return (
            bytes([self.peripheral_type, 0x80, 0x05, 0x02, 59, 0, 0, 0])
            + ascii_field(ident.vendor, 8)
            + ascii_field(ident.product, 16)
            + ascii_field(ident.revision, 4)
            + bytes(22)
            + bytes.fromhex("030004000960")
        )

    def vpd_pages(self) -> dict[int, bytes]:
        pages = super().vpd_pages()
        pages[0xB0] = bytes([0x01 if media.GENERATIONS[self.generation].worm_capable else 0x00, 0x00])
        return pages

    # -- reading -----------------------------------------------------------------

    @command(0x08, "READ(6)", 6)
    def read6(self, cdb, data_out, allocation):
        sili, fixed = cdb[1] & 0x02, cdb[1] & 0x01
        length = int.from_bytes(cdb[2:5], "big")
        if fixed and (sili or self.block_length == 0):
            raise sense.invalid_field_in_cdb(1, bit=1 if sili else 0)
        cart = self._loaded()
        if length == 0:
            return b""
        if fixed:
            return self._read_fixed(cart, length)
        return self._read_variable(cart, length, sili)

    def _next_entry(self, cart: Cartridge, residue: int, done: bytes = b"") -> Entry:
        """The block at the position, advancing past it.

        A filemark or end of data ends the command with its sense; ``residue``
        goes into INFORMATION and ``done`` is the data already transferred.
        """
        if self.position >= cart.count:
            raise CheckCondition(
                sense.BLANK_CHECK, 0x00, 0x05, information=residue, eom=self._at_early_warning(cart), transferred=done
            )
        entry = cart.entry(self.position)
        self.position += 1
        if entry.is_filemark:
            raise CheckCondition(sense.NO_SENSE, 0x00, 0x01, information=residue, filemark=True, transferred=done)
        if self.position - 1 in cart.meta.get("media_errors", ()):
            raise CheckCondition(sense.MEDIUM_ERROR, 0x11, 0x00, information=residue, transferred=done)
        self.load_counters["bytes_to_host"] += entry.length
        self.load_counters["datasets_read"] += 1
        return entry

    def _next_block(self, cart: Cartridge, residue: int, done: bytes = b"") -> bytes:
        entry = self._next_entry(cart, residue, done)
        return self.cipher.open(entry, cart.read_payload(entry))

    def _read_variable(self, cart: Cartridge, length: int, sili: int) -> bytes | FileRegion:
        entry = self._next_entry(cart, length)
        if not entry.encrypted and (entry.length == length or (sili and entry.length < length)):
            # The common case goes from the cartridge file to the socket without a copy.
            self.cipher.require_plain_allowed()
            return cart.payload_region(entry)
        data = self.cipher.open(entry, cart.read_payload(entry))
        if len(data) == length or (sili and (len(data) < length or self.block_length == 0)):
            return data[:length]
        raise CheckCondition(
            sense.NO_SENSE, 0x00, 0x00, information=length - len(data), ili=True, transferred=data[:length]
        )

    def _read_fixed(self, cart: Cartridge, blocks: int) -> bytes:
        size = self.block_length
        if blocks * size > MAX_BLOCK * 2:
            raise sense.invalid_field_in_cdb(2)
        out = bytearray()
        for done in range(blocks):
            data = self._next_block(cart, blocks - done, bytes(out))
            if len(data) != size:
                raise CheckCondition(
                    sense.NO_SENSE, 0x00, 0x00, information=blocks - done, ili=True, transferred=bytes(out)
                )
            out += data
        return bytes(out)

    # -- writing -----------------------------------------------------------------

    @command(0x0A, "WRITE(6)", 6)
    def write6(self, cdb, data_out, allocation):
        fixed = cdb[1] & 0x01
        length = int.from_bytes(cdb[2:5], "big")
        if fixed and self.block_length == 0:
            raise sense.invalid_field_in_cdb(1, bit=0)
        cart = self._writable()
        self._refuse_worm_overwrite(cart)
        if length == 0:
            return None
        block_size = self.block_length if fixed else length
        total = length * self.block_length if fixed else length
        if block_size > MAX_BLOCK:
            raise sense.invalid_field_in_cdb(2)
        if len(data_out) < total:
            raise CheckCondition(sense.ABORTED_COMMAND, 0x4B, 0x00)  # data phase error
        cart.truncate(self.position)
        if cart.data_end + total > cart.capacity:
            raise CheckCondition(sense.VOLUME_OVERFLOW, 0x00, 0x02, eom=True, information=length)
        cart.note_modification()
        if cart.count == 0 and cart.meta["density"] == 0:
            self._record_density(cart)
        for start in range(0, total, block_size):
            block = data_out[start : start + block_size]
            stored, flags, key = self.cipher.seal(block)
            cart.append_block(stored, len(block), flags, key)
        self.position = cart.count
        self.load_counters["bytes_from_host"] += total
        self.load_counters["datasets_written"] += total // block_size
        if cart.data_end >= cart.early_warning_at:
            raise CheckCondition(sense.NO_SENSE, 0x00, 0x02, eom=True, information=0)
        return None

    def _record_density(self, cart: Cartridge) -> None:
        cart.meta["density"] = media.GENERATIONS[cart.meta["generation"]].density
        cart.save_meta()

    @command(0x10, "WRITE FILEMARKS(6)", 6)
    def write_filemarks(self, cdb, data_out, allocation):
        if cdb[1] & 0x02:
            raise sense.invalid_field_in_cdb(1, bit=1)  # setmarks
        count = int.from_bytes(cdb[2:5], "big")
        if count == 0:
            self._loaded().flush()
            self._save_usage()
            return None
        cart = self._writable()
        self._refuse_worm_overwrite(cart)
        cart.truncate(self.position)
        cart.note_modification()
        if cart.count == 0 and cart.meta["density"] == 0:
            self._record_density(cart)
        cart.append_filemarks(count)
        self.position = cart.count
        self._save_usage()
        if cart.data_end >= cart.early_warning_at:
            raise CheckCondition(sense.NO_SENSE, 0x00, 0x02, eom=True, information=0)
        return None

    # -- positioning -------------------------------------------------------------

    def _move_to(self, cart: Cartridge, position: int) -> None:
        if self.timing["enabled"]:
            distance = abs(cart.data_offset(position) - cart.data_offset(self.position))
            self._delay(self.timing["full_wind_seconds"] * distance / cart.capacity)
        self.position = position

    @command(0x11, "SPACE(6)", 6)
    def space6(self, cdb, data_out, allocation):
        count = int.from_bytes(cdb[2:5], "big", signed=True)
        self._space(cdb[1] & 0x0F, count)

    @command(0x91, "SPACE(16)", 16)
    def space16(self, cdb, data_out, allocation):
        count = int.from_bytes(cdb[4:12], "big", signed=True)
        self._space(cdb[1] & 0x0F, count)

    def _space(self, code: int, count: int) -> None:
        if code not in (0, 1, 3):
            raise sense.invalid_field_in_cdb(1, bit=3)
        cart = self._loaded()
        if code == 3:
            self._move_to(cart, cart.count)
        elif count > 0 and code == 0:
            self._space_blocks_forward(cart, count)
        elif count < 0 and code == 0:
            self._space_blocks_backward(cart, -count)
        elif count > 0:
            self._space_filemarks_forward(cart, count)
        elif count < 0:
            self._space_filemarks_backward(cart, -count)

    def _space_blocks_forward(self, cart: Cartridge, count: int) -> None:
        filemark = cart.next_filemark(self.position)
        limit = cart.count if filemark is None else filemark
        available = limit - self.position
        if count <= available:
            self._move_to(cart, self.position + count)
        elif filemark is not None:
            self._move_to(cart, filemark + 1)
            raise CheckCondition(sense.NO_SENSE, 0x00, 0x01, filemark=True, information=count - available)
        else:
            self._move_to(cart, cart.count)
            raise CheckCondition(
                sense.BLANK_CHECK, 0x00, 0x05, information=count - available, eom=self._at_early_warning(cart)
            )

    def _space_blocks_backward(self, cart: Cartridge, count: int) -> None:
        filemark = cart.previous_filemark(self.position)
        floor = 0 if filemark is None else filemark + 1
        available = self.position - floor
        if count <= available:
            self._move_to(cart, self.position - count)
        elif filemark is not None:
            self._move_to(cart, filemark)
            raise CheckCondition(sense.NO_SENSE, 0x00, 0x01, filemark=True, information=-(count - available))
        else:
            self._move_to(cart, 0)
            raise CheckCondition(sense.NO_SENSE, 0x00, 0x04, eom=True, information=-(count - available))

    def _space_filemarks_forward(self, cart: Cartridge, count: int) -> None:
        before = cart.filemarks_before(self.position)
        target = before + count - 1
        if target < len(cart.filemarks):
            self._move_to(cart, cart.filemarks[target] + 1)
            return
        passed = len(cart.filemarks) - before
        self._move_to(cart, cart.count)
        raise CheckCondition(
            sense.BLANK_CHECK, 0x00, 0x05, information=count - passed, eom=self._at_early_warning(cart)
        )

    def _space_filemarks_backward(self, cart: Cartridge, count: int) -> None:
        before = cart.filemarks_before(self.position)
        if count <= before:
            self._move_to(cart, cart.filemarks[before - count])
            return
        self._move_to(cart, 0)
        raise CheckCondition(sense.NO_SENSE, 0x00, 0x04, eom=True, information=-(count - before))

    @command(0x2B, "LOCATE(10)", 10)
    def locate10(self, cdb, data_out, allocation):
        if cdb[1] & 0x02 and cdb[8] != 0:
            raise sense.invalid_field_in_cdb(8)
        self._locate_object(self._loaded(), int.from_bytes(cdb[3:7], "big"))

    @command(0x92, "LOCATE(16)", 16)
    def locate16(self, cdb, data_out, allocation):
        dest_type = (cdb[1] >> 3) & 0x03
        if cdb[1] & 0x02 and cdb[3] != 0:
            raise sense.invalid_field_in_cdb(3)
        identifier = int.from_bytes(cdb[4:12], "big")
        cart = self._loaded()
        if dest_type == 0:
            self._locate_object(cart, identifier)
        elif dest_type == 1:
            # A file id names the BOP side of that filemark (0-based), as IBM drives do.
            if identifier < len(cart.filemarks):
                self._move_to(cart, cart.filemarks[identifier])
            else:
                self._move_to(cart, cart.count)
                raise CheckCondition(sense.BLANK_CHECK, 0x00, 0x05)
        elif dest_type == 3:
            self._move_to(cart, cart.count)
        else:
            raise sense.invalid_field_in_cdb(1, bit=4)

    def _locate_object(self, cart: Cartridge, number: int) -> None:
        if number > cart.count:
            self._move_to(cart, cart.count)
            raise CheckCondition(sense.BLANK_CHECK, 0x00, 0x05)
        self._move_to(cart, number)

    @command(0x34, "READ POSITION", 10)
    def read_position(self, cdb, data_out, allocation):
        service_action = cdb[1] & 0x1F
        if service_action not in (0x00, 0x01, 0x06, 0x08):
            raise sense.invalid_field_in_cdb(1, bit=4)
        cart = self._loaded()
        p = self.position
        flags = (0x80 if p == 0 else 0) | (0x40 if self._at_early_warning(cart) else 0)
        if service_action in (0x00, 0x01):
            return bytes([flags | 0x10, 0, 0, 0]) + p.to_bytes(4, "big") * 2 + bytes(8)
        if service_action == 0x06:
            return (
                bytes([flags, 0, 0, 0])
                + bytes(4)
                + p.to_bytes(8, "big")
                + cart.filemarks_before(p).to_bytes(8, "big")
                + bytes(8)
            )
        length = int.from_bytes(cdb[7:9], "big")
        return (bytes([flags, 0]) + (0x1C).to_bytes(2, "big") + bytes(4) + p.to_bytes(8, "big") * 2 + bytes(8))[:length]

    def _rewind(self) -> None:
        cart = self.cartridge
        self._move_to(cart, 0)
        cart.meta["bop_passes"] += 1

    @command(0x01, "REWIND", 6)
    def rewind(self, cdb, data_out, allocation):
        self._loaded()
        self._rewind()

    @command(0x1B, "LOAD UNLOAD", 6)
    def load_unload(self, cdb, data_out, allocation):
        if cdb[4] & 0x04:
            raise sense.invalid_field_in_cdb(4, bit=2)  # EOT: no retension-to-end
        if cdb[4] & 0x01:
            if self.cartridge is None or self.cartridge.meta["cleaning"]:
                raise self.not_ready_reason()
            if not self.threaded:
                self.threaded = True
                self.position = 0
                self.ready_at = time.monotonic() + (self.timing["load_seconds"] if self.timing["enabled"] else 0)
            return None
        if self.prevent:
            raise sense.medium_removal_prevented()
        if self.cartridge is None:
            raise sense.medium_not_present()
        if self.threaded:
            self._unthread()
        return None

    @command(0x19, "ERASE", 6)
    def erase(self, cdb, data_out, allocation):
        cart = self._writable()
        if cart.meta["worm"]:
            raise sense.worm_overwrite()
        cart.truncate(self.position)
        cart.note_modification()
        if self.position == 0:
            cart.meta["density"] = 0
        cart.flush()
        if cdb[1] & 0x01:
            self._delay(self.timing["full_wind_seconds"])

    @command(0x04, "FORMAT MEDIUM", 6)
    def format_medium(self, cdb, data_out, allocation):
        if cdb[2] & 0x0F:
            raise sense.invalid_field_in_cdb(2, bit=3)  # partitioned formats: one partition only
        cart = self._writable()
        if self.position != 0:
            raise CheckCondition(sense.ILLEGAL_REQUEST, 0x3B, 0x0C)  # not at beginning of partition
        if cart.meta["worm"]:
            raise sense.worm_overwrite()
        cart.erase()
        cart.note_modification()
        cart.meta["density"] = 0
        cart.meta["initialization_count"] += 1
        cart.save_meta()

    @command(0x05, "READ BLOCK LIMITS", 6)
    def read_block_limits(self, cdb, data_out, allocation):
        return bytes([0]) + MAX_BLOCK.to_bytes(3, "big") + (1).to_bytes(2, "big")

    @command(0x1E, "PREVENT ALLOW MEDIUM REMOVAL", 6)
    def prevent_allow(self, cdb, data_out, allocation):
        self.prevent = bool(cdb[4] & 0x03)

    @command(0x16, "RESERVE(6)", 6)
    def reserve(self, cdb, data_out, allocation):
        return None  # single initiator: reservations always succeed

    @command(0x17, "RELEASE(6)", 6)
    def release(self, cdb, data_out, allocation):
        return None

    # -- density -------------------------------------------------------------------

    def current_density(self) -> int:
        if self.cartridge is None or self.cartridge.meta["cleaning"]:
            return 0
        return self.cartridge.meta["density"] or media.GENERATIONS[self.cartridge.meta["generation"]].density

    @command(0x44, "REPORT DENSITY SUPPORT", 10)
    def report_density_support(self, cdb, data_out, allocation):
        if cdb[1] & 0x02:
            raise sense.invalid_field_in_cdb(1, bit=1)  # medium type reports are not supported
        length = int.from_bytes(cdb[7:9], "big")
        if cdb[1] & 0x01:
            cart = self._loaded()
            generations = [media.GENERATIONS[cart.meta["generation"]]]
        else:
            generations = [
                g for n, g in sorted(media.GENERATIONS.items(), reverse=True) if media.can_read(self.generation, n)
            ]
        body = b"".join(self._density_descriptor(g) for g in generations)
        return ((len(body) + 2).to_bytes(2, "big") + bytes(2) + body)[:length]

    def _density_descriptor(self, g: media.Generation) -> bytes:
        writable = media.can_write(self.generation, g.number)
        flags = (0x80 if writable else 0) | (0x20 if g.number == self.generation else 0)
        return (
            bytes([g.density, g.density, flags])
            + (52).to_bytes(2, "big")
            + g.bits_per_mm.to_bytes(3, "big")
            + (127).to_bytes(2, "big")
            + g.tracks.to_bytes(2, "big")
            + g.capacity_mb.to_bytes(4, "big")
            + ascii_field("LTO-CVE", 8)
            + ascii_field(g.density_name, 8)
            + ascii_field(g.description, 20)
        )

    # -- mode pages ------------------------------------------------------------------

    def mode_header_values(self) -> tuple[int, int]:
        cart = self.cartridge
        if cart is None:
            return 0, self.buffered_mode << 4
        gen = media.GENERATIONS[cart.meta["generation"]]
        medium_type = gen.worm_medium_type if cart.meta["worm"] else gen.medium_type
        write_protect = cart.meta["write_protected"] or (cart.meta["worm"] and cart.count > 0)
        return medium_type or 0, (0x80 if write_protect else 0) | self.buffered_mode << 4

    def block_descriptor(self, changeable: bool) -> bytes:
        if changeable:
            return bytes(5) + b"\xff\xff\xff"
        return bytes([self.current_density(), 0, 0, 0, 0]) + self.block_length.to_bytes(3, "big")

    def mode_pages(self) -> dict[int, ModePage]:
        cart = self.cartridge
        compression = (
            bytes([0x0F, 0x0E, 0xC0 if self.compression else 0x40, 0x80]) + (1).to_bytes(4, "big") * 2 + bytes(4)
        )
        early_warning = (cart.meta["early_warning"] if cart else 0) // (1024 * 1024)
        configuration = (
            bytes([0x10, 0x0E, 0, 0, 0, 0, 0, 0, 0x40, 0, 0x18])
            + min(early_warning, 0xFFFFFF).to_bytes(3, "big")
            + bytes([1 if self.compression else 0, 0])
        )
        size_gb = min((cart.capacity if cart else 0) // 10**9, 0xFFFF)
        partition = bytes([0x11, 0x08, 0, 0, 0x18, 0x03, 0x09, 0]) + size_gb.to_bytes(2, "big")
        worm = bool(cart and cart.meta["worm"])
        medium = bytes([0x1D, 0x1E, 0x01 if worm else 0x00, 0, 0x01, 0x01]) + bytes(26)
        return {
            0x0F: ModePage(0x0F, compression, bytes([0x0F, 0x0E, 0x80]) + bytes(13), compression),
            0x10: ModePage(0x10, configuration, bytes([0x10, 0x0E]) + bytes(12) + b"\xff\x00", configuration),
            0x11: ModePage(0x11, partition, bytes([0x11, 0x08]) + bytes(8), partition),
            0x1D: ModePage(0x1D, medium, bytes([0x1D, 0x1E]) + bytes(30), medium),
        }

    def apply_mode_parameters(self, device_specific, descriptor, pages) -> None:
        compression = self.compression
        block_length = self.block_length
        if descriptor is not None:
            offset, fields = descriptor
            density = fields[0]
            if density not in (0x00, 0x7F, self.current_density()) and density not in [
                g.density for n, g in media.GENERATIONS.items() if media.can_write(self.generation, n)
            ]:
                raise sense.invalid_field_in_parameters(offset)
            block_length = int.from_bytes(fields[5:8], "big")
            if block_length > MAX_BLOCK:
                raise sense.invalid_field_in_parameters(offset + 5)
        for code, offset, page in pages:
            if code == 0x0F and len(page) == 16:
                compression = bool(page[2] & 0x80)
            elif code == 0x10 and len(page) == 16:
                compression = bool(page[14])
            elif code == 0x11 and len(page) >= 4 and page[3] == 0:
                continue
            else:
                raise sense.invalid_field_in_parameters(offset)
        self.compression = compression
        self.block_length = block_length
        self.buffered_mode = (device_specific >> 4) & 0x07

    # -- status commands: log pages, MAM, security protocol ---------------------------

    def log_pages(self):
        return drive_logs.log_pages(self)

    def log_page_read(self, page: int, complete: bool) -> None:
        if page == 0x2E and complete:
            self.tape_alerts.clear()  # SSC: reading the TapeAlert page clears the event flags

    @command(0x8C, "READ ATTRIBUTE", 16)
    def read_attribute(self, cdb, data_out, allocation):
        return mam.read_attribute(self, cdb)

    @command(0x8D, "WRITE ATTRIBUTE", 16)
    def write_attribute(self, cdb, data_out, allocation):
        mam.write_attribute(self, cdb, data_out)

    @command(0xA2, "SECURITY PROTOCOL IN", 12)
    def security_protocol_in(self, cdb, data_out, allocation):
        return security_protocol.security_protocol_in(self, cdb)

    @command(0xB5, "SECURITY PROTOCOL OUT", 12)
    def security_protocol_out(self, cdb, data_out, allocation):
        security_protocol.security_protocol_out(self, cdb, data_out)
