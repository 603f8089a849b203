"""R3 in CI: seeded bit flips in datastore chunks and indexes and a damaged catalog database, one
run each (the campaign in `scripts/reliability.sh` runs them many times, and flips cartridges)."""

import random

import pytest

from tests.helpers.reliability_campaign import SCENARIOS, Trial, load_scenarios, run_in

load_scenarios()
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name, seed", [("chunk-bit-flip", 21), ("index-bit-flip", 22), ("catalog-db-damage", 23)])
def test_damage_is_detected_and_named_and_the_rest_restores(name, seed, tmp_path):
    run_in(SCENARIOS[name], Trial(random.Random(seed), tmp_path))
