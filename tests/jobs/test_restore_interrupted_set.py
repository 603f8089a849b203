"""A backup killed between assigning the next tape to the set (inventory) and writing its set
label: the full restore takes everything from the tapes before it and says what happened."""
import dataclasses
import logging

import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.media.media_id import MediaSetLabel
from tests.helpers.tape_jobs import run_backup, run_restore, snapshot_tree
from tests.helpers.tape_setup import add_cartridges

pytestmark = pytest.mark.vtape


def test_last_member_without_its_set_label_is_reported_and_the_rest_restored(tape_setup, tmp_path, caplog):
    add_cartridges(tape_setup.library, 2, "64MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8")
    tape_setup.add_snapshot("vm/100", 1)
    result = run_backup(tape_setup)
    assert result.tapes == ["SM0001L8"]
    with tape_setup.inventory() as inventory:
        first = inventory.get(inventory.compute_media_set_members(result.media_set)[0]).id.media_set_label
        assigned = inventory.find_media_by_label_text("SM0002L8").id
        inventory.store(dataclasses.replace(assigned, media_set_label=MediaSetLabel(
            first.pool, first.uuid, 1, first.ctime)))
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    caplog.set_level(logging.WARNING, "tapefs.jobs.restore")
    run_restore(tape_setup, result.media_set, {"store": target})
    assert snapshot_tree(target) == snapshot_tree(tape_setup.datastore)
    assert "SM0002L8 was assigned to media set" in caplog.text
