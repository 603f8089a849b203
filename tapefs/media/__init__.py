"""Media management: the tape inventory, media pools and media sets, and the tape configuration
files (tape.cfg, media-pool.cfg, tape-job.cfg), following PBS
(docs/media-pools.md, docs/catalog-formats.md).

This layer sits above the datastore and the on-tape formats and below jobs and command lines.
It never loads, reads or writes a tape: jobs tell it which tape they labelled, wrote or filled.
The one device access is ``online_status``, which asks changers which tapes they hold.
"""
