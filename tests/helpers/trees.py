"""Comparing directory trees the way a restore must reproduce them."""

import os
import subprocess


def same_tree(a, b):
    """`diff -r` finds no difference, and every entry has the same mode, mtime and link count."""
    result = subprocess.run(["diff", "-r", "--no-dereference", str(a), str(b)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for dirpath, dirnames, filenames in os.walk(a):
        for name in dirnames + filenames:
            left = os.lstat(os.path.join(dirpath, name))
            right = os.lstat(os.path.join(b, os.path.relpath(dirpath, a), name))
            assert (left.st_mode, left.st_mtime_ns, left.st_nlink) == (
                right.st_mode,
                right.st_mtime_ns,
                right.st_nlink,
            ), name
