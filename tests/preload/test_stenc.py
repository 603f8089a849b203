"""stenc 1.0.7 (SECURITY PROTOCOL IN/OUT) through the shim, and encryption at rest on disk.

stenc's default algorithm index is 0; the emulated LTO drive (like HP and IBM LTO drives)
offers AES-256-GCM as algorithm index 1, so turning encryption on needs ``-a 1``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.preload_tools import load_tape, run_tool

pytestmark = pytest.mark.vtape

KEY = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
MARKER = b"TAPEFS-PLAINTEXT-MARKER-7f3a9c "
BLOCK = MARKER * (65536 // len(MARKER))


@pytest.fixture
def keyfile(tmp_path) -> Path:
    path = tmp_path / "tape.key"
    path.write_text(f"{KEY}\nvtape test key\n")   # line 2: the key descriptor (U-KAD)
    path.chmod(0o600)
    return path


def stenc(lib, *args, check=True):
    return run_tool(lib, "stenc", "-f", lib.drives[0], *args, check=check)


def detail(lib) -> dict[str, str]:
    out = stenc(lib, "--detail").stdout
    fields = {}
    for line in out.splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return fields


def write_block(lib, tmp_path: Path, data: bytes = BLOCK) -> None:
    """WRITE(6) one variable block + a filemark with sg_raw, then rewind."""
    src = tmp_path / "block.bin"
    src.write_bytes(data)
    n = len(data)
    run_tool(lib, "sg_raw", "-s", n, "-i", src, lib.drives[0], "0a", "00",
             f"{n >> 16:02x}", f"{(n >> 8) & 0xFF:02x}", f"{n & 0xFF:02x}", "00")
    run_tool(lib, "sg_raw", lib.drives[0], "10", "00", "00", "00", "01", "00")
    run_tool(lib, "sg_raw", lib.drives[0], "01", "00", "00", "00", "00", "00")


def read_block(lib, tmp_path: Path, n: int = len(BLOCK), check=True):
    dst = tmp_path / "read.bin"
    dst.unlink(missing_ok=True)
    proc = run_tool(lib, "sg_raw", "-r", n, "-o", dst, lib.drives[0], "08", "00",
                    f"{n >> 16:02x}", f"{(n >> 8) & 0xFF:02x}", f"{n & 0xFF:02x}", "00", check=check)
    return proc, (dst.read_bytes() if dst.exists() else b"")


def cartridge_files(lib) -> list[Path]:
    return [Path(root) / name for root, _, names in os.walk(lib.path / "cartridges") for name in names]


def plaintext_on_disk(lib) -> bool:
    return any(MARKER in p.read_bytes() for p in cartridge_files(lib))


def test_detail_without_and_with_medium(vtape_library):
    lib = vtape_library
    f = detail(lib)
    assert f["Device Mfg"] == "IBM" and f["Product ID"] == "ULT3580-TD8"
    assert f["Drive Encryption"] == "off" and f["Drive Input"] == "Not encrypting"
    load_tape(lib, slot=1)
    f = detail(lib)
    assert f["Drive Encryption"] == "off" and "Volume Encryption" in f


def test_on_mixed_off(vtape_library, keyfile):
    lib = vtape_library
    load_tape(lib, slot=1)
    out = stenc(lib, "-e", "on", "-k", keyfile, "-a", "1").stdout
    assert "Success" in out
    f = detail(lib)
    assert f["Drive Encryption"] == "on" and f["Drive Input"] == "Encrypting"
    assert f["Drive Output"] == "Decrypting" and f["Drive Key Desc.(uKAD)"] == "vtape test key"
    assert f["Encryption Algorithm"] == "1"
    counter = int(f["Key Instance Counter"])

    stenc(lib, "-e", "mixed", "-k", keyfile, "-a", "1")
    f = detail(lib)
    assert f["Drive Encryption"] == "mixed" and int(f["Key Instance Counter"]) > counter

    stenc(lib, "-e", "off")
    f = detail(lib)
    assert f["Drive Encryption"] == "off" and f["Drive Input"] == "Not encrypting"


def test_wrong_algorithm_index_is_refused(vtape_library, keyfile):
    """stenc's default index 0 is not an algorithm the drive offers: 05/26/00, reported by stenc."""
    lib = vtape_library
    proc = stenc(lib, "-e", "on", "-k", keyfile, check=False)
    assert proc.returncode != 0
    assert "Illegal Request" in proc.stdout + proc.stderr
    assert detail(lib)["Drive Encryption"] == "off"


@pytest.mark.slow
def test_data_written_with_encryption_on_is_encrypted_on_disk(vtape_library, keyfile, tmp_path):
    lib = vtape_library
    load_tape(lib, slot=2)
    stenc(lib, "-e", "on", "-k", keyfile, "-a", "1")
    write_block(lib, tmp_path)
    assert cartridge_files(lib)
    assert not plaintext_on_disk(lib), "encrypted block stored in clear under cartridges/"
    f = detail(lib)                       # positioned at BOT, the next block is encrypted
    assert "encrypted" in f.get("Volume Encryption", "").lower(), f
    proc, data = read_block(lib, tmp_path)
    assert data == BLOCK                  # same key loaded: decrypts

    stenc(lib, "-e", "off")               # no key: the encrypted block cannot be read (7/74/xx)
    run_tool(lib, "sg_raw", lib.drives[0], "01", "00", "00", "00", "00", "00")
    proc, data = read_block(lib, tmp_path, check=False)
    assert proc.returncode != 0 and MARKER not in data
    assert "Data Protect" in proc.stderr and "Unable to decrypt data" in proc.stderr


@pytest.mark.slow
def test_plaintext_is_found_without_encryption(vtape_library, tmp_path):
    """The on-disk check above is not vacuous: an unencrypted block is found."""
    lib = vtape_library
    load_tape(lib, slot=3)
    write_block(lib, tmp_path)
    assert plaintext_on_disk(lib)


@pytest.mark.slow
def test_mixed_mode_reads_clear_and_encrypted_blocks(vtape_library, keyfile, tmp_path):
    lib = vtape_library
    load_tape(lib, slot=4)
    clear = BLOCK[::-1]
    write_block(lib, tmp_path, clear)                       # file 0: a block in clear
    stenc(lib, "-e", "mixed", "-k", keyfile, "-a", "1")     # encrypt writes, read both kinds
    run_tool(lib, "sg_raw", lib.drives[0], "11", "03", "00", "00", "00", "00")   # SPACE to end of data
    write_block(lib, tmp_path, BLOCK)                       # file 1: encrypted
    _, data = read_block(lib, tmp_path)
    assert data == clear
    run_tool(lib, "sg_raw", lib.drives[0], "11", "01", "00", "00", "01", "00")   # SPACE 1 filemark
    _, data = read_block(lib, tmp_path)
    assert data == BLOCK
    assert not any(MARKER in p.read_bytes() for p in cartridge_files(lib))
