"""Tapes as the inventory knows them, made up for media-management tests."""

from tapefs.media.media_id import MediaId, MediaLabel, MediaLocation, MediaSetLabel, new_uuid


def make_media_id(
    label_text: str,
    ctime: int,
    pool: str | None = None,
    set_label: MediaSetLabel | None = None,
    uuid: str | None = None,
) -> MediaId:
    return MediaId(MediaLabel(uuid or new_uuid(), label_text, ctime, pool), set_label)


LIB = MediaLocation.online("lib0")


def add(
    inventory,
    label_text,
    ctime,
    *,
    pool=None,
    set_uuid=None,
    seq_nr=0,
    set_ctime=None,
    set_pool=None,
    fingerprint=None,
    location=LIB,
    status=None,
    uuid=None,
) -> MediaId:
    """Store a tape in the inventory: labelled at ``ctime``, in set ``set_uuid`` if given (joined
    at ``set_ctime``, default ``ctime``), in changer lib0 unless ``location`` says otherwise."""
    set_label = None
    if set_uuid is not None:
        set_label = MediaSetLabel(
            set_pool or pool or "p1", set_uuid, seq_nr, ctime if set_ctime is None else set_ctime, fingerprint
        )
    media = make_media_id(label_text, ctime, pool=pool, set_label=set_label, uuid=uuid)
    inventory.store(media)
    if location is not None:
        inventory.set_location(media.uuid, location)
    if status is not None:
        inventory.set_status(media.uuid, status)
    return media
