"""SECURITY PROTOCOL IN (A2h) and OUT (B5h): tape data encryption (SSC-4).

SPIN reports the capabilities and the state of ``drive.cipher``; SPOUT's Set
Data Encryption page sets it. One algorithm: index 1, AES-256-GCM with a
32-byte plain-text key, as PBS and stenc expect. Everything works without a
medium except the next block encryption status, which looks at the tape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from construct import Int8ub, Int16ub, Int32ub, Int64ub, Padding, Struct

from . import block_cipher, sense

if TYPE_CHECKING:
    from .drive import TapeDrive

PROTOCOL_INFORMATION = 0x00
PROTOCOL_TAPE_ENCRYPTION = 0x20

SUPPORTED_PROTOCOLS = 0x0000
CERTIFICATE = 0x0001

PAGE_IN_SUPPORT = 0x0000
PAGE_OUT_SUPPORT = 0x0001
PAGE_CAPABILITIES = 0x0010
PAGE_KEY_FORMATS = 0x0011
PAGE_STATUS = 0x0020
PAGE_NEXT_BLOCK = 0x0021
PAGE_SET_DATA_ENCRYPTION = 0x0010

ALGORITHM_INDEX = 1
ALGORITHM_AES_256_GCM = 0x00010014
KEY_SIZE = 32
KEY_FORMAT_PLAIN = 0x00
MAX_UKAD, MAX_AKAD = 0x20, 0x0C
KAD_UKAD, KAD_AKAD = 0x00, 0x01
KAD_NOT_AUTHENTICATED = 0x01

#: (encryption mode, decryption mode) pairs: off, raw read, on, mixed. PBS rejects any other.
SUPPORTED_MODES = {
    (block_cipher.ENCRYPT_DISABLE, block_cipher.DECRYPT_DISABLE),
    (block_cipher.ENCRYPT_ON, block_cipher.DECRYPT_RAW),
    (block_cipher.ENCRYPT_ON, block_cipher.DECRYPT_ON),
    (block_cipher.ENCRYPT_ON, block_cipher.DECRYPT_MIXED),
}

# Next block encryption status values (never 1, "cannot determine": stenc then spaces with MTFSR).
NOT_A_BLOCK, NOT_ENCRYPTED, ENCRYPTED_KEY_AVAILABLE, ENCRYPTED_KEY_UNAVAILABLE = 2, 3, 5, 6

SECURITY_PROTOCOL_CDB = Struct(
    "opcode" / Int8ub,
    "protocol" / Int8ub,
    "specific" / Int16ub,
    "flags" / Int8ub,  # b7 INC_512
    Padding(1),
    "length" / Int32ub,
    Padding(1),
    "control" / Int8ub,
).compile()
INC_512 = 0x80

CAPABILITIES_PAGE = Struct(
    "page_code" / Int16ub,
    "page_length" / Int16ub,
    "configuration" / Int8ub,  # b3-2 EXTDECC, b1-0 CFG_P
    Padding(15),
    "algorithm_index" / Int8ub,
    Padding(1),
    "descriptor_length" / Int16ub,
    "capabilities" / Int8ub,  # b7 AVFMV, b6 SDK_C, b5 MAC_C, b4 DELB_C, b3-2 DECRYPT_C, b1-0 ENCRYPT_C
    "kad_capabilities" / Int8ub,  # b5-4 NONCE_C, b1 UKADF, b0 AKADF
    "max_ukad" / Int16ub,
    "max_akad" / Int16ub,
    "key_size" / Int16ub,
    "decryption_capabilities" / Int8ub,  # b7-6 DKAD_C, b5-4 EEMC_C, b3-1 RDMC_C, b0 EAREM
    Padding(1),
    "msdk_count" / Int16ub,
    Padding(4),
    "algorithm" / Int32ub,
).compile()
CAPABILITIES_SIZE = 44
CAPABLE_BOTH_WAYS = 0x3A  # MAC_C, DELB_C, DECRYPT_C=2 and ENCRYPT_C=2 (hardware)
SPOUT_MAY_CONFIGURE = 0x01  # CFG_P 01b: SPOUT may change the encryption parameters
RECORDS_ENCRYPTION_MODE = 0x01  # EAREM: each block remembers whether it was encrypted

STATUS_PAGE = Struct(
    "page_code" / Int16ub,
    "page_length" / Int16ub,
    "scope" / Int8ub,  # b7-5 I_T nexus scope, b2-0 key scope
    "encryption_mode" / Int8ub,
    "decryption_mode" / Int8ub,
    "algorithm_index" / Int8ub,
    "key_instance_counter" / Int32ub,
    "control" / Int8ub,  # b6-4 PARAMETERS CONTROL, b3 VCELB, b2-1 CEEMS, b0 RDMD
    "kad_format" / Int8ub,
    "asdk_count" / Int16ub,
    Padding(8),
).compile()
STATUS_SIZE = 24
SCOPE_ALL_NEXUS = 0x42  # all I_T nexus, key shared by all of them
PARAMETERS_NOT_EXCLUSIVE = 0x10  # no external key manager controls the drive

NEXT_BLOCK_PAGE = Struct(
    "page_code" / Int16ub,
    "page_length" / Int16ub,
    "logical_object" / Int64ub,
    "status" / Int8ub,  # b7-4 compression status (0: not reported), b3-0 encryption status
    "algorithm_index" / Int8ub,
    "flags" / Int8ub,  # b1 EMES, b0 RDMDS
    "kad_format" / Int8ub,
).compile()
NEXT_BLOCK_SIZE = 16

SET_DATA_ENCRYPTION_PAGE = Struct(
    "page_code" / Int16ub,
    "page_length" / Int16ub,
    "scope" / Int8ub,  # b7-5 SCOPE, b0 LOCK
    "control" / Int8ub,  # b7-6 CEEM, b5-4 RDMC, b3 SDK, b2 CKOD, b1 CKORP, b0 CKORL
    "encryption_mode" / Int8ub,
    "decryption_mode" / Int8ub,
    "algorithm_index" / Int8ub,
    "key_format" / Int8ub,
    "kad_format" / Int8ub,
    Padding(7),
    "key_length" / Int16ub,
).compile()
SET_DATA_ENCRYPTION_HEADER = 20
KEY_LENGTH_OFFSET = 18

KAD_HEADER = Struct("type" / Int8ub, "authenticated" / Int8ub, "length" / Int16ub).compile()
KAD_HEADER_SIZE = 4


def _page(code: int, body: bytes) -> bytes:
    return code.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def _capabilities() -> bytes:
    return CAPABILITIES_PAGE.build(
        dict(
            page_code=PAGE_CAPABILITIES,
            page_length=CAPABILITIES_SIZE - 4,
            configuration=SPOUT_MAY_CONFIGURE,
            algorithm_index=ALGORITHM_INDEX,
            descriptor_length=0x0014,
            capabilities=CAPABLE_BOTH_WAYS,
            kad_capabilities=0,
            max_ukad=MAX_UKAD,
            max_akad=MAX_AKAD,
            key_size=KEY_SIZE,
            decryption_capabilities=RECORDS_ENCRYPTION_MODE,
            msdk_count=0,
            algorithm=ALGORITHM_AES_256_GCM,
        )
    )


def _status(drive: TapeDrive) -> bytes:
    cipher = drive.cipher
    return (
        STATUS_PAGE.build(
            dict(
                page_code=PAGE_STATUS,
                page_length=STATUS_SIZE - 4 + len(cipher.kad),
                scope=SCOPE_ALL_NEXUS,
                encryption_mode=cipher.encryption_mode,
                decryption_mode=cipher.decryption_mode,
                algorithm_index=cipher.algorithm_index if cipher.has_key else 0,
                key_instance_counter=cipher.key_instance_counter,
                control=PARAMETERS_NOT_EXCLUSIVE,
                kad_format=0,
                asdk_count=0,
            )
        )
        + cipher.kad
    )


def _next_block(drive: TapeDrive) -> bytes:
    cart = drive._loaded()
    encrypted = False
    if drive.position >= cart.count:
        status = NOT_A_BLOCK  # end of data
    else:
        entry = cart.entry(drive.position)
        encrypted = entry.encrypted
        if entry.is_filemark:
            status = NOT_A_BLOCK
        elif not encrypted:
            status = NOT_ENCRYPTED
        elif drive.cipher.has_key and entry.key_id == drive.cipher.key_id:
            status = ENCRYPTED_KEY_AVAILABLE
        else:
            status = ENCRYPTED_KEY_UNAVAILABLE
    return NEXT_BLOCK_PAGE.build(
        dict(
            page_code=PAGE_NEXT_BLOCK,
            page_length=NEXT_BLOCK_SIZE - 4,
            logical_object=drive.position,
            status=status,
            algorithm_index=ALGORITHM_INDEX if encrypted else 0,
            flags=0,
            kad_format=0,
        )
    )


def _parsed_cdb(cdb: bytes):
    fields = SECURITY_PROTOCOL_CDB.parse(cdb[:12])
    if fields.flags & INC_512:
        raise sense.invalid_field_in_cdb(4, bit=7)  # lengths count bytes only
    return fields


def security_protocol_in(drive: TapeDrive, cdb: bytes) -> bytes:
    fields = _parsed_cdb(cdb)
    if fields.protocol == PROTOCOL_INFORMATION:
        if fields.specific == SUPPORTED_PROTOCOLS:
            data = bytes(6) + (2).to_bytes(2, "big") + bytes([PROTOCOL_INFORMATION, PROTOCOL_TAPE_ENCRYPTION])
        elif fields.specific == CERTIFICATE:
            data = bytes(4)  # no certificate
        else:
            raise sense.invalid_field_in_cdb(2)
    elif fields.protocol == PROTOCOL_TAPE_ENCRYPTION:
        pages = {
            PAGE_IN_SUPPORT: lambda: _page(
                PAGE_IN_SUPPORT,
                b"".join(
                    code.to_bytes(2, "big")
                    for code in (
                        PAGE_IN_SUPPORT,
                        PAGE_OUT_SUPPORT,
                        PAGE_CAPABILITIES,
                        PAGE_KEY_FORMATS,
                        PAGE_STATUS,
                        PAGE_NEXT_BLOCK,
                    )
                ),
            ),
            PAGE_OUT_SUPPORT: lambda: _page(PAGE_OUT_SUPPORT, PAGE_SET_DATA_ENCRYPTION.to_bytes(2, "big")),
            PAGE_CAPABILITIES: _capabilities,
            PAGE_KEY_FORMATS: lambda: _page(PAGE_KEY_FORMATS, bytes([KEY_FORMAT_PLAIN])),
            PAGE_STATUS: lambda: _status(drive),
            PAGE_NEXT_BLOCK: lambda: _next_block(drive),
        }
        if fields.specific not in pages:
            raise sense.invalid_field_in_cdb(2)
        data = pages[fields.specific]()
    else:
        raise sense.invalid_field_in_cdb(1)
    return data[: fields.length]


def _key_associated_data(data: bytes, offset: int) -> bytes:
    """The KAD descriptors after the key, checked, with AUTHENTICATED set as SPIN reports them."""
    kad = b""
    while offset < len(data):
        if offset + KAD_HEADER_SIZE > len(data):
            raise sense.invalid_field_in_parameters(offset)
        header = KAD_HEADER.parse(data[offset : offset + KAD_HEADER_SIZE])
        limit = {KAD_UKAD: MAX_UKAD, KAD_AKAD: MAX_AKAD}.get(header.type)
        if limit is None:
            raise sense.invalid_field_in_parameters(offset)
        end = offset + KAD_HEADER_SIZE + header.length
        if header.length > limit or end > len(data):
            raise sense.invalid_field_in_parameters(offset + 2)
        kad += (
            KAD_HEADER.build(dict(type=header.type, authenticated=KAD_NOT_AUTHENTICATED, length=header.length))
            + data[offset + KAD_HEADER_SIZE : end]
        )
        offset = end
    return kad


def security_protocol_out(drive: TapeDrive, cdb: bytes, data_out: memoryview) -> None:
    fields = _parsed_cdb(cdb)
    if fields.protocol != PROTOCOL_TAPE_ENCRYPTION:
        raise sense.invalid_field_in_cdb(1)
    if fields.specific != PAGE_SET_DATA_ENCRYPTION:
        raise sense.invalid_field_in_cdb(2)
    length = fields.length
    if len(data_out) < length:
        raise sense.parameter_list_length_error()
    data = bytes(data_out[:length])
    if length < SET_DATA_ENCRYPTION_HEADER:
        raise sense.invalid_field_in_parameters(2)  # too short for the page it must hold
    page = SET_DATA_ENCRYPTION_PAGE.parse(data)
    if page.page_code != PAGE_SET_DATA_ENCRYPTION:
        raise sense.invalid_field_in_parameters(0)
    if page.page_length + 4 != length:
        raise sense.invalid_field_in_parameters(2)
    modes = (page.encryption_mode, page.decryption_mode)
    if modes not in SUPPORTED_MODES:
        raise sense.invalid_field_in_parameters(6 if page.encryption_mode not in (0, 2) else 7)
    if page.key_format != KEY_FORMAT_PLAIN:
        raise sense.invalid_field_in_parameters(9)
    key_end = SET_DATA_ENCRYPTION_HEADER + page.key_length
    if key_end > length:
        raise sense.invalid_field_in_parameters(KEY_LENGTH_OFFSET)
    if modes == (block_cipher.ENCRYPT_DISABLE, block_cipher.DECRYPT_DISABLE):
        # stenc turns encryption off with a 32-byte zero key; any key is meaningless here.
        drive.cipher.set(*modes, None)
        return
    if page.algorithm_index != ALGORITHM_INDEX:
        raise sense.invalid_field_in_parameters(8)
    if page.key_length != KEY_SIZE:
        raise sense.invalid_field_in_parameters(KEY_LENGTH_OFFSET)
    kad = _key_associated_data(data, key_end)
    drive.cipher.set(*modes, data[SET_DATA_ENCRYPTION_HEADER:key_end], kad)
