"""The datastore and config layers stay below pxar and the CLI: only the backup and restore job
modules may import tapefs.pxar, and nothing in tapefs imports click or rich."""

import ast
from pathlib import Path

import tapefs

PACKAGE_ROOT = Path(tapefs.__file__).parent
JOB_MODULES = {"backup.py", "restore.py"}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_datastore_and_config_do_not_import_pxar_or_cli_libraries():
    checked = 0
    for package in ("datastore", "config"):
        for path in sorted((PACKAGE_ROOT / package).glob("*.py")):
            imports = imported_modules(path)
            assert not any(name.split(".")[0] in ("click", "rich") for name in imports), path
            if path.name not in JOB_MODULES or package == "config":
                assert not any(name.startswith("tapefs.pxar") for name in imports), path
            checked += 1
    assert checked >= 20
