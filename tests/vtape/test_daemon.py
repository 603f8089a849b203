"""The daemon: frames, bad input, crashes, concurrency, exclusive serving."""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading

import pytest

from tests.helpers.cdb import REWIND, load, ok, position, read, sense, write, write_filemarks
from vtape import frame
from vtape.client import DeviceClient

pytestmark = pytest.mark.vtape


def raw_connection(path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    return sock


def assert_closed(sock: socket.socket) -> None:
    """The daemon hung up (a reset when it left our unread bytes behind)."""
    try:
        assert sock.recv(1) == b""
    except ConnectionResetError:
        pass


def still_serves(library) -> None:
    with library.client() as drive:
        reply = drive.execute(bytes([0x12, 0, 0, 0, 36, 0]), data_in_len=36)
        assert reply.status == 0 and bytes(reply.data)[8:11] == b"IBM"


def test_bad_magic_gets_an_error_frame_and_a_closed_connection(vtape_library):
    with raw_connection(vtape_library.drives[0]) as sock:
        sock.sendall(b"GARBAGE!" * 8)
        reply = frame.recv_exactly(sock, frame.REPLY_HEADER_SIZE)
        assert frame.decode_reply_header(bytes(reply)).host_status == frame.HOST_ERROR
        assert_closed(sock)
    still_serves(vtape_library)


def test_oversized_transfer_is_refused_before_allocating(vtape_library):
    header = bytearray(frame.encode_request_header(bytes(6), 0, 0))
    header[4:8] = struct.pack("<I", frame.MAX_TRANSFER + 1)
    with raw_connection(vtape_library.drives[0]) as sock:
        sock.sendall(header)
        reply = frame.decode_reply_header(bytes(frame.recv_exactly(sock, frame.REPLY_HEADER_SIZE)))
        assert reply.host_status == frame.HOST_ERROR
    still_serves(vtape_library)


def test_bad_cdb_length_is_refused(vtape_library):
    header = bytearray(frame.encode_request_header(bytes(6), 0, 0))
    header[16] = 3
    with raw_connection(vtape_library.changer) as sock:
        sock.sendall(header)
        reply = frame.decode_reply_header(bytes(frame.recv_exactly(sock, frame.REPLY_HEADER_SIZE)))
        assert reply.host_status == frame.HOST_ERROR


def test_truncated_frame_and_hang_up_do_not_execute_or_wedge(vtape_library):
    drive = load(vtape_library)
    with raw_connection(vtape_library.drives[0]) as sock:
        # A WRITE announcing 1000 bytes that never come: nothing may be written.
        sock.sendall(frame.encode_request_header(write(1000), 1000, 0) + b"x" * 10)
    with raw_connection(vtape_library.drives[0]) as sock:
        sock.sendall(frame.encode_request_header(bytes(6), 0, 0)[:20])
    assert position(drive) == (0, 0)
    assert sense(drive.execute(read(64), data_in_len=64)).code == (8, 0, 5)
    still_serves(vtape_library)


def test_many_clients_on_one_device_are_answered_in_turn(vtape_library):
    drive = load(vtape_library)
    errors = []

    def worker(n):
        try:
            with vtape_library.client() as c:
                for _ in range(20):
                    assert c.execute(bytes(6)).status == 0
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert position(drive) == (0, 0)


def test_two_drives_stream_at_once(vtape_library):
    drives = [load(vtape_library, 0x0400, 0x0100), load(vtape_library, 0x0401, 0x0101)]
    blocks = {0: [os.urandom(65536) for _ in range(40)], 1: [os.urandom(65536) for _ in range(40)]}
    errors = []

    def stream(index):
        try:
            for block in blocks[index]:
                ok(drives[index].execute(write(len(block)), block))
            ok(drives[index].execute(write_filemarks(1)))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=stream, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for index, drive in enumerate(drives):
        ok(drive.execute(REWIND))
        for block in blocks[index]:
            assert bytes(ok(drive.execute(read(65536), data_in_len=65536)).data) == block


def test_kill_9_during_writes_keeps_everything_up_to_the_last_filemark(make_vtape_library):
    library = make_vtape_library()
    drive = load(library)
    synced = [os.urandom(100_000) for _ in range(5)]
    for block in synced:
        ok(drive.execute(write(len(block)), block))
    ok(drive.execute(write_filemarks(1)))
    stop = threading.Event()

    def keep_writing():
        with library.client() as c:
            try:
                while not stop.is_set():
                    c.execute(write(100_000), os.urandom(100_000))
            except (OSError, frame.FrameError):
                pass  # the daemon died under us, as intended

    writer = threading.Thread(target=keep_writing)
    writer.start()
    import time
    time.sleep(0.3)
    library.kill()
    stop.set()
    writer.join()
    library.start()
    with library.client("changer") as changer:
        ok(changer.execute(bytes(6)))
    drive = library.client()
    drive.execute(bytes([0x03, 0, 0, 0, 252, 0]), data_in_len=252)
    ok(drive.execute(REWIND))
    for block in synced:
        assert bytes(ok(drive.execute(read(100_000), data_in_len=100_000)).data) == block
    assert sense(drive.execute(read(100_000), data_in_len=100_000)).filemark
    tail = 0
    while True:  # whatever follows is whole blocks, then end of data
        reply = drive.execute(read(100_000), data_in_len=100_000)
        if reply.status:
            assert sense(reply).code == (8, 0, 5)
            break
        assert len(bytes(reply.data)) == 100_000
        tail += 1
    assert tail > 0
    assert library.control("status")["drives"][0]["barcode"] == "VT0001L8"  # state survived too


def test_second_daemon_on_the_same_library_fails_with_one_line(vtape_library):
    result = subprocess.run([sys.executable, "-m", "vtape", "serve", str(vtape_library.path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "already serving" in result.stderr
    still_serves(vtape_library)


def test_device_sockets_are_private(vtape_library):
    for path in [vtape_library.changer, *vtape_library.drives, vtape_library.path / "control"]:
        assert os.stat(path).st_mode & 0o777 == 0o600


def test_control_socket_rejects_garbage(vtape_library):
    with raw_connection(vtape_library.path / "control") as sock:
        sock.sendall(b"{not json\n[1,2]\n{\"op\": \"fly\"}\n")
        answers = b""
        while answers.count(b"\n") < 3:
            answers += sock.recv(4096)
    lines = answers.decode().splitlines()
    assert all('"ok": false' in line for line in lines)
    assert "unknown control operation" in lines[2]


def test_restart_keeps_library_state(make_vtape_library):
    library = make_vtape_library()
    load(library)
    assert library.stop() == 0
    library.start()
    status = library.control("status")
    assert status["drives"][0]["barcode"] == "VT0001L8" and status["drives"][0]["source_slot"] == 1
    assert status["storage"][0]["barcode"] is None


def test_client_of_a_missing_device_fails_cleanly(tmp_path):
    with pytest.raises(FileNotFoundError):
        DeviceClient(tmp_path / "drive0")
