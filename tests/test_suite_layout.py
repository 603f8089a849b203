"""The test suite's own layout: tests share code only through the tests.helpers package. No test
module imports another test module or a conftest (pytest would collect or load them twice), and
fixtures reach tests through conftest.py files and pytest_plugins, never by import."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, at any depth; for
    `from X import a, b` both X.a and X.b, since either may be a module."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def layout_violations(path: Path, root: Path = ROOT) -> list[str]:
    """One problem per offending import statement."""
    problems: dict[int, str] = {}
    for line, name in imported_modules(path, root):
        parts = name.split(".")
        where = f"{path.relative_to(root)}:{line}: imports {name}"
        if line in problems:
            continue
        if "conftest" in parts:
            problems[line] = f"{where}: a conftest is pytest's to load"
        elif parts[0] == "tests" and len(parts) > 1 and parts[1] != "helpers":
            problems[line] = f"{where}: share it through tests/helpers/ instead"
        elif parts[:2] == ["tests", "helpers"] and len(parts) > 2 and parts[2].startswith("fixtures_") \
                and len(parts) > 3 and not module_name(path, root).startswith("tests.helpers."):
            problems[line] = f"{where}: fixtures come through pytest_plugins, not imports"
    return list(problems.values())


def test_no_test_module_imports_another_test_module_or_a_conftest():
    files = sorted(TESTS.rglob("*.py"))
    assert len(files) > 100 and TESTS / "helpers" / "commands.py" in files
    problems = [problem for path in files for problem in layout_violations(path)]
    assert problems == []


@pytest.mark.parametrize("source, problem", [
    ("from tests.jobs.conftest import add_cartridges", "a conftest is pytest's to load"),
    ("from .conftest import FIXTURES", "a conftest is pytest's to load"),
    ("import tests.tools.test_pmt", "share it through tests/helpers/"),
    ("from tests.tools import test_pmt", "share it through tests/helpers/"),
    ("def later():\n    from tests.jobs.test_encryption import create_key", "share it through tests/helpers/"),
    ("from .fixtures import GENERATED", "share it through tests/helpers/"),
    ("from tests.helpers.fixtures_tape import tape_setup", "fixtures come through pytest_plugins"),
])
def test_the_layout_check_catches(tmp_path, source, problem):
    module = tmp_path / "tests" / "pxar" / "test_example.py"
    module.parent.mkdir(parents=True)
    module.write_text(source + "\n")
    found = layout_violations(module, tmp_path)
    assert len(found) == 1 and problem in found[0], found


@pytest.mark.parametrize("source", [
    "from tests.helpers.commands import tapefs",
    "from tests.helpers import cdb",
    "import tests.helpers.cdb",
    "from tapefs.jobs.backup import backup_datastore",
])
def test_the_layout_check_allows(tmp_path, source):
    module = tmp_path / "tests" / "jobs" / "test_example.py"
    module.parent.mkdir(parents=True)
    module.write_text(source + "\n")
    assert layout_violations(module, tmp_path) == []
