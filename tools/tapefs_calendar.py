"""``tapefs calendar-event EVENT [--count N]``: check a calendar event and show when it fires next,
as ``systemd-analyze calendar`` and ``proxmox-backup-manager`` do."""

from __future__ import annotations

import time

import click

from tapefs.config.calendar_event import CalendarEvent
from tapefs_tools.cli import emit, key_value_table, output_format_option


def format_time(epoch: int | None) -> str | None:
    """Local time with its zone, or None for a time that never comes."""
    return None if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


@click.command("calendar-event")
@click.argument("event")
@click.option("--count", type=click.IntRange(1, 1000), default=1, show_default=True, help="How many runs to show.")
@click.option("--from", "start", type=int, default=None, metavar="EPOCH", help="Count from this time (default: now).")
@output_format_option
def calendar_event(event: str, count: int, start: int | None, output_format: str) -> None:
    """Show the next COUNT times EVENT fires (e.g. 'daily', 'yearly 04:00', 'mon..fri 22:30')."""
    parsed = CalendarEvent.parse(event)
    runs: list[int] = []
    moment: int | None = int(time.time()) if start is None else start
    while len(runs) < count and moment is not None:
        moment = parsed.next_after(moment)
        if moment is not None:
            runs.append(moment)
    data = {"event": event, "normalized": parsed.normalized(), "next-runs": runs}

    def render(out) -> None:
        rows: list[tuple[str, object]] = [("Original form:", event), ("Normalized form:", parsed.normalized())]
        if not runs:
            rows.append(("Next elapse:", "never"))
        for index, run in enumerate(runs):
            label = "Next elapse:" if index == 0 else f"Iteration #{index + 1}:"
            rows.append((label, format_time(run)))
        out.print(key_value_table(rows))

    emit(output_format, data, render)
