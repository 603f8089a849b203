import logging

import pytest

from tapefs.device.changer import ChangerStatus, DriveSlot, StorageSlot
from tapefs.media.media_id import MediaLocation
from tapefs.media.online_status import label_texts_in_changer, query_changer, update_online_status
from tapefs.media.tape_config import ChangerConfig, DriveConfig, TapeDeviceConfig
from tests.helpers.inventory_media import make_media_id


@pytest.mark.vtape
def test_online_status_from_a_real_vtape_library(vtape_library, inventory, caplog):
    in_library = make_media_id("VT0003L8", 1)
    elsewhere = make_media_id("ELSE01", 2)
    inventory.store(in_library)
    inventory.store(elsewhere)
    inventory.set_location(elsewhere.uuid, MediaLocation.online("lib0"))
    config = TapeDeviceConfig(
        {"drive0": DriveConfig("drive0", vtape_library.drives[0], "lib0", 0)},
        {"lib0": ChangerConfig("lib0", vtape_library.changer),
         "gone": ChangerConfig("gone", vtape_library.changer + "-missing")},
    )
    label_texts = query_changer(config.changers["lib0"])
    assert {"VT0001L8", "VT0008L8", "CLN001L1"} <= label_texts
    with caplog.at_level(logging.WARNING):
        assert query_changer(config.changers["gone"]) is None
    assert "changer gone" in caplog.text
    changes = update_online_status(inventory, config)
    assert changes == {in_library.uuid: MediaLocation.online("lib0"), elsewhere.uuid: MediaLocation.offline()}


def test_import_export_and_configured_export_slots_do_not_count():
    status = ChangerStatus(
        transports=[],
        drives=[DriveSlot(0, 0x100, "IN_DRIVE", True, 1, None, None, None),
                DriveSlot(1, 0x101, None, False, None, None, None, None)],
        slots=[StorageSlot(1, 0x1000, False, True, "IN_SLOT1"),
               StorageSlot(2, 0x1001, False, True, "IN_SLOT2"),
               StorageSlot(3, 0x1002, False, False, None),
               StorageSlot(4, 0x1003, True, True, "IN_MAIL1")],
    )
    assert label_texts_in_changer(status) == {"IN_DRIVE", "IN_SLOT1", "IN_SLOT2"}
    assert label_texts_in_changer(status, export_slots=[2]) == {"IN_DRIVE", "IN_SLOT1"}


@pytest.mark.vtape
def test_updating_one_changer_leaves_the_others_alone(vtape_library, inventory):
    in_library = make_media_id("VT0001L8", 1)
    in_other = make_media_id("OTHER1", 2)
    inventory.store(in_library)
    inventory.store(in_other)
    inventory.set_location(in_other.uuid, MediaLocation.online("lib1"))
    config = TapeDeviceConfig({}, {"lib0": ChangerConfig("lib0", vtape_library.changer),
                                   "lib1": ChangerConfig("lib1", "/nonexistent/changer")})
    assert update_online_status(inventory, config, changer="lib0") == {in_library.uuid: MediaLocation.online("lib0")}
    assert inventory.get(in_other.uuid).location == MediaLocation.online("lib1")
    with pytest.raises(KeyError, match="no changer named 'lib9'"):
        update_online_status(inventory, config, changer="lib9")
