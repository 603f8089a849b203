"""C extensions; everything else about the package lives in pyproject.toml."""

from setuptools import Extension, setup

ext_modules = [
    Extension(
        "tapefs.datastore._chunker",
        sources=["tapefs/datastore/_chunker.c"],
        extra_compile_args=["-O3"],
    ),
]

setup(ext_modules=ext_modules)
