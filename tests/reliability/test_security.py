"""R6 security: vtape's device sockets answer only their owner (and root), even when the socket file
is left open to everybody; the peer's uid is checked with SO_PEERCRED, not trusted from the mode."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys

import pytest

from vtape import frame

#: Connects to a device socket and sends TEST UNIT READY; prints "reply" or "closed".
CLIENT = """
import socket, struct, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(10)
sock.connect(sys.argv[1])
try:
    sock.sendall(bytes.fromhex(sys.argv[2]))
    print("reply" if sock.recv(64) else "closed")
except (BrokenPipeError, ConnectionResetError):
    print("closed")
"""


def run_client(path, *as_user: str) -> str:
    header = frame.encode_request_header(bytes(6), 0, 0).hex()
    result = subprocess.run([*as_user, sys.executable, "-I", "-c", CLIENT, str(path), header],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_a_device_socket_open_to_everybody_still_refuses_another_uid(vtape_library):
    nobody = pwd.getpwnam("nobody")
    drive = vtape_library.path / "drive0"
    # What a careless administrator (or a permissive filesystem) could do: open the way in.
    for directory in (vtape_library.root, vtape_library.path):
        os.chmod(directory, 0o755)
    os.chmod(drive, 0o666)
    as_nobody = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    assert run_client(drive, *as_nobody) == "closed"
    assert f"refused a connection from uid {nobody.pw_uid}" in vtape_library.log()
    assert run_client(drive) == "reply"
