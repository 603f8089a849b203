"""Run unmodified SG_IO programs (mtx, tapeinfo, sg3_utils, stenc, PBS) against a vtape library.

The C shim ``shim.c`` is built by the package install into this directory as
``libvtape_preload*.so``. With it in ``LD_PRELOAD``, opening ``LIBDIR/changer`` or
``LIBDIR/driveN`` gives a file descriptor that behaves like ``/dev/sgN`` (see docs/preload.md).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from vtape.errors import VtapeError

__all__ = ["PreloadError", "shim_path", "preload_env", "run", "exec_with", "check_library"]

_HERE = Path(__file__).resolve().parent
#: Overrides the search (a shim built by hand, for example).
ENV_SHIM = "VTAPE_PRELOAD_SO"


class PreloadError(VtapeError):
    """The shim is missing or the library cannot be used."""


def shim_path() -> Path:
    """The built shared library; PreloadError with what to do if it was never built."""
    override = os.environ.get(ENV_SHIM)
    if override:
        path = Path(override)
        if not path.is_file():
            raise PreloadError(f"{ENV_SHIM}={override} does not exist")
        return path.resolve()
    # setuptools names it libvtape_preload.<python ABI tag>.so; any tag will do, it has no Python in it.
    found = sorted(_HERE.glob("libvtape_preload*.so"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not found:
        raise PreloadError(
            f"the vtape LD_PRELOAD shim is not built (no libvtape_preload*.so in {_HERE}). It is compiled "
            "from vtape/preload/shim.c by the package install, which needs gcc: install gcc, then "
            "reinstall the package (pip install -e .)."
        )
    return found[0]


def check_library(libdir: str | os.PathLike) -> Path:
    """LIBDIR must be a vtape library directory (it holds library.json)."""
    path = Path(libdir)
    if not (path / "library.json").is_file():
        raise PreloadError(f"{libdir} is not a vtape library (no library.json in it)")
    return path.resolve()


def preload_env(base: Mapping[str, str] | None = None, libdir: str | os.PathLike | None = None) -> dict[str, str]:
    """A copy of base (default os.environ) with the shim first in LD_PRELOAD.

    With libdir, also VTAPE_LIBRARY, CHANGER and TAPE (drive0) so that tools which read those
    variables (pmt, pmtx, mtx's CHANGER/TAPE) find the library without -f.
    """
    env = dict(os.environ if base is None else base)
    shim = str(shim_path())
    rest = [p for p in env.get("LD_PRELOAD", "").replace(":", " ").split() if p != shim]
    env["LD_PRELOAD"] = " ".join([shim, *rest])
    if libdir is not None:
        lib = check_library(libdir)
        env["VTAPE_LIBRARY"] = str(lib)
        env.setdefault("CHANGER", str(lib / "changer"))
        env.setdefault("TAPE", str(lib / "drive0"))
    return env


def run(
    args: Sequence[str | os.PathLike],
    libdir: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    **kwargs,
) -> subprocess.CompletedProcess:
    """subprocess.run(args) with the shim preloaded (same keyword arguments)."""
    return subprocess.run([os.fspath(a) for a in args], env=preload_env(env, libdir), **kwargs)


def exec_with(args: Sequence[str], libdir: str | os.PathLike | None = None) -> None:
    """Replace this process with args, shim preloaded (what ``vtape run-with`` does)."""
    env = preload_env(None, libdir)
    os.execvpe(args[0], list(args), env)
