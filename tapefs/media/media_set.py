"""A media set: the tapes one pool writes in sequence, identified by a UUID (docs/media-pools.md)."""

import logging
from dataclasses import dataclass, field

from tapefs.media.media_id import new_uuid

log = logging.getLogger(__name__)


@dataclass
class MediaSet:
    uuid: str = field(default_factory=new_uuid)
    #: media UUIDs by sequence number; None where the inventory lacks that tape
    members: list[str | None] = field(default_factory=list)

    @property
    def last_media(self) -> str | None:
        return self.members[-1] if self.members else None
