"""The one command-line layer: exception roots, exit statuses, one-line errors, --debug, -h."""

import importlib
import importlib.metadata
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import tapefs
import vtape
from tapefs import errors as tapefs_errors
from tapefs_tools.cli import CommandGroup
from tests.helpers.commands import isolated_env, one_error_line, run
from vtape import errors as vtape_errors

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _exception_classes(package):
    for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        # the LD_PRELOAD shim is C, not a Python module; __main__ runs the command line
        if module_info.name.endswith(("libvtape_preload", "__main__")):
            continue
        module = importlib.import_module(module_info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__
                    and not name.startswith("_")):
                yield f"{module.__name__}.{name}", obj


@pytest.mark.parametrize("package, root", [(tapefs, tapefs_errors.TapefsError), (vtape, vtape_errors.VtapeError)])
def test_every_public_exception_derives_from_its_package_root(package, root):
    classes = dict(_exception_classes(package))
    assert len(classes) > 20 if package is tapefs else len(classes) > 5
    strays = sorted(name for name, cls in classes.items() if not issubclass(cls, root))
    assert strays == []


def test_vtape_and_tapefs_agree_on_exit_statuses_and_the_doc_lists_them():
    assert {e.name: e.value for e in vtape_errors.ExitCode} == {e.name: e.value for e in tapefs_errors.ExitCode}
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", DOC.read_text(), re.MULTILINE)}
    assert documented == {e.value for e in tapefs_errors.ExitCode}


def test_the_kind_of_failure_decides_the_exit_status():
    from tapefs.datastore.errors import ChunkMissingError, NamingError, UnknownNameError
    from tapefs.media.drive_lock import DriveBusy
    from tapefs.scsi.errors import DeviceNotFound, MediumError
    assert UnknownNameError("x").exit_code == 3
    assert NamingError("x").exit_code == 2
    assert ChunkMissingError(b"\0" * 32, "/x").exit_code == 6
    assert DriveBusy("x").exit_code == 4
    assert DeviceNotFound("/dev/sg9", "", "no such device").exit_code == 3
    assert issubclass(MediumError, tapefs_errors.DeviceFailure)


def _group_failing_with(error: BaseException) -> click.Group:
    @click.group("demo", cls=CommandGroup)
    def demo() -> None:
        pass

    @demo.command()
    def run() -> None:
        raise error

    return demo


def test_a_bug_is_an_internal_error_with_status_70_and_debug_shows_the_traceback():
    group = _group_failing_with(RuntimeError("boom"))
    plain = CliRunner().invoke(group, ["run"])
    assert plain.exit_code == 70
    assert plain.output.strip() == "demo: error: internal error: RuntimeError: boom (run with --debug for the traceback)"
    debug = CliRunner().invoke(group, ["--debug", "run"])
    assert debug.exit_code == 70 and "Traceback" in debug.output and 'raise error' in debug.output


def test_a_click_exception_gets_the_same_prefix():
    result = CliRunner().invoke(_group_failing_with(click.ClickException("no pool named 'x'")), ["run"])
    assert result.exit_code == 1 and result.output == "demo: error: no pool named 'x'\n"


@pytest.mark.parametrize("program", ["vtape", "pmt", "pmtx", "tapefs"])
def test_dash_h_shows_help(program, env):
    proc = run(program, "-h", env=env, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith(f"Usage: {program} ")


def test_vtape_on_a_missing_directory_a_regular_file_and_an_empty_directory(tmp_path, env):
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    for command in (["status"], ["insert", "", "VT0001L8"], ["fault", "", "drive0", "--clear"]):
        for target in ("missing", "file", "empty"):
            args = [a if a else tmp_path / target for a in command] if "" in command else [*command, tmp_path / target]
            line = one_error_line(run("vtape", *args, env=env, check=False), 3, "vtape")
            assert str(tmp_path / target) in line
    # a read-only command leaves nothing behind
    assert list((tmp_path / "empty").iterdir()) == []
    one_error_line(run("vtape", "create", tmp_path / "file", env=env, check=False), 1, "vtape")


def test_swapped_datastore_create_arguments_are_refused_before_anything_is_made(tmp_path, env):
    line = one_error_line(run("tapefs", "datastore", "create", tmp_path / "store", "demo", env=env, check=False,
                              cwd=tmp_path), 2, "tapefs")
    assert "invalid datastore name" in line and "tapefs datastore create NAME PATH" in line
    assert not (tmp_path / "demo").exists() and not (tmp_path / "store").exists()


def test_an_unknown_datastore_is_not_found_and_debug_adds_the_traceback(env):
    line = one_error_line(run("tapefs", "datastore", "snapshots", "nope", env=env, check=False), 3, "tapefs")
    assert "no datastore named 'nope'" in line
    debug = run("tapefs", "--debug", "datastore", "snapshots", "nope", env=env, check=False, debug=True)
    assert debug.returncode == 3 and "Traceback" in debug.stderr and "UnknownNameError" in debug.stderr


def test_a_tape_job_must_name_a_datastore_pool_and_drive_that_exist(env):
    line = one_error_line(run("tapefs", "backup-job", "create", "job1", "--store", "nostore", "--pool", "nopool",
                              "--drive", "nodrive", env=env, check=False), 2, "tapefs")
    assert "no datastore named 'nostore'" in line
    assert not (Path(env["TAPEFS_CONFIG_DIR"]) / "tape-job.cfg").exists()


def test_names_comments_and_paths_print_as_written(tmp_path, env):
    from tapefs.datastore.datastore import Datastore
    store = tmp_path / "m[old]" / "store"
    Datastore.create(store, prefix_dirs=False)
    added = run("tapefs", "datastore", "add", "old", store, "--comment", "closing [/foo] tag [red]x[/red]", env=env, check=False)
    assert added.returncode == 0, added.stderr
    listing = run("tapefs", "datastore", "list", env=env, check=False)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.strip().startswith("old"))
    assert str(store) in row and "closing [/foo] tag [red]x[/red]" in row
    as_json = run("tapefs", "datastore", "list", "--output-format", "json", env=env, check=False)
    assert '"comment": "closing [/foo] tag [red]x[/red]"' in as_json.stdout


def test_a_passphrase_without_a_terminal_is_asked_for_by_name(tmp_path, env):
    from tapefs.datastore.key_config import KeyConfig
    keyfile = tmp_path / "key.json"
    KeyConfig.create(bytes(32), b"secret").save(keyfile)
    store = tmp_path / "store"
    assert run("tapefs", "datastore", "create", "demo", store, env=env, check=False).returncode == 0
    proc = run("tapefs", "datastore", "backup", "demo", "host/x", tmp_path / "key.json", "--keyfile", keyfile,
               env=env, check=False, stdin=subprocess.DEVNULL)
    line = one_error_line(proc, 2, "tapefs")
    assert "there is no terminal to ask for it: set TAPEFS_KEY_PASSPHRASE" in line
    assert "GetPassWarning" not in proc.stderr


def _lazy_groups():
    from tapefs_tools.tapefs_cli import main
    from tapefs_tools.tapefs_datastore import datastore

    return [main, datastore]


@pytest.mark.parametrize("group", _lazy_groups(), ids=lambda group: group.name)
def test_every_lazily_imported_command_is_found_under_its_own_name(group):
    context = click.Context(group)
    assert len(group.lazy_commands) > 10
    for name in group.lazy_commands:
        command = group.get_command(context, name)
        assert isinstance(command, click.Command) and command.name == name
    assert group.get_command(context, "no-such-command") is None


def test_a_command_imports_only_what_it_uses(tmp_path):
    # `tapefs datastore list` on a filesystem datastore must not pay for boto3, fpdf or FUSE.
    script = (
        "import sys\n"
        "from tapefs_tools.tapefs_cli import main\n"
        "try:\n"
        "    main(['datastore', 'list'])\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "print(sorted(m for m in ('boto3', 'fpdf', 'pyfuse3', 'trio') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env=isolated_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize("program", ["tapefs", "pmt", "pmtx", "vtape"])
def test_every_front_end_tells_its_version(program):
    result = run(program, "--version")
    version = importlib.metadata.version("tapefs")
    assert result.returncode == 0 and result.stdout == f"{program} {version}\n", result.stdout + result.stderr
