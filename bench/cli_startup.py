"""Command start-up: median wall seconds of common commands that do little work, so scripts,
cron jobs and the test suite, which call tapefs many times, stay quick.

.venv/bin/python bench/cli_startup.py [--runs 7]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [
    ["tapefs", "--version"],
    ["tapefs", "datastore", "list"],
    ["tapefs", "drive", "list"],
    ["tapefs", "media", "list"],
    ["tapefs", "key", "list"],
    ["tapefs", "job", "list"],
    ["pmt", "--help"],
    ["pmtx", "--help"],
    ["vtape", "--help"],
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "TAPEFS_CONFIG_DIR": f"{scratch}/config", "TAPEFS_STATE_DIR": f"{scratch}/state"}
        for argv in COMMANDS:
            seconds = []
            for _ in range(args.runs):
                started = time.perf_counter()
                subprocess.run([str(bin_dir / argv[0]), *argv[1:]], env=env, capture_output=True, check=False)
                seconds.append(time.perf_counter() - started)
            print(f"{' '.join(argv):24} {statistics.median(seconds):.2f} s")


if __name__ == "__main__":
    main()
