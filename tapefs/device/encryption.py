"""Tape data encryption (SSC-4 §8.5): SECURITY PROTOCOL IN/OUT pages for protocol 20h."""

from __future__ import annotations

import dataclasses

from construct import BitsInteger, BitStruct, Bytes, Const, Flag, Int8ub, Int16ub, Int32ub, Padding, Struct, this

CAPABILITIES_PAGE = 0x0010
STATUS_PAGE = 0x0020
SET_DATA_ENCRYPTION_PAGE = 0x0010

AES_256_GCM = 0x00010014
KEY_LENGTH = 32

ENCRYPTION_MODES = {0: "disable", 1: "external", 2: "encrypt"}
DECRYPTION_MODES = {0: "disable", 1: "raw", 2: "decrypt", 3: "mixed"}

#: The (encryption, decryption) mode pairs a drive may report, named as PBS names them.
MODE_PAIRS = {(0, 0): "off", (2, 1): "raw-read", (2, 2): "on", (2, 3): "mixed"}

PAGE_HEADER = Struct("page_code" / Int16ub, "page_length" / Int16ub)

ALGORITHM_DESCRIPTOR = Struct(
    "index" / Int8ub,
    Padding(1),
    "descriptor_length" / Int16ub,
    "capabilities"
    / BitStruct(
        "avfmv" / Flag,
        "sdk_c" / Flag,
        "mac_c" / Flag,
        "delb_c" / Flag,
        "decrypt_c" / BitsInteger(2),
        "encrypt_c" / BitsInteger(2),
    ),
    "flags" / Int8ub,
    "max_ukad" / Int16ub,
    "max_akad" / Int16ub,
    "key_size" / Int16ub,
    "flags2" / Int8ub,
    Padding(1),
    "msdk_count" / Int16ub,
    Padding(4),
    "algorithm" / Int32ub,
)
CAPABILITIES_HEADER_LENGTH = 20
ALGORITHM_DESCRIPTOR_LENGTH = 24

STATUS = Struct(
    "page_code" / Const(STATUS_PAGE, Int16ub),
    "page_length" / Int16ub,
    "scope" / Int8ub,
    "encryption_mode" / Int8ub,
    "decryption_mode" / Int8ub,
    "algorithm_index" / Int8ub,
    "key_instance_counter" / Int32ub,
    "flags" / Int8ub,
    "kad_format" / Int8ub,
    "asdk_count" / Int16ub,
    Padding(8),
)

SET_DATA_ENCRYPTION = Struct(
    "page_code" / Const(SET_DATA_ENCRYPTION_PAGE, Int16ub),
    "page_length" / Int16ub,
    "scope" / Int8ub,
    "flags" / Int8ub,
    "encryption_mode" / Int8ub,
    "decryption_mode" / Int8ub,
    "algorithm_index" / Int8ub,
    "key_format" / Int8ub,
    "kad_format" / Int8ub,
    Padding(7),
    "key_length" / Int16ub,
    "key" / Bytes(this.key_length),
)
#: Scope "all I_T nexus": the key applies whoever talks to the drive (PBS sends the same).
SCOPE_ALL_NEXUS = 0x40


@dataclasses.dataclass(frozen=True)
class EncryptionStatus:
    encryption_mode: int
    decryption_mode: int
    algorithm_index: int
    key_instance_counter: int

    @property
    def mode(self) -> str:
        return MODE_PAIRS.get(
            (self.encryption_mode, self.decryption_mode),
            f"{ENCRYPTION_MODES.get(self.encryption_mode, self.encryption_mode)}/"
            f"{DECRYPTION_MODES.get(self.decryption_mode, self.decryption_mode)}",
        )

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "encryption-mode": self.encryption_mode,
            "decryption-mode": self.decryption_mode,
            "algorithm-index": self.algorithm_index,
            "key-instance-counter": self.key_instance_counter,
        }


def find_aes_gcm_algorithm(data: bytes) -> int | None:
    """Index of an AES-256-GCM algorithm with a 32-byte key that can encrypt and decrypt."""
    header = PAGE_HEADER.parse(data)
    if header.page_code != CAPABILITIES_PAGE:
        raise ValueError(f"expected encryption capabilities page, got {header.page_code:#06x}")
    end = min(len(data), 4 + header.page_length)
    offset = CAPABILITIES_HEADER_LENGTH
    while offset + ALGORITHM_DESCRIPTOR_LENGTH <= end:
        descriptor = ALGORITHM_DESCRIPTOR.parse(data[offset:])
        if (
            descriptor.algorithm == AES_256_GCM
            and descriptor.key_size == KEY_LENGTH
            and descriptor.capabilities.encrypt_c == 2
            and descriptor.capabilities.decrypt_c == 2
        ):
            return descriptor.index
        offset += 4 + descriptor.descriptor_length
    return None


def parse_status(data: bytes) -> EncryptionStatus:
    parsed = STATUS.parse(data)
    return EncryptionStatus(
        parsed.encryption_mode, parsed.decryption_mode, parsed.algorithm_index, parsed.key_instance_counter
    )


def build_set_data_encryption(key: bytes | None, algorithm_index: int) -> bytes:
    """Encrypt and decrypt with `key` (mixed mode, so plain blocks stay readable), or switch
    encryption off when key is None."""
    if key is not None and len(key) != KEY_LENGTH:
        raise ValueError(f"an AES-256 key is {KEY_LENGTH} bytes, got {len(key)}")
    key = key or b""
    body = dict(
        scope=SCOPE_ALL_NEXUS,
        flags=0,
        encryption_mode=2 if key else 0,
        decryption_mode=3 if key else 0,
        algorithm_index=algorithm_index if key else 0,
        key_format=0,
        kad_format=0,
        key_length=len(key),
        key=key,
    )
    page = SET_DATA_ENCRYPTION.build(dict(body, page_length=0))
    return SET_DATA_ENCRYPTION.build(dict(body, page_length=len(page) - 4))
