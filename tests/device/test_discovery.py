"""Discovery from a sysfs tree laid out as the kernel lays out /sys/class/scsi_generic, and from
running vtape libraries."""
import pytest

from tapefs.device import discovery


def fake_sg(root, node: str, peripheral_type: int, vendor: str, model: str, serial: str | None):
    device = root / node / "device"
    device.mkdir(parents=True)
    (device / "type").write_text(f"{peripheral_type}\n")
    (device / "vendor").write_text(vendor.ljust(8) + "\n")
    (device / "model").write_text(model.ljust(16) + "\n")
    if serial is not None:
        (device / "vpd_pg80").write_bytes(bytes([peripheral_type, 0x80, 0, len(serial)]) + serial.encode())


def test_scan_scsi_generic_keeps_tapes_and_changers(tmp_path):
    fake_sg(tmp_path, "sg0", 0, "ATA", "SSD", "DISK1")
    fake_sg(tmp_path, "sg10", 8, "IBM", "3573-TL", "LIB0001")
    fake_sg(tmp_path, "sg2", 1, "IBM", "ULT3580-TD8", "1097000123")
    fake_sg(tmp_path, "sg3", 1, "HP", "Ultrium 8-SCSI", None)
    found = discovery.scan_scsi_generic(tmp_path)
    assert [(d.kind, d.path, d.vendor, d.model, d.serial) for d in found] == [
        ("drive", "/dev/sg2", "IBM", "ULT3580-TD8", "1097000123"),
        ("drive", "/dev/sg3", "HP", "Ultrium 8-SCSI", ""),
        ("changer", "/dev/sg10", "IBM", "3573-TL", "LIB0001"),
    ]


def test_missing_sysfs_finds_nothing(tmp_path):
    assert discovery.scan_scsi_generic(tmp_path / "absent") == []


def test_library_dirs_from_arguments_and_environment():
    dirs = discovery.vtape_library_dirs(["/a"], {"VTAPE_LIBRARIES": "/b::/c"})
    assert dirs == ["/a", "/b", "/c"]


@pytest.mark.vtape
def test_scan_vtape_library(vtape_library):
    found = discovery.scan_vtape_library(str(vtape_library.path))
    assert [(d.kind, d.path) for d in found] == [("changer", vtape_library.changer)] + [
        ("drive", path) for path in vtape_library.drives]
    assert all(d.serial for d in found)


def test_stopped_library_is_skipped(tmp_path):
    assert discovery.scan_vtape_library(str(tmp_path)) == []
