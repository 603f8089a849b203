#!/usr/bin/env bash
# The tour: a virtual tape library, a datastore with a snapshot of a real directory, labelled
# tapes, a tape backup, then the archive mounted and browsed with every drive empty, and a file
# copied back out of it (the library loads the tape it needs) and compared with the original.
# No hardware and no configuration: everything lives in a fresh directory under /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

WORK=$(mktemp -d /tmp/tapefs-tour.XXXXXX)
export TAPEFS_CONFIG_DIR="$WORK/config" TAPEFS_STATE_DIR="$WORK/state"
SOURCE="$PWD/docs"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
finish() {
    if mountpoint -q "$WORK/mnt" 2>/dev/null; then tapefs umount "$WORK/mnt" || fusermount3 -u -z "$WORK/mnt"; fi
    if [ -S "$WORK/lib/control" ]; then vtape stop "$WORK/lib" >/dev/null || true; fi
}
trap finish EXIT

echo "tour directory: $WORK"
step vtape create "$WORK/lib"
step vtape start "$WORK/lib"
step tapefs changer create lib --path "$WORK/lib/changer"
step tapefs drive create drive0 --path "$WORK/lib/drive0" --changer lib --changer-drivenum 0
step tapefs drive create drive1 --path "$WORK/lib/drive1" --changer lib --changer-drivenum 1
step tapefs pool create daily
step tapefs barcode-label --pool daily --drive drive0

step tapefs datastore create store "$WORK/store"
step tapefs datastore backup store host/docs "$SOURCE"
step tapefs backup store daily --drive drive0 --eject-media

mkdir "$WORK/mnt"
step tapefs mount "$WORK/mnt"
SNAPSHOT=$(cd "$WORK/mnt/snapshots/store/host/docs" && ls | tail -n 1)
ARCHIVE="$WORK/mnt/snapshots/store/host/docs/$SNAPSHOT/root.pxar"
step ls -l "$WORK/mnt" "$WORK/mnt/pools/daily"/* "$ARCHIVE"
step find "$WORK/mnt/snapshots" -maxdepth 5
echo "every drive is still empty:"
step tapefs changer status lib

step cp -a "$ARCHIVE/tape-backup.md" "$WORK/tape-backup.md"
step cmp "$SOURCE/tape-backup.md" "$WORK/tape-backup.md"
echo "identical: the copy loaded $(getfattr --only-values -n user.tapefs.tapes "$ARCHIVE/tape-backup.md" 2>/dev/null || echo 'its tape')"
step cat "$WORK/mnt/.status"
step tapefs umount "$WORK/mnt"
echo
echo "tour finished; its files stay in $WORK (vtape library, datastore, config, state)"
