"""The jobs and the catalog are library code: no click, rich or command-line imports, and
nothing below the jobs layer imports them."""
import ast
from pathlib import Path

import tapefs

FORBIDDEN_IN_JOBS = ("click", "rich", "trio", "pyfuse3", "tools", "vtape", "tapefs.fuse", "tapefs.cli")
LOWER_PACKAGES = ("device", "tapeformat", "datastore", "media", "pxar", "scsi", "config", "catalog")


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_jobs_and_catalog_import_no_user_interface():
    root = Path(tapefs.__file__).parent
    sources = sorted([*root.joinpath("jobs").glob("*.py"), *root.joinpath("catalog").glob("*.py")])
    assert len(sources) > 8
    for source in sources:
        for module in imported_modules(source):
            assert not any(is_under(module, bad) for bad in FORBIDDEN_IN_JOBS), (source.name, module)


def test_nothing_below_imports_the_jobs():
    root = Path(tapefs.__file__).parent
    for package in LOWER_PACKAGES:
        for source in root.joinpath(package).rglob("*.py"):
            assert not any(is_under(module, "tapefs.jobs") for module in imported_modules(source)), source
