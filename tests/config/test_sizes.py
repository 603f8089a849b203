"""Sizes as options take them: decimal and binary units, and a one-line error for anything else."""
import pytest

from tapefs.config.sizes import parse_size


@pytest.mark.parametrize(("text", "expected"), [
    ("4096", 4096), ("10B", 10), ("2K", 2000), ("2kb", 2000), ("2KiB", 2048), ("2ki", 2048),
    ("512MiB", 512 * 2**20), ("8GiB", 8 * 2**30), ("12TB", 12 * 10**12), ("1.5GiB", 3 * 2**29),
    (" 16 MiB ", 16 * 2**20),
])
def test_sizes_people_type(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MiB", "12 parsecs", "1e9", "-5", "5iB", "5 XB", "1.GiB"])
def test_anything_else_is_refused_in_one_line(text):
    with pytest.raises(ValueError, match=r"^bad size .* \(examples: 512MiB, 8GiB, 12TB\)$"):
        parse_size(text)
