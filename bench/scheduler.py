"""Scheduler figures: calendar next-event computations per second (goal: at least 50,000) and,
with 1,000 configured jobs, the time of one scheduler tick (goal: under 50 ms) and the process's
peak RSS (goal: under 100 MB).

.venv/bin/python bench/scheduler.py [--events 200000] [--jobs 1000]
"""

import argparse
import random
import resource
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    rate = calendar_rate(args.events)
    print(f"calendar: {rate:,.0f} next-event computations/s ({len(EVENTS)} kinds of event, local time)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")


if __name__ == "__main__":
    main()
