"""tapefs.media sits below jobs, FUSE and command lines: it imports none of them, nor click or rich."""
import ast
from pathlib import Path

import tapefs.media

FORBIDDEN = ("click", "rich", "trio", "pyfuse3", "tools", "vtape", "tapefs.jobs", "tapefs.fuse", "tapefs.cli")


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_media_layer_imports_only_lower_layers():
    sources = sorted(Path(tapefs.media.__file__).parent.glob("*.py"))
    assert len(sources) > 5
    for source in sources:
        for module in imported_modules(source):
            assert not any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN), (source.name, module)
