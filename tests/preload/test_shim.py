"""The shim's own mechanics, seen from a process running under it (docs/preload.md).

Each test runs a child Python process with the shim preloaded; the child uses plain
os/fcntl/ctypes calls, i.e. the same libc entry points a C program uses.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.helpers.preload_tools import HERE, load_tape, run_python, run_tool, tool

pytestmark = pytest.mark.vtape


def test_stat_and_fstat_report_an_sg_character_device(vtape_library, shim):
    lib = vtape_library
    out = run_python(f"""
        import os, stat
        paths = [{lib.changer!r}, *{lib.drives!r}]
        res = {{}}
        for p in paths:
            st = os.stat(p)
            lst = os.lstat(p)
            fd = os.open(p, os.O_RDWR)
            fst = os.fstat(fd)
            dup = os.dup(fd)
            dst = os.fstat(dup)
            os.close(dup)
            os.close(fd)
            res[p] = dict(chr=stat.S_ISCHR(st.st_mode), lchr=stat.S_ISCHR(lst.st_mode),
                          fchr=stat.S_ISCHR(fst.st_mode), perm=stat.S_IMODE(fst.st_mode),
                          major=os.major(fst.st_rdev), minor=os.minor(fst.st_rdev),
                          same=st.st_rdev == fst.st_rdev == dst.st_rdev and st.st_ino == fst.st_ino,
                          size=fst.st_size)
        print(json.dumps(res))
    """, lib)
    minors = set()
    for p, r in out.items():
        assert r["chr"] and r["lchr"] and r["fchr"], (p, r)
        assert r["major"] == 21 and r["perm"] == 0o660 and r["size"] == 0 and r["same"], (p, r)
        minors.add(r["minor"])
    assert len(minors) == 3, "each device needs its own minor"


def test_statx_and_fstatat_empty_path(vtape_library, shim):
    lib = vtape_library
    out = run_python(f"""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000
        buf = ctypes.create_string_buffer(256)
        assert libc.statx(AT_FDCWD, {lib.drives[0]!r}.encode(), 0, 0xfff, buf) == 0
        mode = int.from_bytes(buf.raw[0x1c:0x1e], "little")
        rdev_major = int.from_bytes(buf.raw[0x80:0x84], "little")
        fd = os.open({lib.drives[0]!r}, os.O_RDONLY | os.O_NONBLOCK)
        buf2 = ctypes.create_string_buffer(256)
        assert libc.statx(fd, b"", AT_EMPTY_PATH, 0xfff, buf2) == 0
        mode2 = int.from_bytes(buf2.raw[0x1c:0x1e], "little")
        st = os.stat("", dir_fd=fd) if False else os.stat(fd)
        print(json.dumps(dict(mode=mode, major=rdev_major, mode2=mode2)))
    """, lib)
    assert out["mode"] == 0o20660 and out["major"] == 21 and out["mode2"] == 0o20660


def test_sg_ioctls(vtape_library, shim):
    lib = vtape_library
    out = run_python(f"""
        import os, fcntl
        from sgio_helper import *
        fd = os.open({lib.drives[1]!r}, os.O_RDWR)
        res = {{}}
        res["version"] = ioctl_int(fd, SG_GET_VERSION_NUM)[1]
        res["default_timeout"] = fcntl.ioctl(fd, SG_GET_TIMEOUT, 0)
        res["set_timeout"] = ioctl_int(fd, SG_SET_TIMEOUT, 30000)[0]
        res["timeout"] = fcntl.ioctl(fd, SG_GET_TIMEOUT, 0)
        idlun = ctypes.create_string_buffer(8)
        fcntl.ioctl(fd, SCSI_IOCTL_GET_IDLUN, idlun)
        res["idlun"] = int.from_bytes(idlun.raw[:4], "little")
        res["emulated"] = ioctl_int(fd, SG_EMULATED_HOST, 7)[1]
        sid = ctypes.create_string_buffer(32)
        fcntl.ioctl(fd, SG_GET_SCSI_ID, sid)
        res["scsi_type"] = int.from_bytes(sid.raw[16:20], "little")
        ioctl_int(fd, SG_SET_RESERVED_SIZE, 65536)
        res["reserved"] = ioctl_int(fd, SG_GET_RESERVED_SIZE)[1]
        res["mtiocget"] = errno_of(fcntl.ioctl, fd, MTIOCGET, bytes(48))
        res["mtioctop"] = errno_of(fcntl.ioctl, fd, MTIOCTOP, bytes(8))
        res["tcgets"] = errno_of(fcntl.ioctl, fd, TCGETS, bytes(64))
        res["read"] = errno_of(os.read, fd, 10)
        res["write"] = errno_of(os.write, fd, b"x")
        import select
        p = select.poll(); p.register(fd, select.POLLIN)
        res["poll"] = errno_of(p.poll, 0)
        res["isatty"] = os.isatty(fd)
        os.set_blocking(fd, False)          # FIONBIO/fcntl still work on the fd
        res["blocking"] = os.get_blocking(fd)
        print(json.dumps(res))
    """, lib)
    assert out["version"] == 30536
    assert out["default_timeout"] == 6000 and out["set_timeout"] == 0 and out["timeout"] == 30000
    assert (out["idlun"] >> 8) & 0xFF == 0, "lun must be 0: mtx shifts it into READ ELEMENT STATUS"
    assert out["emulated"] == 0 and out["scsi_type"] == 1 and out["reserved"] == 65536
    assert out["mtiocget"] == out["mtioctop"] == out["tcgets"] == "ENOTTY"
    assert out["read"] == out["write"] == out["poll"] == "EINVAL"
    assert out["isatty"] is False and out["blocking"] is False


def test_sg_io_output_fields(vtape_library, shim):
    """The sg driver's output rules: zeroed outputs, masked_status, sense length, driver_status, resid, info."""
    lib = vtape_library
    out = run_python(f"""
        import os
        from sgio_helper import *
        fd = os.open({lib.drives[0]!r}, os.O_RDONLY | os.O_NONBLOCK)
        res = {{}}
        res["inq"] = sg_io(fd, inquiry_cdb(36), FROM_DEV, 36)
        res["inq_big"] = sg_io(fd, inquiry_cdb(255), FROM_DEV, 512)      # resid = 512 - returned
        res["inq_trunc"] = sg_io(fd, inquiry_cdb(255), FROM_DEV, 20)     # buffer smaller than the data
        res["inq_iov"] = sg_io(fd, inquiry_cdb(36), FROM_DEV, 36, iovecs=[5, 11, 20])
        res["tur"] = sg_io(fd, bytes(6), NONE, 0)                          # empty drive: 02/3A/00
        res["tur_small_sb"] = sg_io(fd, bytes(6), NONE, 0, mx_sb_len=8)
        res["tur_no_sb"] = sg_io(fd, bytes(6), NONE, 0, mx_sb_len=0)
        res["tur_buffer"] = sg_io(fd, bytes(6), FROM_DEV, 16)             # PBS: TUR with a 16-byte buffer
        res["none_with_len"] = sg_io(fd, bytes([0x03, 0, 0, 0, 0, 0]), NONE, 8)
        res["v4"] = errno_of(sg_io, fd, bytes(6), NONE, 0, b"", 32, ord("Q"))
        res["bad_dir"] = errno_of(sg_io, fd, bytes(6), -9, 0)
        print(json.dumps(res))
    """, lib)
    inq = out["inq"]
    assert (inq["status"], inq["masked_status"], inq["msg_status"], inq["sb_len_wr"]) == (0, 0, 0, 0)
    assert (inq["host_status"], inq["driver_status"], inq["resid"], inq["info"]) == (0, 0, 0, 0)
    assert inq["duration"] < 10000 and inq["pack_id"] == 1234 and inq["usr_ptr"] == 0x5678
    data = bytes.fromhex(inq["data"])
    assert data[0] == 0x01 and data[8:16] == b"IBM     "
    big = out["inq_big"]
    assert big["resid"] == 512 - (data[4] + 5) and big["status"] == 0
    assert out["inq_trunc"]["resid"] == 0 and len(out["inq_trunc"]["data"]) == 40
    assert out["inq_iov"]["data"] == inq["data"]
    tur = out["tur"]
    assert (tur["status"], tur["masked_status"], tur["driver_status"], tur["info"]) == (2, 1, 8, 1)
    sense = bytes.fromhex(tur["sense"])
    assert tur["sb_len_wr"] == min(8 + sense[7], 32) and sense[0] & 0x7F == 0x70
    assert (sense[2] & 0x0F, sense[12], sense[13]) == (2, 0x3A, 0)
    assert tur["sense_after"] == "eeeeeeee", "nothing may be written past sb_len_wr"
    assert out["tur_small_sb"]["sb_len_wr"] == 8 and out["tur_small_sb"]["sense"][:2] in ("70", "f0")
    assert out["tur_no_sb"]["sb_len_wr"] == 0 and out["tur_no_sb"]["driver_status"] == 0
    assert out["tur_no_sb"]["masked_status"] == 1 and out["tur_no_sb"]["info"] == 1
    assert out["tur_buffer"]["resid"] == 16
    assert out["none_with_len"]["resid"] == 8, "no data phase: resid = dxfer_len"
    assert out["v4"] == "EINVAL" and out["bad_dir"] == "EINVAL"


def test_fd_identity_survives_dup_exec_and_stdin(vtape_library, shim):
    """PBS hands the device fd to sg-tape-cmd as its stdin: fstat(0) and SG_IO on fd 0 must work."""
    lib = vtape_library
    child = (
        "import os, sys, json, stat; sys.path.insert(0, %r)\n"
        "from sgio_helper import *\n"
        "st = os.fstat(0)\n"
        "r = sg_io(0, inquiry_cdb(36), FROM_DEV, 36)\n"
        "print(json.dumps(dict(chr=stat.S_ISCHR(st.st_mode), major=os.major(st.st_rdev), data=r['data'])))\n"
    ) % str(HERE)
    out = run_python(f"""
        import os, subprocess
        fd = os.open({lib.drives[0]!r}, os.O_RDWR | os.O_CLOEXEC)
        dup = os.dup(fd)          # a dup without O_CLOEXEC is inherited
        proc = subprocess.run([sys.executable, "-c", {child!r}], stdin=dup, capture_output=True, text=True)
        print(proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 else json.dumps(dict(err=proc.stderr)))
    """, lib)
    assert out.get("chr") is True and out["major"] == 21, out
    assert bytes.fromhex(out["data"])[8:16] == b"IBM     "


def test_symlink_to_a_device(vtape_library, shim, tmp_path):
    lib = vtape_library
    link = tmp_path / "sg7"
    link.symlink_to(lib.drives[0])
    proc = run_tool(lib, "sg_inq", link)
    assert "ULT3580-TD8" in proc.stdout
    out = run_python(f"""
        import os, stat
        print(json.dumps(dict(l=stat.S_ISLNK(os.lstat({str(link)!r}).st_mode),
                              s=stat.S_ISCHR(os.stat({str(link)!r}).st_mode))))
    """, lib)
    assert out == {"l": True, "s": True}


def test_relative_path_and_openat(vtape_library, shim):
    lib = vtape_library
    out = run_python(f"""
        import os
        from sgio_helper import *
        os.chdir({str(lib.path)!r})
        fd = os.open("drive0", os.O_RDWR)
        dirfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        fd2 = os.open("changer", os.O_RDWR, dir_fd=dirfd)
        a = sg_io(fd, inquiry_cdb(36), FROM_DEV, 36)
        b = sg_io(fd2, inquiry_cdb(36), FROM_DEV, 36)
        print(json.dumps(dict(a=bytes.fromhex(a["data"])[0], b=bytes.fromhex(b["data"])[0])))
    """, lib)
    assert out == {"a": 1, "b": 8}


def test_unrelated_paths_pass_through(vtape_library, shim, tmp_path):
    lib = vtape_library
    plain = tmp_path / "file.txt"
    plain.write_text("hello\n")
    # A socket named like a device but outside any library, and the library's own control socket.
    lone = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lone_path = tmp_path / "drive0"
    lone.bind(str(lone_path))
    lone.listen(1)
    try:
        out = run_python(f"""
            import os, stat
            from sgio_helper import *
            r = {{}}
            r["file"] = open({str(plain)!r}).read()
            r["null_major"] = os.major(os.stat("/dev/null").st_rdev)
            r["lone_sock"] = stat.S_ISSOCK(os.stat({str(lone_path)!r}).st_mode)
            r["lone_open"] = open_errno({str(lone_path)!r})
            r["control_sock"] = stat.S_ISSOCK(os.stat({str(lib.path / "control")!r}).st_mode)
            r["control_open"] = open_errno({str(lib.path / "control")!r})
            r["missing"] = open_errno({str(lib.path / "drive9")!r})
            fd = os.open({str(plain)!r}, os.O_RDONLY)
            r["file_ioctl"] = errno_of(fcntl.ioctl, fd, SG_GET_VERSION_NUM, bytes(4))
            import socket as s
            a, b = s.socketpair()
            a.sendall(b"ping"); r["pair"] = b.recv(4).decode()
            r["pair_stat"] = stat.S_ISSOCK(os.fstat(a.fileno()).st_mode)
            print(json.dumps(r))
        """, lib)
    finally:
        lone.close()
    assert out["file"] == "hello\n" and out["null_major"] == 1
    assert out["lone_sock"] and out["lone_open"] == "ENXIO"
    assert out["control_sock"] and out["control_open"] == "ENXIO"
    assert out["missing"] == "ENOENT" and out["file_ioctl"] == "ENOTTY"
    assert out["pair"] == "ping" and out["pair_stat"]


def test_plain_protocol_clients_are_not_faked(vtape_library, shim):
    """A program that speaks the vtape protocol itself (vtape.client) under the preload keeps
    a normal socket: only fds the shim opened are fake sg fds."""
    lib = vtape_library
    out = run_python(f"""
        import os, stat
        from vtape.client import DeviceClient
        with DeviceClient({lib.drives[0]!r}) as c:
            r = c.execute(bytes([0x12, 0, 0, 0, 36, 0]), data_in_len=36)
            mode = os.fstat(c.sock.fileno()).st_mode
        print(json.dumps(dict(status=r.status, sock=stat.S_ISSOCK(mode))))
    """, lib)
    assert out == {"status": 0, "sock": True}


def test_no_daemon_fails_fast(make_vtape_library, shim):
    """Killed daemon (stale socket files): ECONNREFUSED; stopped daemon (no files): ENOENT."""
    lib = make_vtape_library()
    lib.kill()
    started = time.monotonic()
    out = run_python(f"""
        from sgio_helper import open_errno
        print(json.dumps(dict(e=open_errno({lib.drives[0]!r}), c=open_errno({lib.changer!r}))))
    """, lib)
    assert out == {"e": "ECONNREFUSED", "c": "ECONNREFUSED"}
    proc = run_tool(lib, "sg_inq", lib.drives[0], check=False, timeout=20)
    assert proc.returncode != 0 and "refused" in (proc.stdout + proc.stderr).lower()
    proc = run_tool(lib, "mtx", "-f", lib.changer, "status", check=False, timeout=20)
    assert proc.returncode != 0
    assert time.monotonic() - started < 15
    for p in [lib.changer, *lib.drives, str(lib.path / "control")]:
        os.unlink(p)
    out = run_python(f"""
        from sgio_helper import open_errno
        print(json.dumps(dict(e=open_errno({lib.drives[0]!r}))))
    """, lib)
    assert out == {"e": "ENOENT"}


def _wait_stopped(pid: int) -> None:
    """SIGSTOP takes effect as each thread next runs: wait until every thread is stopped."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = []
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/stat") as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except FileNotFoundError:
                continue
        if states and all(s in "Tt" for s in states):
            return
        time.sleep(0.01)
    raise AssertionError(f"daemon {pid} did not stop")


def test_daemon_dying_mid_command_gives_eio(make_vtape_library, shim):
    lib = make_vtape_library()
    code = f"""
        import os, time
        from sgio_helper import *
        fd = os.open({lib.drives[0]!r}, os.O_RDWR)
        sg_io(fd, inquiry_cdb(36), FROM_DEV, 36)
        print("ready", flush=True)
        sys.stdin.readline()
        first = errno_of(sg_io, fd, inquiry_cdb(36), FROM_DEV, 36)    # blocks: daemon is stopped
        second = errno_of(sg_io, fd, inquiry_cdb(36), FROM_DEV, 36)
        print(json.dumps(dict(first=first, second=second)))
    """
    import textwrap

    from vtape.preload import preload_env
    env = preload_env(None, lib.path)
    prologue = f"import sys, json\nsys.path.insert(0, {str(HERE)!r})\n"
    child = subprocess.Popen([sys.executable, "-c", prologue + textwrap.dedent(code)], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        lib.process.send_signal(signal.SIGSTOP)
        _wait_stopped(lib.process.pid)
        child.stdin.write("go\n")
        child.stdin.flush()
        time.sleep(0.5)          # the command is now in flight, waiting for a reply
        assert child.poll() is None
        lib.kill()
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
    import json
    assert json.loads(out.strip().splitlines()[-1]) == {"first": "EIO", "second": "EIO"}, err


def test_nonblocking_fd_moves_large_blocks(vtape_library, shim):
    """sg3_utils and PBS keep O_NONBLOCK set: framing must survive EAGAIN and short transfers
    (an 8 MiB WRITE and READ are far larger than the socket buffers)."""
    lib = vtape_library
    load_tape(lib, slot=3)
    out = run_python(f"""
        import os, hashlib
        from sgio_helper import *
        fd = os.open({lib.drives[0]!r}, os.O_RDWR | os.O_NONBLOCK)
        size = 8 * 1024 * 1024
        block = hashlib.sha256(b"x").digest() * (size // 32)
        n = len(block)
        w = sg_io(fd, bytes([0x0A, 0, n >> 16, (n >> 8) & 0xFF, n & 0xFF, 0]), TO_DEV, data_out=block)
        sg_io(fd, bytes([0x10, 0, 0, 0, 1, 0]), NONE)                     # WRITE FILEMARKS 1
        sg_io(fd, bytes([0x01, 0, 0, 0, 0, 0]), NONE)                     # REWIND
        r = sg_io(fd, bytes([0x08, 0, n >> 16, (n >> 8) & 0xFF, n & 0xFF, 0]), FROM_DEV, n)
        print(json.dumps(dict(w=w["status"], wresid=w["resid"], r=r["status"], rresid=r["resid"],
                              same=bytes.fromhex(r["data"]) == block)))
    """, lib, timeout=120)
    assert out == {"w": 0, "wresid": 0, "r": 0, "rresid": 0, "same": True}


def test_threads_share_one_fd(vtape_library, shim):
    """Commands from several threads on one fd must not interleave their frames."""
    lib = vtape_library
    out = run_python(f"""
        import os, threading
        from sgio_helper import *
        fd = os.open({lib.changer!r}, os.O_RDWR)
        bad = []
        def worker():
            for _ in range(50):
                r = sg_io(fd, inquiry_cdb(36), FROM_DEV, 36)
                if r["status"] or bytes.fromhex(r["data"])[0] != 8:
                    bad.append(r)
        ts = [threading.Thread(target=worker) for _ in range(4)]
        [t.start() for t in ts]; [t.join() for t in ts]
        print(json.dumps(dict(bad=len(bad))))
    """, lib)
    assert out == {"bad": 0}


def test_run_with_command(vtape_library, shim):
    lib = vtape_library
    cmd = [sys.executable, "-m", "tapefs_tools.vtape_run_with", str(lib.path), "--", tool("sg_inq"), lib.drives[0]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "ULT3580-TD8" in proc.stdout
    # The exit status of the command is passed through.
    proc = subprocess.run([sys.executable, "-m", "tapefs_tools.vtape_run_with", str(lib.path), "--", "sh", "-c",
                           'echo "$LD_PRELOAD $TAPE $CHANGER"; exit 3'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    preload, tape, changer = proc.stdout.split()
    assert preload == str(shim) and tape == lib.drives[0] and changer == lib.changer


def test_run_with_errors(make_vtape_library, shim, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tapefs_tools.vtape_run_with", str(tmp_path), "--", "true"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "not a vtape library" in proc.stderr
    lib = make_vtape_library()
    lib.stop()
    proc = subprocess.run([sys.executable, "-m", "tapefs_tools.vtape_run_with", str(lib.path), "--", "true"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "no vtape daemon" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "tapefs_tools.vtape_run_with", "--no-daemon-check", str(lib.path),
                           "--", "no-such-command-xyz"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 127 and "command not found" in proc.stderr


def test_shim_needs_no_python(shim):
    """The .so is loaded into C programs: libc (and libdl) only, no libpython."""
    needed = subprocess.run(["ldd", str(shim)], capture_output=True, text=True, timeout=30).stdout
    assert "libpython" not in needed and "libc.so" in needed, needed


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="struct stat offsets below are x86_64's")
def test_old_glibc_stat_entry_points(vtape_library, shim):
    """Binaries built against glibc < 2.33 call __xstat/__lxstat/__fxstat(_STAT_VER, ...)."""
    lib = vtape_library
    out = run_python(f"""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        def mode_rdev(buf):
            return int.from_bytes(buf.raw[24:28], "little"), os.major(int.from_bytes(buf.raw[40:48], "little"))
        r = {{}}
        buf = ctypes.create_string_buffer(144)
        assert libc.__xstat(1, {lib.drives[0]!r}.encode(), buf) == 0
        r["xstat"] = mode_rdev(buf)
        assert libc.__lxstat64(1, {lib.changer!r}.encode(), buf) == 0
        r["lxstat64"] = mode_rdev(buf)
        fd = os.open({lib.drives[1]!r}, os.O_RDWR)
        assert libc.__fxstat64(1, fd, buf) == 0
        r["fxstat64"] = mode_rdev(buf)
        assert libc.fstatat64(fd, b"", buf, 0x1000) == 0       # AT_EMPTY_PATH
        r["fstatat64"] = mode_rdev(buf)
        assert libc.__xstat(1, b"/etc/hostname", buf) == 0
        r["plain"] = mode_rdev(buf)
        print(json.dumps(r))
    """, lib)
    for name in ("xstat", "lxstat64", "fxstat64", "fstatat64"):
        assert out[name] == [0o20660, 21], (name, out)
    assert out["plain"][0] & 0o170000 == 0o100000


def test_daemon_restart_needs_a_reopen(make_vtape_library, shim):
    """A descriptor from before a daemon restart keeps failing with EIO (its connection is gone);
    a new open reaches the new daemon."""
    lib = make_vtape_library()
    code = f"""
        import os
        from sgio_helper import *
        fd = os.open({lib.drives[0]!r}, os.O_RDWR)
        sg_io(fd, inquiry_cdb(36), FROM_DEV, 36)
        print("ready", flush=True)
        sys.stdin.readline()
        old = errno_of(sg_io, fd, inquiry_cdb(36), FROM_DEV, 36)
        fd2 = os.open({lib.drives[0]!r}, os.O_RDWR)
        new = sg_io(fd2, inquiry_cdb(36), FROM_DEV, 36)["status"]
        print(json.dumps(dict(old=old, new=new)))
    """
    import json
    import textwrap

    from vtape.preload import preload_env
    prologue = f"import sys, json\nsys.path.insert(0, {str(HERE)!r})\n"
    child = subprocess.Popen([sys.executable, "-c", prologue + textwrap.dedent(code)], env=preload_env(None, lib.path),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        assert lib.stop() == 0
        lib.start()
        out, err = child.communicate("go\n", timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert json.loads(out.strip().splitlines()[-1]) == {"old": "EIO", "new": 0}, err
