"""Media management: the tape inventory, media pools and media sets, and the tape configuration
files (tape.cfg, media-pool.cfg, tape-job.cfg), following PBS (spec pbs-tape-format.md §4.1, §5, §6).

This layer sits above the datastore and the on-tape formats and below jobs and command lines;
it never talks to a drive itself: callers report what changers hold and which tape they wrote.
"""
