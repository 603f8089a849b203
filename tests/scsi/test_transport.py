"""Opening devices by path, the vtape socket transport and the channel's error mapping."""

import contextlib
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tapefs.scsi import cdb, errors
from tapefs.scsi.channel import Channel
from tapefs.scsi.device_path import open_transport
from tapefs.scsi.timeouts import DEFAULT_TIMEOUT, HOUR, LONG_ERASE_TIMEOUT, timeout_for
from tapefs.scsi.transport import CHECK_CONDITION, GOOD
from tapefs.scsi import vtape_transport
from tapefs.scsi.vtape_transport import VtapeTransport
from vtape import frame


def test_missing_path(tmp_path):
    with pytest.raises(errors.DeviceNotFound, match="no such device"):
        open_transport(tmp_path / "nothing")


def test_regular_file_and_directory_are_not_devices(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(errors.NotAScsiDevice, match="is a regular file"):
        open_transport(tmp_path / "file")
    with pytest.raises(errors.NotAScsiDevice, match="is a directory"):
        open_transport(tmp_path)


def test_socket_without_a_daemon_is_refused(tmp_path):
    path = tmp_path / "drive0"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    with pytest.raises(errors.TransportError, match="refuses connections"):
        open_transport(path)


def test_character_device_goes_to_sg_io():
    with pytest.raises(errors.NotAScsiDevice, match="is not a SCSI generic or tape node"):
        open_transport("/dev/null")


def test_timeouts_are_generous_per_command():
    assert timeout_for(cdb.read_6(10)) == DEFAULT_TIMEOUT >= 600
    assert timeout_for(cdb.format_medium()) >= 2 * HOUR
    assert timeout_for(cdb.erase(long=True)) == LONG_ERASE_TIMEOUT > timeout_for(cdb.erase())
    assert timeout_for(cdb.locate_16(1)) >= HOUR and timeout_for(cdb.load_unload(True)) >= 2 * HOUR


@pytest.mark.vtape
def test_vtape_transport_inquiry(vtape_library):
    with open_transport(vtape_library.drives[0]) as transport:
        assert isinstance(transport, VtapeTransport)
        result = transport.execute(cdb.inquiry(36), data_in_len=36)
    assert result.status == GOOD and len(result.data) == 36 and result.residual == 0
    assert result.data[0] == 0x01 and result.data[8:11] == b"IBM"


@pytest.mark.vtape
def test_execute_returns_check_condition_and_run_raises(vtape_library):
    with Channel.open(vtape_library.drives[0]) as channel:
        result, sense = channel.execute(cdb.rewind())
        assert result.status == CHECK_CONDITION and sense.condition == "medium not present"
        with pytest.raises(errors.MediumNotPresent) as raised:
            channel.run(cdb.rewind())
    assert raised.value.device == vtape_library.drives[0] and raised.value.command == "REWIND"


@pytest.mark.vtape
def test_unsupported_opcode(vtape_library):
    with Channel.open(vtape_library.drives[0]) as channel:
        with pytest.raises(errors.InvalidOpcode, match="opcode 0xff: command not supported"):
            channel.run(bytes([0xFF, 0, 0, 0, 0, 0]))


@pytest.mark.vtape
def test_daemon_gone_mid_session_is_connection_lost(vtape_library):
    records = []
    drive = vtape_library.drives[0]
    with Channel.open(drive, records.append) as channel:
        channel.run(cdb.inquiry(36), data_in_len=36)
        vtape_library.kill()
        with pytest.raises(errors.ConnectionLost, match=f"^{drive}: INQUIRY: connection lost \\(vtape daemon"):
            channel.run(cdb.inquiry(36), data_in_len=36)
        # The next command (a job's clean-up) says the same, not "[Errno 9] Bad file descriptor".
        with pytest.raises(
            errors.ConnectionLost, match="REWIND: connection lost \\(since an earlier command: vtape daemon"
        ):
            channel.run(cdb.rewind())
    assert records[-1].status is None and "FAILED" in records[-1].format()


@contextlib.contextmanager
def one_shot_server(reply: bytes):
    """A device socket whose server reads one request header, sends `reply` and closes."""
    root = Path(tempfile.mkdtemp(prefix="vt", dir="/tmp"))
    path = root / "drive0"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve():
        connection, _ = server.accept()
        with connection:
            frame.recv_exactly(connection, frame.REQUEST_HEADER_SIZE)
            connection.sendall(reply)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield str(path)
    finally:
        thread.join(timeout=10)
        server.close()
        shutil.rmtree(root)


@pytest.mark.parametrize("reply", [b"", b"\x00" * 7], ids=["closed-before-reply", "closed-mid-reply"])
def test_server_closing_the_socket_is_connection_lost_naming_the_device(reply):
    with one_shot_server(reply) as path, VtapeTransport(path) as transport:
        with pytest.raises(errors.ConnectionLost) as raised:
            transport.execute(cdb.test_unit_ready())
        assert raised.value.device == path and raised.value.command == "TEST UNIT READY"
        assert str(raised.value).startswith(
            f"{path}: TEST UNIT READY: connection lost (vtape daemon closed the connection"
        )
        with pytest.raises(errors.ConnectionLost, match="since an earlier command"):
            transport.execute(cdb.test_unit_ready())


@pytest.mark.vtape
def test_recovered_error_counts_as_success(vtape_library):
    vtape_library.control("fault", device="drive0", fail_next=1, sense_code="1/17/01")
    records = []
    with Channel.open(vtape_library.drives[0], records.append) as channel:
        result = channel.run(cdb.read_block_limits(), data_in_len=6)
    assert result.status == CHECK_CONDITION and records[-1].sense.key == 1


def test_a_device_that_never_replies_is_a_command_timeout(monkeypatch):
    monkeypatch.setattr(vtape_transport, "TIMEOUT_SLACK", 0.0)
    root = Path(tempfile.mkdtemp(prefix="vt", dir="/tmp"))
    path = root / "drive0"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    try:
        with VtapeTransport(str(path)) as transport:
            started = time.monotonic()
            with pytest.raises(errors.CommandTimeout, match="TEST UNIT READY: .*no reply within 0.3 s"):
                transport.execute(cdb.test_unit_ready(), timeout=0.3)
            assert 0.25 < time.monotonic() - started < 5
            with pytest.raises(errors.ConnectionLost, match="since an earlier command: no reply within 0.3 s"):
                transport.execute(cdb.test_unit_ready())
    finally:
        server.close()
        shutil.rmtree(root)


def test_a_transport_that_cannot_queue_reads_stops_at_the_first_failure():
    # SG_IO's way (no physical drive here): one READ after the other, none after a filemark, so
    # the tape stands where single READs leave it and a drive does not retry on past bad media.
    from tapefs.scsi.transport import CommandResult, Transport

    class Scripted(Transport):
        path = "scripted"

        def __init__(self, statuses):
            self.statuses = list(statuses)
            self.sent = 0

        def execute(self, cdb, data_out=b"", data_in_len=0, timeout=600.0):
            self.sent += 1
            return CommandResult(self.statuses.pop(0), b"", b"x" * 4, data_in_len - 4)

        def close(self):
            pass

    transport = Scripted([GOOD, GOOD, CHECK_CONDITION, GOOD])
    assert [r.status for r in transport.execute_reads(cdb.read_6(8), 4, 8)] == [GOOD, GOOD, CHECK_CONDITION]
    assert transport.sent == 3
    assert len(Scripted([GOOD] * 3).execute_reads(cdb.read_6(8), 3, 8)) == 3
