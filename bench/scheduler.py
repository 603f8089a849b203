"""Scheduler figures: calendar next-event computations per second (goal: at least 50,000) and,
with 1,000 configured jobs, the time of one scheduler tick (goal: under 50 ms) and the process's
peak RSS (goal: under 100 MB).

.venv/bin/python bench/scheduler.py [--events 200000] [--jobs 1000]
"""

import argparse
import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

from tapefs.config.calendar_event import CalendarEvent

EVENTS = ("daily", "yearly 04:00", "mon..fri 22:30", "*:0/15", "sat *-*-1..7 15:00", "monthly 02:30", "hourly")


def calendar_rate(count: int) -> float:
    events = [CalendarEvent.parse(text) for text in EVENTS]
    rng = random.Random(1)
    starts = [int(time.time()) + rng.randint(0, 365 * 86400) for _ in range(1000)]
    started = time.perf_counter()
    for index in range(count):
        events[index % len(events)].next_after(starts[index % len(starts)])
    return count / (time.perf_counter() - started)


def scheduler_tick(jobs: int) -> tuple[float, float]:
    """(first tick, median later tick) in seconds with ``jobs`` scheduled prune jobs."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        os.environ["TAPEFS_CONFIG_DIR"] = str(root / "config")
        os.environ["TAPEFS_STATE_DIR"] = str(root / "state")
        (root / "config").mkdir()
        # imported here: the paths above must be set first for nothing, but keep the calendar part light
        from tapefs.datastore.datastore import Datastore
        from tapefs.datastore.registry import DatastoreRegistry
        from tapefs.scheduler.daemon import Scheduler

        Datastore.create(root / "store", prefix_dirs=False)
        DatastoreRegistry().add("main", root / "store")
        schedules = ("daily 02:00", "sat 03:30", "*:0/15", "yearly 04:00", "mon..fri 22:30")
        (root / "config" / "prune.cfg").write_text(
            "".join(
                f"prune: job{index:04d}\n\tstore main\n\tkeep-daily 7\n\tschedule {schedules[index % 5]}\n\n"
                for index in range(jobs)
            )
        )
        started: list = []
        scheduler = Scheduler(start=started.append)
        now = time.time()
        begin = time.perf_counter()
        scheduler.tick(now)
        first = time.perf_counter() - begin
        later = []
        for minute in range(1, 21):
            begin = time.perf_counter()
            scheduler.tick(now + minute * 60)
            later.append(time.perf_counter() - begin)
        return first, statistics.median(later)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    rate = calendar_rate(args.events)
    print(f"calendar: {rate:,.0f} next-event computations/s ({len(EVENTS)} kinds of event, local time)")
    first, tick = scheduler_tick(args.jobs)
    print(
        f"scheduler: {args.jobs} jobs: first tick {first * 1000:.0f} ms (writes every job's state), "
        f"later ticks {tick * 1000:.1f} ms (median of 20)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")


if __name__ == "__main__":
    main()
