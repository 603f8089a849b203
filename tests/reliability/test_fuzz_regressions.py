"""Inputs the fuzzing campaign found that made a parser fail with something else than its own
error; each now gets the parser's error with a message that says what is wrong."""
from __future__ import annotations

import uuid

import pytest

from tapefs.tapeformat import magic
from tapefs.tapeformat.errors import MediaCatalogError
from tapefs.tapeformat.media_catalog_log import (
    encode_chunk_archive_start,
    encode_label,
    encode_snapshot,
    parse_catalog,
)

MEDIA = uuid.UUID(int=1)
LABELS = magic.MEDIA_CATALOG_1_1 + encode_label(0, MEDIA, 0)


@pytest.mark.parametrize("entry, what", [
    (encode_chunk_archive_start(2, uuid.UUID(int=3), "store").replace(b"store", b"st\xffre"), "store name"),
    (encode_snapshot(2, uuid.UUID(int=3), "store", "vm/100/2024-01-01T00:00:00Z").replace(b"store", b"st\xffre"),
     "store name"),
    (encode_snapshot(2, uuid.UUID(int=3), "store", "vm/100/2024-01-01T00:00:00Z").replace(b"vm/", b"\xc3(/"),
     "snapshot path"),
], ids=["chunk-archive-store", "snapshot-store", "snapshot-path"])
@pytest.mark.parametrize("tolerate_torn_tail", [False, True], ids=["strict", "repair"])
def test_a_media_catalog_name_that_is_not_utf8_is_a_catalog_error(entry, what, tolerate_torn_tail):
    with pytest.raises(MediaCatalogError, match=f"{what} of the entry at byte {len(LABELS)} is not UTF-8"):
        parse_catalog(LABELS + entry, tolerate_torn_tail=tolerate_torn_tail)
