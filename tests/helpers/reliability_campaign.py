"""The reliability campaign: scenarios (a crash, a device fault, a corruption) run many times with a
seeded random generator, each run in a fresh private setup, and a table of what failed.

`scripts/reliability.sh --runs N --seed S` runs every scenario N times and writes the table into
docs/reliability.md; the tests in tests/reliability/ run a few of them once each."""

from __future__ import annotations

import argparse
import datetime
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.commands import REPO, command_path
from tests.helpers.tape_setup import TapeSetup, set_up_tapes
from tests.helpers.vtape_process import VtapeLibrary

DOC = REPO / "docs" / "reliability.md"
RESULTS_BEGIN = "<!-- campaign results: written by scripts/reliability.sh -->"
RESULTS_END = "<!-- end of campaign results -->"


@dataclass
class Trial:
    """One run of a scenario: its random generator, a private directory (configuration and state
    under it, as TAPEFS_CONFIG_DIR and TAPEFS_STATE_DIR point) and what it started."""

    rng: random.Random
    root: Path
    libraries: list[VtapeLibrary] = field(default_factory=list)
    #: the run's fault (kill, flip, fault) landed where it tests something, not before or after the work
    effective: bool = True
    #: seconds into a `timed` run its work began (see `timed`); 0: from the start
    work_begins: float = 0.0
    #: seconds into a `timed` run its output last changed (see `timed`); None: at its end
    work_ends: float | None = None

    def tape_setup(self, drives: int = 2) -> TapeSetup:
        library = VtapeLibrary(cartridges=0, cleaning_cartridges=0, drives=drives)
        self.libraries.append(library)
        library.start()
        return set_up_tapes(library, self.root)

    def random_bytes(self, size: int) -> bytes:
        return self.rng.randbytes(size)

    def kill_after(self, argv: list[str], latest: float, earliest: float = 0.0) -> subprocess.Popen:
        """Start `argv` and kill -9 it after a seeded random delay in [earliest, latest] seconds;
        the run counts as effective only if the process was still running then."""
        return self.killed_run(argv, self.rng.uniform(earliest, latest))

    def killed_run(self, argv: list[str], delay: float) -> subprocess.Popen:
        """Start `argv` and kill -9 it `delay` seconds later; effective if it still ran then."""
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=os.environ.copy(),
            text=True,
        )
        self.effective = kill_at(process, delay)
        process.communicate(timeout=300)
        return process

    def timed(
        self, argv: list[str], begins: Callable[[], bool] | None = None, output: Callable[[], object] | None = None
    ) -> float:
        """Seconds `argv` takes to run to its end (it must succeed): the time scale of a later kill
        of work of the same size (fixed delays missed fast commands or came before slow ones).

        `begins`, polled while the command runs, turns true when its work proper starts (say its
        first tape move); the seconds until then are kept in `work_begins`, and `kill_within`
        then kills during the work, not while the command still starts up (Python imports take
        half of a short tape job). `output`, polled too, stamps what the work writes (say the
        cartridges' sizes); the seconds until its last change are kept in `work_ends`, for a
        fault that only tells while the work still writes (a device that dies)."""
        log = self.root / "timed-output"
        started = time.monotonic()
        with open(log, "w+") as out:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            begun = changed = None
            stamp = output() if output is not None else None
            while True:
                try:
                    process.wait(timeout=0.005)
                    break
                except subprocess.TimeoutExpired:
                    if begins is not None and begun is None and begins():
                        begun = time.monotonic() - started
                    if output is not None and (now := output()) != stamp:
                        stamp, changed = now, time.monotonic() - started
                    if time.monotonic() - started > 600:
                        process.kill()
                        process.wait()
                        raise
            seconds = time.monotonic() - started
            out.seek(0)
            text = out.read()
        if process.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {process.returncode}: {text[-2000:]}")
        # never seen (the work was over between two polls): the whole run is the scale
        if begins is not None:
            self.work_begins = begun if begun is not None else 0.0
        if output is not None:
            self.work_ends = changed
        return seconds

    def kill_moment(self, seconds: float) -> float:
        """A seeded moment 5 to 95 % into the work of a run that takes `seconds` (`timed`): the
        work starts `work_begins` seconds after the start and ends at `work_ends` (if known)."""
        ends = seconds if self.work_ends is None else min(self.work_ends, seconds)
        begins = min(self.work_begins, ends)
        return begins + self.rng.uniform(0.05, 0.95) * (ends - begins)

    def kill_within(self, argv: list[str], seconds: float) -> subprocess.Popen:
        """`kill_after` at `kill_moment(seconds)`: a seeded 5 to 95 % into the work of such a run."""
        return self.killed_run(argv, self.kill_moment(seconds))

    def close(self) -> None:
        for library in self.libraries:
            library.cleanup()


def kill_at(process: subprocess.Popen, delay: float) -> bool:
    """SIGKILL `process` `delay` seconds from now unless it ended first; whether it was killed."""
    try:
        process.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True


def tapefs_argv(*args: object) -> list[str]:
    return [command_path("tapefs"), *map(str, args)]


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "crash", "fault" or "corruption"
    checks: str  # what a run asserts, for the table
    run: Callable[[Trial], None]


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, kind: str, checks: str):
    """Register the decorated function as a scenario."""

    def register(run: Callable[[Trial], None]) -> Callable[[Trial], None]:
        SCENARIOS[name] = Scenario(name, kind, checks, run)
        return run

    return register


@contextmanager
def private_environment(root: Path) -> Iterator[None]:
    """TAPEFS_CONFIG_DIR and TAPEFS_STATE_DIR under `root` for this process and its children."""
    saved = {name: os.environ.get(name) for name in ("TAPEFS_CONFIG_DIR", "TAPEFS_STATE_DIR")}
    os.environ["TAPEFS_CONFIG_DIR"] = str(root / "config")
    os.environ["TAPEFS_STATE_DIR"] = str(root / "state")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_trial(scenario: Scenario, seed: int, root: Path) -> Trial:
    """Run `scenario` once in `root` (a fresh directory); raises what the scenario raised."""
    trial = Trial(random.Random(seed), root)
    run_in(scenario, trial)
    return trial


def run_in(scenario: Scenario, trial: Trial) -> None:
    with private_environment(trial.root):
        try:
            scenario.run(trial)
        finally:
            trial.close()


def trial_seed(seed: int, name: str, run: int) -> int:
    """Each run's seed, so any single run can be repeated on its own."""
    return random.Random(f"{seed}:{name}:{run}").getrandbits(32)


@dataclass
class Outcome:
    scenario: Scenario
    runs: int = 0
    effective: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_campaign(names: list[str], runs: int, seed: int, log=print) -> list[Outcome]:
    outcomes = []
    for name in names:
        outcome = Outcome(SCENARIOS[name])
        started = time.monotonic()
        for number in range(runs):
            root = Path(tempfile.mkdtemp(prefix=f"rel-{name}-"))
            run_seed = trial_seed(seed, name, number)
            trial = Trial(random.Random(run_seed), root)
            try:
                run_in(outcome.scenario, trial)
            except Exception as error:  # noqa: BLE001 - every failure is counted and reported
                first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
                outcome.failures.append(f"run {number} (seed {run_seed}): {type(error).__name__}: {first}")
                log(f"{name} run {number} (seed {run_seed}) FAILED:\n{traceback.format_exc()}")
            finally:
                outcome.effective += trial.effective
                shutil.rmtree(root, ignore_errors=True)
            outcome.runs += 1
        outcome.seconds = time.monotonic() - started
        log(
            f"{name}: {outcome.runs} runs, {outcome.effective} effective, {len(outcome.failures)} failures, "
            f"{outcome.seconds:.0f} s"
        )
        outcomes.append(outcome)
    return outcomes


def results_markdown(outcomes: list[Outcome], runs: int, seed: int, when: datetime.datetime) -> str:
    lines = [
        f"Run on {when:%Y-%m-%d %H:%M} UTC with `scripts/reliability.sh --runs {runs} --seed {seed}` "
        f"on a shared 2-core VM: {sum(o.runs for o in outcomes)} runs, "
        f"{sum(len(o.failures) for o in outcomes)} failures.",
        "",
        "| scenario | kind | runs | effective | failures | seconds | what each run checks |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.scenario.name} | {o.scenario.kind} | {o.runs} | {o.effective} | {len(o.failures)} "
            f"| {o.seconds:.0f} | {o.scenario.checks} |"
        )
    failures = [f"* {o.scenario.name} {failure}" for o in outcomes for failure in o.failures]
    if failures:
        lines += ["", "Failures (repeat one with `--only NAME --seed S --runs 1` and its run's seed):", "", *failures]
    return "\n".join(lines)


def write_results(doc: Path, table: str) -> None:
    text = doc.read_text()
    pattern = re.compile(re.escape(RESULTS_BEGIN) + ".*?" + re.escape(RESULTS_END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{doc}: no results markers to write the table between")
    doc.write_text(pattern.sub(lambda _: f"{RESULTS_BEGIN}\n{table}\n{RESULTS_END}", text))


def load_scenarios() -> None:
    # Importing the scenario modules registers their scenarios.
    import tests.helpers.reliability_corruption  # noqa: F401
    import tests.helpers.reliability_crash  # noqa: F401
    import tests.helpers.reliability_faults  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    load_scenarios()
    parser = argparse.ArgumentParser(prog="scripts/reliability.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each scenario (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the whole campaign (default 1)")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        metavar="SCENARIO",
        help="run only this scenario (repeatable); the table is then printed, not written",
    )
    parser.add_argument("--kind", choices=("crash", "fault", "corruption"), help="run only scenarios of this kind")
    parser.add_argument("--no-write", action="store_true", help="print the table instead of writing the doc")
    options = parser.parse_args(argv)
    names = options.only or [name for name, s in SCENARIOS.items() if options.kind in (None, s.kind)]
    outcomes = run_campaign(names, options.runs, options.seed, log=lambda line: print(line, file=sys.stderr))
    table = results_markdown(outcomes, options.runs, options.seed, datetime.datetime.now(datetime.UTC))
    if options.only or options.kind or options.no_write:
        print(table)
    else:
        write_results(DOC, table)
        print(f"wrote the results into {DOC}")
    return 1 if any(o.failures for o in outcomes) else 0


if __name__ == "__main__":
    # Run as a script this file is `__main__`; the scenarios register in the module proper.
    from tests.helpers.reliability_campaign import main as campaign_main

    sys.exit(campaign_main())
