"""Crash-safe replacement of small state files: temp file, fsync, rename, fsync dir."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_json(path: Path, value) -> None:
    write_atomically(path, (json.dumps(value, indent=1, sort_keys=True) + "\n").encode())


def read_json(path: Path):
    with open(path, "rb") as f:
        return json.loads(f.read())
