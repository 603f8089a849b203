"""Command-line tests: a private environment for the commands, and a configured vtape library."""
from __future__ import annotations

import pytest

from tests.helpers.commands import tapefs


@pytest.fixture
def library(make_vtape_library):
    """4 small cartridges VT0001L8..VT0004L8 in slots 1-4, CLN001L1 in slot 16, mail slots 17-18."""
    return make_vtape_library(cartridges=4, capacity=64 * 1024**2)


@pytest.fixture
def configured(library, env):
    """The library's changer as lib0 and both drives in tape.cfg, and a pool 'daily'."""
    tapefs("changer", "create", "lib0", "--path", library.changer, env=env)
    for number, path in enumerate(library.drives):
        tapefs("drive", "create", f"drive{number}", "--path", path, "--changer", "lib0",
               "--changer-drivenum", number, env=env)
    tapefs("pool", "create", "daily", "--allocation", "daily", "--retention", "6 days", env=env)
    return library
