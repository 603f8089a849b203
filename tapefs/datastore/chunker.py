"""Content-defined chunking with PBS-identical cut points (Buzhash; docs/datastore-format.md, "Chunking").

The rolling hash runs in the C helper ``_chunker``; this module holds the chunk-size
conventions of proxmox-backup-client.
"""

import logging

from tapefs.datastore._chunker import Chunker

log = logging.getLogger(__name__)

#: average chunk size of pxar archive streams (min 1 MiB, max 16 MiB)
PXAR_AVERAGE_CHUNK_SIZE = 4 << 20
#: average chunk size of the file catalog stream (min 128 KiB, max 2 MiB)
CATALOG_AVERAGE_CHUNK_SIZE = 512 << 10
#: chunk size of fixed indexes for block images (what VM backups use)
IMAGE_CHUNK_SIZE = 4 << 20

__all__ = ["Chunker", "PXAR_AVERAGE_CHUNK_SIZE", "CATALOG_AVERAGE_CHUNK_SIZE", "IMAGE_CHUNK_SIZE"]
