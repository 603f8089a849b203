"""`tapefs mount --foreground` servers as subprocesses, each unmounted and checked at the end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.commands import command_path, tapefs

MOUNT_TIMEOUT = 30.0


def require_fuse() -> None:
    """Skip where FUSE cannot run, except in CI: there a machine without FUSE must fail."""
    problem = None
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as error:
        problem = f"/dev/fuse: {error.strerror}"
    if problem is None and shutil.which("fusermount3") is None:
        problem = "fusermount3 is not installed"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"FUSE is required in CI: {problem}")
        pytest.skip(problem)


class MountedTree:
    """A `tapefs mount --foreground` server in a subprocess; its log goes to a file."""

    def __init__(self, env: dict[str, str], mountpoint: Path, *options: str):
        self.env = env
        self.path = mountpoint
        self.path.mkdir(parents=True, exist_ok=True)
        self.log_path = mountpoint.parent / f"{mountpoint.name}.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [command_path("tapefs"), "mount", str(mountpoint), "--foreground", *options],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(mountpoint):
            if self.process.poll() is not None:
                pytest.fail(f"tapefs mount exited {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"tapefs mount did not mount within {MOUNT_TIMEOUT} s:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status(self) -> dict:
        return json.loads((self.path / ".status").read_text())

    def unmount(self) -> int:
        """`tapefs umount`; the server's exit code."""
        tapefs("umount", self.path, env=self.env, timeout=120)
        return self.process.wait(timeout=30)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            subprocess.run(["fusermount3", "-u", "-z", str(self.path)], capture_output=True)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def mounts_of(env: dict[str, str], directory: Path):
    """make(*options, name=) → a MountedTree under `directory`; all unmounted and checked at exit."""
    require_fuse()
    mounts: list[MountedTree] = []

    def make(*options: str, name: str = "mnt") -> MountedTree:
        mounted = MountedTree(env, directory / name, "--cache-dir", str(directory / f"{name}-cache"), *options)
        mounts.append(mounted)
        return mounted

    try:
        yield make
    finally:
        for mounted in mounts:
            try:
                if os.path.ismount(mounted.path):
                    assert mounted.unmount() == 0, mounted.log()
                assert "Traceback" not in mounted.log(), mounted.log()
            finally:
                mounted.cleanup()
