"""How the project installs: the command lines as `tapefs_tools` (never a top-level `tools`),
`python -m tapefs` and `python -m vtape`, and every package directory in the wheel."""
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_python(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # From a directory outside the checkout: only what is installed can be imported.
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("package", ["tapefs", "vtape"])
def test_python_dash_m_runs_the_command(package, tmp_path):
    result = run_python("-m", package, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: {package} [OPTIONS] COMMAND [ARGS]...")


def test_the_command_lines_install_as_tapefs_tools_not_tools(tmp_path):
    probe = "import importlib.util as u; print(u.find_spec('tools') is None, u.find_spec('tapefs_tools') is not None)"
    result = run_python("-c", probe, cwd=tmp_path)
    assert result.stdout.split() == ["True", "True"], result.stderr


def test_every_package_directory_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(init.parent.relative_to(REPO).parts)
               for top in ("tapefs", "vtape") for init in (REPO / top).rglob("__init__.py")}
    assert on_disk | {"tapefs_tools"} == listed


@pytest.mark.slow
def test_the_wheel_has_no_top_level_tools(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("tapefs-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == {
        "tapefs", "tapefs_tools", "vtape"}
    assert "tapefs_tools/tapefs_cli.py" in names and "tapefs/__main__.py" in names and "vtape/__main__.py" in names
