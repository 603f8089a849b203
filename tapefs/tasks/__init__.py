"""Tasks: every job and long command runs as a task with a PBS-format UPID, a log file that ends
in ``TASK OK``, ``TASK WARNINGS: N`` or ``TASK ERROR: ...``, and a stop flag it checks at safe
points."""
