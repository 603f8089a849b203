"""The scheduler: job state files, the kinds of scheduled job, and the daemon that starts due jobs."""
