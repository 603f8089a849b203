"""``python -m vtape.preload``: print the path of the built shim (for LD_PRELOAD=...)."""

import sys

from vtape.preload import PreloadError, shim_path

try:
    print(shim_path())
except PreloadError as e:
    print(f"vtape.preload: {e}", file=sys.stderr)
    sys.exit(1)
