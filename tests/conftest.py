"""Shared fixtures: real vtape libraries served by real daemons, and (plugins) tape setups on them."""
from __future__ import annotations

import pytest

# The shared helpers assert too: their failures should explain themselves like a test's own.
pytest.register_assert_rewrite("tests.helpers")

from tests.helpers.vtape_process import VtapeLibrary  # noqa: E402 - after the rewrite registration

# Fixtures more than one test directory uses.
pytest_plugins = ["tests.helpers.fixtures_tape", "tests.helpers.fixtures_datastore"]
pytest_plugins += ["tests.helpers.fixtures_notify"]
pytest_plugins += ["tests.helpers.fixtures_s3"]


@pytest.fixture
def make_vtape_library():
    """Factory: make_vtape_library(**CreateOptions fields) -> a served VtapeLibrary."""
    libraries: list[VtapeLibrary] = []

    def make(**create_options) -> VtapeLibrary:
        library = VtapeLibrary(**create_options)
        libraries.append(library)
        library.start()
        return library

    yield make
    for library in libraries:
        try:
            if library.process is not None:
                code = library.stop()
                assert code == 0, f"vtape serve exited {code}:\n{library.log()}"
            assert "Traceback" not in library.log(), library.log()
        finally:
            library.cleanup()


@pytest.fixture
def vtape_library(make_vtape_library) -> VtapeLibrary:
    """A default library (2 LTO-8 drives, 16 slots, 2 mail slots, VT0001L8..VT0008L8, CLN001L1 in slot 16)."""
    return make_vtape_library()
