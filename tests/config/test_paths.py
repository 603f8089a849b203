
import pytest

from tapefs.config import paths


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("TAPEFS_CONFIG_DIR", "TAPEFS_STATE_DIR", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_overrides_win(clean_env, tmp_path):
    clean_env.setenv("TAPEFS_CONFIG_DIR", str(tmp_path / "c"))
    clean_env.setenv("TAPEFS_STATE_DIR", str(tmp_path / "s"))
    assert paths.config_dir() == tmp_path / "c"
    assert paths.state_dir() == tmp_path / "s"
    assert paths.config_file("datastore.cfg") == tmp_path / "c" / "datastore.cfg"


def test_root_uses_system_dirs(clean_env):
    clean_env.setattr(paths, "_is_root", lambda: True)
    assert str(paths.config_dir()) == "/etc/tapefs"
    assert str(paths.state_dir()) == "/var/lib/tapefs"


def test_user_uses_xdg(clean_env, tmp_path):
    clean_env.setattr(paths, "_is_root", lambda: False)
    clean_env.setenv("HOME", str(tmp_path))
    assert paths.config_dir() == tmp_path / ".config" / "tapefs"
    assert paths.state_dir() == tmp_path / ".local" / "state" / "tapefs"
    clean_env.setenv("XDG_CONFIG_HOME", str(tmp_path / "xc"))
    clean_env.setenv("XDG_STATE_HOME", str(tmp_path / "xs"))
    assert paths.config_dir() == tmp_path / "xc" / "tapefs"
    assert paths.state_dir() == tmp_path / "xs" / "tapefs"


def test_relative_xdg_is_ignored(clean_env, tmp_path):
    clean_env.setattr(paths, "_is_root", lambda: False)
    clean_env.setenv("HOME", str(tmp_path))
    clean_env.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert paths.config_dir() == tmp_path / ".config" / "tapefs"
