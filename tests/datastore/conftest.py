"""Datastore tests: the chunker and BST vectors and a chunking pattern."""
import ast

import pytest

from tests.helpers.pbs_reference import GENERATED


@pytest.fixture(scope="session")
def vectors() -> dict:
    result = {}
    for line in (GENERATED / "chunker-and-bst-vectors.txt").read_text().splitlines():
        key, value = line.split(" ", 1)
        result[key] = ast.literal_eval(value)
    return result


@pytest.fixture(scope="session")
def pattern_data() -> bytes:
    return bytes(i % 255 for i in range(100000))
