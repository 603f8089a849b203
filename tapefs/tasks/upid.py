"""Unique process ids (UPIDs) in PBS's form::

    UPID:NODE:PID:PSTART:TASK_ID:STARTTIME:WORKER_TYPE:WORKER_ID:AUTH_ID:

PID, PSTART (the process's start time in clock ticks after boot), TASK_ID (a counter within the
process) and STARTTIME (epoch) are upper-case hex of at least 8 digits. WORKER_ID is escaped as
systemd escapes unit names (``/`` becomes ``-``, other characters outside ``[A-Za-z0-9_.]`` become
``\\xNN``) so a UPID never holds a ``:`` of its own and is a safe file name.
"""

import os
import re
import socket
from dataclasses import dataclass

from tapefs.errors import InvalidInput

DEFAULT_AUTH_ID = "root@pam"
_UPID = re.compile(
    r"UPID:(?P<node>[A-Za-z0-9._-]+):(?P<pid>[0-9A-F]{8}):(?P<pstart>[0-9A-F]{8,9}):(?P<task_id>[0-9A-F]{8,16}):"
    r"(?P<starttime>[0-9A-F]{8}):(?P<worker_type>[^:/\s]+):(?P<worker_id>[^:/\s]*):(?P<auth_id>[^:\s]+):"
)
_PLAIN = re.compile(r"[A-Za-z0-9_.]")


def escape_worker_id(text: str) -> str:
    out = []
    for index, char in enumerate(text):
        if char == "/":
            out.append("-")
        elif _PLAIN.fullmatch(char) and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode())
    return "".join(out)


def unescape_worker_id(text: str) -> str:
    raw = bytearray()
    index = 0
    while index < len(text):
        if text.startswith("\\x", index):
            raw.append(int(text[index + 2 : index + 4], 16))
            index += 4
        else:
            raw.extend(b"/" if text[index] == "-" else text[index].encode())
            index += 1
    return raw.decode(errors="replace")


def process_start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot; None if it
    is gone. A pid and this value name one process even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold blanks
    return int(text[text.rindex(")") + 2 :].split()[19])


@dataclass(frozen=True)
class Upid:
    node: str
    pid: int
    pstart: int
    task_id: int
    starttime: int
    worker_type: str
    worker_id: str  # unescaped
    auth_id: str = DEFAULT_AUTH_ID

    @classmethod
    def new(cls, worker_type: str, worker_id: str, task_id: int, starttime: int, auth_id: str = DEFAULT_AUTH_ID):
        pid = os.getpid()
        node = socket.gethostname().split(".")[0] or "localhost"
        return cls(node, pid, process_start_ticks(pid) or 0, task_id, starttime, worker_type, worker_id, auth_id)

    @classmethod
    def parse(cls, text: str) -> "Upid":
        match = _UPID.fullmatch(text.strip())
        if match is None:
            raise InvalidInput(f"invalid UPID {text!r} (expected UPID:NODE:PID:PSTART:TASKID:START:TYPE:ID:USER:)")
        return cls(
            match["node"],
            int(match["pid"], 16),
            int(match["pstart"], 16),
            int(match["task_id"], 16),
            int(match["starttime"], 16),
            match["worker_type"],
            unescape_worker_id(match["worker_id"]),
            match["auth_id"],
        )

    def __str__(self) -> str:
        return (
            f"UPID:{self.node}:{self.pid:08X}:{self.pstart:08X}:{self.task_id:08X}:{self.starttime:08X}:"
            f"{self.worker_type}:{escape_worker_id(self.worker_id)}:{self.auth_id}:"
        )

    def is_alive(self) -> bool:
        """Whether the process that runs this task still exists (same pid, same start time)."""
        return process_start_ticks(self.pid) == self.pstart
