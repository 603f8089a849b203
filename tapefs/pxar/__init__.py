"""pxar archives and pcat1 catalogs, as Proxmox Backup Server writes them.

``format`` (wire layouts, goodbye hash and order), ``entry`` (what an archive stores per file),
``source`` (random-access inputs), ``decoder`` (sequential reading, v1 and v2), ``accessor``
(random access through goodbye tables), ``encoder`` (writing, v1 and v2), ``fsmeta`` (Linux
metadata as pxar stores it), ``catalog`` (pcat1), ``extract`` (safe extraction), ``errors``.
See docs/pxar.md.
"""
