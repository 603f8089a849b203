#!/usr/bin/env bash
# Installs everything tapefs and vtape need on a Debian machine (run as root):
# the system packages, then a virtual environment in .venv with the project in it.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    python3 python3-venv python3-dev gcc make pkg-config   # the venv and the C parts
    fuse3 libfuse3-dev psmisc attr                          # the FUSE mount (pyfuse3, fusermount3, fuser, getfattr)
    mtx sg3-utils stenc                                     # SG_IO tools driven through the vtape preload shim
    poppler-utils zbar-tools                                # pdftoppm and zbarimg: reading label sheets back
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test,fuse]'
echo "installed: $(pwd)/.venv (commands in .venv/bin: vtape, pmt, pmtx, tapefs)"
