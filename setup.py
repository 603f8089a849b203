"""C extensions; everything else about the package lives in pyproject.toml."""

import os
import shlex
import shutil
import sys
import sysconfig

from setuptools import Extension, setup

# Every C part needs a compiler: say so plainly instead of a setuptools traceback.
_cc = (shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "gcc") or ["gcc"])[0]
if not shutil.which(_cc):
    sys.exit(f"tapefs: no C compiler found ({_cc!r}); it is needed for the chunker and the "
             "vtape LD_PRELOAD shim. Install it (Debian: apt-get install gcc) and reinstall.")

ext_modules = [
    Extension(
        "tapefs.datastore._chunker",
        sources=["tapefs/datastore/_chunker.c"],
        extra_compile_args=["-O3"],
    ),
    # vtape's LD_PRELOAD shim: plain C loaded by the dynamic linker, never imported; it uses
    # no Python API and does not link libpython (vtape.preload finds it by this name).
    Extension(
        "vtape.preload.libvtape_preload",
        sources=["vtape/preload/shim.c"],
        extra_compile_args=["-O2", "-fvisibility=hidden", "-U_FORTIFY_SOURCE"],
        libraries=["dl"],
    ),
]

setup(ext_modules=ext_modules)
