"""Locations of the tapefs configuration and state directories.

root uses the system locations (/etc/tapefs, /var/lib/tapefs), everyone else the XDG base
directories. TAPEFS_CONFIG_DIR and TAPEFS_STATE_DIR override both, so tests and containers can
point every command at a private tree.
"""

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

CONFIG_DIR_ENV = "TAPEFS_CONFIG_DIR"
STATE_DIR_ENV = "TAPEFS_STATE_DIR"

SYSTEM_CONFIG_DIR = Path("/etc/tapefs")
SYSTEM_STATE_DIR = Path("/var/lib/tapefs")


def _is_root() -> bool:
    return os.geteuid() == 0


def _xdg_dir(variable: str, default_below_home: str) -> Path:
    # The XDG spec says a relative or empty value must be ignored.
    value = os.environ.get(variable, "")
    if value and os.path.isabs(value):
        return Path(value) / "tapefs"
    return Path.home() / default_below_home / "tapefs"


def config_dir() -> Path:
    """Directory holding datastore.cfg, tape.cfg, media-pool.cfg and the like."""
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override)
    if _is_root():
        return SYSTEM_CONFIG_DIR
    return _xdg_dir("XDG_CONFIG_HOME", ".config")


def state_dir() -> Path:
    """Directory holding mutable state (inventories, catalogs, caches)."""
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        return Path(override)
    if _is_root():
        return SYSTEM_STATE_DIR
    return _xdg_dir("XDG_STATE_HOME", ".local/state")


def tape_status_dir() -> Path:
    """Where the inventory, the media catalogs and the pool and media-set locks live."""
    return state_dir() / "tape"


def config_file(name: str) -> Path:
    """Path of one file in the configuration directory, e.g. ``config_file("datastore.cfg")``."""
    return config_dir() / name
