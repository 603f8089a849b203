"""Reading what `tapefs datastore` lists."""

from __future__ import annotations

import json

from tests.helpers.commands import tapefs


def snapshot_names(env: dict[str, str], *extra: str) -> list[str]:
    """The snapshots of datastore `main`, as `tapefs datastore snapshots` lists them."""
    listing = tapefs("datastore", "snapshots", "main", *extra, "--output-format", "json", env=env)
    return [row["snapshot"] for row in json.loads(listing.stdout)]
