"""tapefs's mount and LTFS's file backend, measured the same way on the same machine (issue 21).

    .venv/bin/python bench/ltfs_compare.py [--image-size 4GiB] [--entries 1000000] [--dir /var/tmp]
                                           [--ltfs-prefix /opt/ltfs] [--only tapefs|ltfs]

Needs LTFS 2.4.x (https://github.com/LinearTapeFileSystem/ltfs): `ltfs` and `mkltfs` on PATH or
in PREFIX/bin (default /opt/ltfs/bin). Without them it says so in one line and exits 2. Run it
as root: both mounts are FUSE mounts and "cold" drops the page cache.

Figures, side by side: (1) a cold `cp IMAGE /dev/null` of an image of random data, in MB/s;
(2) over a tree of ENTRIES small files: mount time, `find`, `ls -lR` and the server's resident
memory after them. The load average (1 minute) is printed beside every figure: on a shared
machine it says what else wanted the CPU.

tapefs: as bench/fuse_read.py does it (its `build`: vtape library, datastore, tape backup), then
`tapefs mount` with every drive empty and an empty chunk cache; page cache dropped after the mount.

LTFS: a volume of the file backend (`mkltfs --device=DIR --backend=file`, an emulated cartridge
in a directory), mounted with `ltfs -o devname=DIR -o tape_backend=file`, written with the same
image (copied out of the tapefs mount, so the same bytes; random data of the same size with
`--only ltfs`) and the same tree (bench/file_catalog.py's names, sizes and contents, written
through the mount; LTFS has no hard links, so those are copies), unmounted, mounted again (the
timed mount: it reads the index back from the "tape") and measured with its own cache empty and
the page cache dropped. The emulated cartridge is made large enough (`capacity_mb` in its
filedebug_tc_conf.xml); the file backend adds no emulated tape delays.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from file_catalog import _encode_tree  # noqa: E402
from fuse_read import PIECE, build, drop_page_cache, resident_mb, status, tapefs, timed  # noqa: E402

from vtape import daemon  # noqa: E402
from vtape.media import parse_size  # noqa: E402

FILES_PER_DIRECTORY = 1000  # make_big_snapshot's default
EXIT_NO_LTFS = 2


def load() -> float:
    return os.getloadavg()[0]


class Figure:
    """A measured value and the 1-minute load average taken just before it was measured."""

    def __init__(self, text: str, load_before: float):
        self.text, self.load = text, load_before

    def __str__(self) -> str:
        return f"{self.text} (load {self.load:.1f})"


def find_ltfs(prefix: str) -> tuple[str, str] | None:
    found = []
    for name in ("ltfs", "mkltfs"):
        path = shutil.which(name) or shutil.which(name, path=str(Path(prefix) / "bin"))
        if path is None:
            return None
        found.append(path)
    return found[0], found[1]


class TreeWriter:
    """Stands in for the pxar Encoder of bench/file_catalog.py's `_encode_tree`, so the tree written
    into LTFS has exactly the names, sizes and contents of the tapefs snapshot's."""

    def __init__(self, root: Path):
        self.stack = [root]
        self.copied_hardlinks = 0
        self.directories = 0

    def begin_directory(self, name: str, metadata) -> None:
        self.directories += 1
        if self.directories % 100 == 0:
            print(f"LTFS: {self.directories} directories written (load {load():.1f})", flush=True)
        path = self.stack[-1] / name
        path.mkdir()
        self.stack.append(path)

    def end_directory(self) -> None:
        self.stack.pop()

    def add_file(self, name: str, metadata, size: int, content: bytes) -> Path:
        path = self.stack[-1] / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, content)
        finally:
            os.close(fd)
        return path

    def add_symlink(self, name: str, metadata, target: str) -> None:
        os.symlink(target, self.stack[-1] / name)

    def add_hardlink(self, name: str, target_path: str, target: Path) -> None:
        try:
            os.link(target, self.stack[-1] / name)
        except OSError:  # LTFS: EPERM, no hard links in its format
            shutil.copyfile(target, self.stack[-1] / name)
            self.copied_hardlinks += 1


class Ltfs:
    def __init__(self, binary: str, mkltfs: str, root: Path):
        self.binary, self.mkltfs, self.root = binary, mkltfs, root
        self.device, self.mountpoint, self.work = root / "tape", root / "mnt", root / "work"
        for path in (self.device, self.mountpoint, self.work):
            path.mkdir(parents=True)
        self.process: subprocess.Popen | None = None

    def version(self) -> str:
        proc = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        first = (proc.stdout + proc.stderr).splitlines()
        return first[0].removeprefix("LTFS version ").strip(".") if first else "?"

    def format(self, capacity: int) -> None:
        # The file backend emulates an LTO-5 cartridge of 3 GB unless its configuration says otherwise.
        (self.device / "filedebug_tc_conf.xml").write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n<filedebug_cartridge_config>\n'
            f"    <capacity_mb>{capacity // 10**6 + 1}</capacity_mb>\n</filedebug_cartridge_config>\n"
        )
        self._run([self.mkltfs, f"--device={self.device}", "--backend=file", "--force", "--quiet"])

    def mount(self, *options: str) -> float:
        """Starts `ltfs` in the foreground (so its pid is known) and waits until the mount answers;
        the seconds that took (LTFS reads the index before it mounts)."""
        log = open(self.root / "ltfs.log", "a")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [
                self.binary,
                "-f",
                "-o",
                f"devname={self.device}",
                "-o",
                "tape_backend=file",
                "-o",
                f"work_directory={self.work}",
                *options,
                str(self.mountpoint),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        while not os.path.ismount(self.mountpoint):
            if self.process.poll() is not None:
                raise SystemExit(f"ltfs exited with {self.process.returncode}: see {self.root / 'ltfs.log'}")
            time.sleep(0.005)
        os.stat(self.mountpoint)
        return time.perf_counter() - started

    def unmount(self) -> None:
        """Unmounts and waits for `ltfs` to finish: it writes the index after fusermount returns."""
        if os.path.ismount(self.mountpoint):
            subprocess.run(["fusermount", "-u", str(self.mountpoint)], check=True)
        if self.process is not None:
            if self.process.wait() != 0:
                raise SystemExit(f"ltfs exited with {self.process.returncode}: see {self.root / 'ltfs.log'}")
            self.process = None

    def _run(self, command: list[str]) -> None:
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(command)}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")


def measure(
    mountpoint_image: Path, tree: Path, image_size: int, mount_seconds: float, load_at_mount: float, pid: int
) -> dict[str, Figure]:
    """The figures of one mounted system, measured the same way for both."""
    figures = {"mount": Figure(f"{mount_seconds:.2f} s", load_at_mount)}
    dropped = drop_page_cache()
    if not dropped:
        print("page cache not dropped (not root): the cp figures are not cold")
    before = load()
    seconds = timed(["cp", str(mountpoint_image), "/dev/null"])
    figures["cp"] = Figure(f"{image_size / seconds / 1e6:.0f} MB/s", before)
    before = load()
    figures["find"] = Figure(f"{timed(['find', str(tree)]):.1f} s", before)
    before = load()
    figures["ls"] = Figure(f"{timed(['ls', '-lR', str(tree)]):.1f} s", before)
    rss, peak = resident_mb(pid)
    figures["rss"] = Figure(f"{rss:.0f} MB (peak {peak:.0f})", load())
    return figures


def run_tapefs(root: Path, image_size: int, entries: int) -> tuple[dict[str, Figure], Path, object]:
    """bench/fuse_read.py's setup and its way of measuring; returns the figures, the image's path
    in the mount (kept mounted for LTFS to copy from) and what to call to unmount."""
    env = {**os.environ, "TAPEFS_CONFIG_DIR": str(root / "config"), "TAPEFS_STATE_DIR": str(root / "state")}
    mountpoint = root / "mnt"
    mountpoint.mkdir(parents=True)
    image_snapshot, _files, many_snapshot = build(root, env, image_size, entries)
    before = load()
    started = time.perf_counter()
    tapefs(env, "mount", str(mountpoint), "--cache-dir", str(root / "cache"), "--cache-size", "16GiB")
    mount_seconds = time.perf_counter() - started
    pid = status(mountpoint)["pid"]
    snapshots = mountpoint / "snapshots" / "store"
    image = snapshots / image_snapshot / "disk.img"
    figures = measure(image, snapshots / many_snapshot / "root.pxar", image_size, mount_seconds, before, pid)
    tapes = status(mountpoint)["tapes"]
    print(f"tapefs: {tapes['bytes-from-tape'] / 1e9:.2f} GB read from tape", flush=True)

    done = False

    def unmount() -> None:  # called once the LTFS volume is written, and again (a no-op then) at the end
        nonlocal done
        if done:
            return
        done = True
        if os.path.ismount(mountpoint):
            tapefs(env, "umount", str(mountpoint))
        if (root / "lib" / "control").exists():
            daemon.stop(root / "lib")

    return figures, image, unmount


def run_ltfs(
    ltfs: Ltfs, image_source: Path | None, image_size: int, entries: int, before_measuring
) -> dict[str, Figure]:
    """Writes the volume (the image copied from IMAGE_SOURCE if given), calls BEFORE_MEASURING
    (tapefs lets go of its mount and library there), mounts it again and measures."""
    # Room for the image, and a 512 KiB record per small file (the file backend stores each record
    # as a file of its real size, so this is only the emulated cartridge's accounting).
    ltfs.format(image_size * 2 + entries * 600_000 + 10**9)
    ltfs.mount("-o", "sync_type=unmount")
    started = time.perf_counter()
    image = ltfs.mountpoint / "disk.img"
    if image_source is not None:
        subprocess.run(["cp", str(image_source), str(image)], check=True)
    else:
        with open(image, "wb") as file:
            for _ in range(max(1, image_size // PIECE)):
                file.write(os.urandom(PIECE))
    tree = ltfs.mountpoint / "root"
    tree.mkdir()
    writer = TreeWriter(tree)
    _encode_tree(writer, entries, FILES_PER_DIRECTORY, int(time.time()))
    written = time.perf_counter() - started
    ltfs.unmount()
    print(
        f"LTFS: wrote the image and {entries} entries in {written:.0f} s (index written at unmount: "
        f"{time.perf_counter() - started - written:.0f} s; {writer.copied_hardlinks} hard links as copies)",
        flush=True,
    )
    before_measuring()
    before = load()
    mount_seconds = ltfs.mount()
    assert ltfs.process is not None
    figures = measure(image, tree, image_size, mount_seconds, before, ltfs.process.pid)
    ltfs.unmount()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", default="4GiB")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--dir", default=None, help="work directory parent (default: the system temp dir)")
    parser.add_argument("--ltfs-prefix", default="/opt/ltfs", help="where LTFS is installed if not on PATH")
    parser.add_argument("--only", choices=("tapefs", "ltfs"), help="measure one system only")
    args = parser.parse_args()
    image_size = parse_size(args.image_size)
    binaries = find_ltfs(args.ltfs_prefix)
    if binaries is None and args.only != "tapefs":
        print(
            f"ltfs_compare: LTFS is not installed (no ltfs and mkltfs on PATH or in {args.ltfs_prefix}/bin; "
            "see https://github.com/LinearTapeFileSystem/ltfs)",
            file=sys.stderr,
        )
        sys.exit(EXIT_NO_LTFS)

    root = Path(tempfile.mkdtemp(prefix="tapefs-ltfs-bench.", dir=args.dir))
    print(
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; image {args.image_size}, {args.entries} entries",
        flush=True,
    )
    results: dict[str, dict[str, Figure]] = {}
    unmount_tapefs = None
    ltfs = None
    try:
        image_source = None
        if args.only != "ltfs":
            results["tapefs"], image_source, unmount_tapefs = run_tapefs(root / "tapefs", image_size, args.entries)
            report(results, image_size, args.entries)  # now, in case the LTFS side fails
        if binaries is not None and args.only != "tapefs":
            ltfs = Ltfs(*binaries, root / "ltfs")
            try:
                results[f"LTFS {ltfs.version()} (file backend)"] = run_ltfs(
                    ltfs, image_source, image_size, args.entries, unmount_tapefs or (lambda: None)
                )
            except BaseException:
                log = (ltfs.root / "ltfs.log").read_text(errors="replace").splitlines()
                print("ltfs.log, last lines:", *log[-30:], sep="\n", file=sys.stderr)
                raise
    finally:
        if ltfs is not None and ltfs.process is not None:
            ltfs.unmount()
        if unmount_tapefs is not None:
            unmount_tapefs()
        shutil.rmtree(root, ignore_errors=True)
    report(results, image_size, args.entries)


def report(results: dict[str, dict[str, Figure]], image_size: int, entries: int) -> None:
    rows = [
        ("cp", f"cold cp of a {image_size / 2**30:g} GiB image"),
        ("mount", f"mount, {entries} entries"),
        ("find", f"find, {entries} entries"),
        ("ls", f"ls -lR, {entries} entries"),
        ("rss", "server RSS after them"),
    ]
    names = list(results)
    table = [["", *names], *([label, *(str(results[name][key]) for name in names)] for key, label in rows)]
    widths = [max(len(line[column]) for line in table) for column in range(len(table[0]))]
    print()
    for line in table:
        print("  ".join(f"{cell:{width}}" for cell, width in zip(line, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
