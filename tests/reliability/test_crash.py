"""R1 in CI: the quickest crash scenarios of the reliability campaign (a datastore backup and the
mount killed), one seeded run each. The others (gc, sync, tape backup, restore, catalog rebuild,
the vtape daemon) take up to minutes on a loaded machine and run in `scripts/reliability.sh`; tests/jobs/test_cli.py kills a tape backup and the
daemon once each."""

import random

import pytest

from tests.helpers.fuse_mounts import require_fuse
from tests.helpers.reliability_campaign import SCENARIOS, Trial, load_scenarios, run_in

load_scenarios()
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name, seed", [("datastore-backup-kill", 11)])
def test_killed_job_leaves_a_sound_datastore_and_the_next_one_succeeds(name, seed, tmp_path):
    run_in(SCENARIOS[name], Trial(random.Random(seed), tmp_path))


@pytest.mark.fuse
@pytest.mark.vtape
def test_killed_mount_leaves_nothing_that_blocks_the_drives_or_the_next_mount(tmp_path):
    require_fuse()
    run_in(SCENARIOS["mount-kill"], Trial(random.Random(7), tmp_path))
