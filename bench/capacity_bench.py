"""Benchmark of a server's capacity: how many starter APIs one machine holds at the peak.

Not a test. Loopback only, bounded in time, stops by itself. On this machine it runs N real
participant starters (`python main.py`, each its own process and port, database logging on
as the starter does by default, each serving the model the starter's recipe trains) and the
game server (`game-server run` on a SQLite game database), plays the workshop's peak phase
(30 rounds/s in bursts of 20, shortened to `--seconds`), and finds the largest N with no
failed request and a p95 latency under 500 ms: first doubling N, then bisecting.

It does so twice in the same run: for the OLD starter (the anchor: `participant_starter/`
as committed at OLD_COMMIT, before micro-batching, extracted with `git archive`) and for
the starter of this checkout. Then it profiles one API of each under load with py-spy
(what its threads spend their time on) and writes the "Capacity" section of
docs/PERFORMANCE.md, and the new starter's capacity into game_server/common/sizing.py (BURST: what
the peak's bursts need) with docs/INSTRUCTOR.md's sizing table.

    python bench/capacity_bench.py [--seconds 20] [--budget 480] [--no-write]
"""

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import capacity_fleet as fleet_mod  # beside this file
import capacity_profile
import performance_doc
import sizing_table
import stopping

# The starter before micro-batching (the commit this work started from): the anchor.
OLD_COMMIT = "282832772576373549e304843740e841ccfc61e6"
P95_LIMIT_MS = 500.0
AIM_TEAMS = 20  # issue 23: the new starter on this 2-core machine


def passes(trial: dict) -> bool:
    """The capacity rule: no failed request and p95 under the limit."""
    return trial["failed"] == 0 and trial["p95"] < P95_LIMIT_MS and trial["results"] > 0


class Search:
    """The largest passing N: doubling from `start`, then bisecting (to within 10 %)."""

    def __init__(self, label: str, start: int, limit: int):
        """A search for `label`'s starter, trying at most `limit` teams."""
        self.label, self.start, self.limit = label, max(1, start), limit
        self.low, self.high = 0, None  # the largest N that passed, the smallest that failed
        self.trials: list[dict] = []

    def next(self) -> int | None:
        """The number of teams to try next; None when the search is done."""
        if self.high is None:  # doubling
            if self.low >= self.limit:
                return None
            return self.start if self.low == 0 else min(self.limit, self.low * 2)
        if self.low == 0:  # even the start failed: halving down
            return None if self.high <= 1 else self.high // 2
        close_enough = self.high - self.low <= max(1, self.low // 10)
        return None if close_enough else (self.low + self.high) // 2

    def record(self, trial: dict) -> None:
        """One game's result."""
        self.trials.append(trial)
        if passes(trial):
            self.low = max(self.low, trial["teams"])
        else:
            self.high = trial["teams"] if self.high is None else min(self.high, trial["teams"])


def search_both(fleets: dict, searches: dict, workdir: Path, args: argparse.Namespace) -> None:
    """Both searches in turns, one game each, so that both see the machine alike."""
    deadline = time.monotonic() + args.budget
    while time.monotonic() < deadline:
        todo = [(label, s.next()) for label, s in searches.items() if s.next() is not None]
        if not todo:
            return
        for label, count in todo:
            trial = fleet_mod.play(fleets[label], count, workdir, args.seconds)
            searches[label].record(trial)
            print(f"  {label}: {fleet_mod.summary(trial)}", flush=True)
    print("  (the time budget ran out: the capacities are lower bounds)", flush=True)


def measure(folders: dict, workdir: Path, args: argparse.Namespace) -> dict:
    """Both capacity searches, then a profile of one API of each at its capacity."""
    fleets = {label: fleet_mod.Fleet(folder, workdir, label) for label, folder in folders.items()}
    searches = {
        "old": Search("old", 2, args.max_teams),
        "new": Search("new", args.new_start, args.max_teams),
    }
    try:
        search_both(fleets, searches, workdir, args)
        runs = {}
        for label, search in searches.items():
            count = max(1, search.low)
            print(f"  {label}: profiling one API at {count} teams ...", flush=True)
            profile = capacity_profile.profile_trial(fleets[label], count, workdir, args.seconds)
            print(f"  {label}: {fleet_mod.summary(profile['trial'])}", flush=True)
            runs[label] = {
                "label": label,
                "capacity": search.low,
                "trials": search.trials,
                "profile": profile,
            }
    finally:
        for fleet in fleets.values():
            fleet.stop()
    return runs


def trial_rows(run: dict) -> str:
    """A run's trials as Markdown table rows."""
    rows = []
    for t in run["trials"]:
        verdict = "pass" if passes(t) else "**fail**"
        rows.append(
            f"| {run['label']} | {t['teams']} | {t['results']:,} | {t['failed']} | "
            f"{t['p50']:.0f} | {t['p95']:.0f} | {t['p99']:.0f} | {verdict} |"
        )
    return "\n".join(rows)


def report(args: argparse.Namespace, old: dict, new: dict) -> str:
    """The Markdown section."""
    if old["capacity"]:
        ratio = new["capacity"] / old["capacity"]
        verdict = f"**{ratio:.1f}x** the old starter's capacity"
        verdict += " (aim of issue 16: at least 3x): " + ("met." if ratio >= 3 else "not met.")
        verdict += f" Aim of issue 23: at least {AIM_TEAMS} APIs on this machine: "
        verdict += "met." if new["capacity"] >= AIM_TEAMS else "not met."
    else:
        verdict = "The old starter failed even with one team on this run; aim not measurable."
    return f"""## Capacity: starter APIs one server holds at the peak (`bench/capacity_bench.py`)

Measured on {time.strftime("%Y-%m-%d")} ({os.cpu_count()} cores, Python
{platform.python_version()}), both starters in the same run: N real starter APIs
(`python main.py` with its default settings, each its own process and port, database
logging to its own SQLite file) and `game-server run` (SQLite) on the same machine, playing
the workshop's peak phase ({args.seconds:.0f} s at 30 rounds/s in bursts of 20, 5 % messy
requests, the shift in force). Capacity: the largest N with **no failed request and p95
under {P95_LIMIT_MS:.0f} ms** (doubling N, then bisecting; the two starters' games take
turns, so both see the machine alike). The anchor is the starter as committed at
`{OLD_COMMIT[:10]}` (before micro-batching), taken with `git archive`.

| starter | capacity N |
|---|---|
| old (one-row pandas frame through the `Pipeline` per request) | **{old["capacity"]}** |
| new (a burst in one batch, `BATCH_WINDOW_MS=5`; 32 threads, not 8) | **{new["capacity"]}** |

{verdict}

Every game of the search (latencies in ms, over every result of every team):

| starter | teams | results | failed | p50 | p95 | p99 | verdict |
|---|---|---|---|---|---|---|---|
{trial_rows(old)}
{trial_rows(new)}

### What limits it (py-spy on one API during a game at its capacity)

{capacity_profile.finding(old["profile"], "old")}

{capacity_profile.finding(new["profile"], "new")}

{capacity_profile.EXPLANATION}
"""


def main() -> None:
    """Prepare both starters, search both capacities, profile, print and write."""
    stopping.on_sigterm_clean_up()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each game")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for the searches")
    parser.add_argument("--max-teams", type=int, default=64, help="the most APIs to start")
    parser.add_argument("--new-start", type=int, default=4, help="the new search's first N")
    parser.add_argument("--no-write", action="store_true", help="print only, write no file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="capacity-") as tmp:
        workdir = Path(tmp)
        print("training the starter's model ...", flush=True)
        model = fleet_mod.train_model(workdir / "model.pkl")
        old_folder = fleet_mod.starter_folder(workdir / "old-starter", model, OLD_COMMIT)
        new_folder = fleet_mod.starter_folder(workdir / "new-starter", model)
        folders = {"old": old_folder, "new": new_folder}
        runs = measure(folders, workdir, args)
    old, new = runs["old"], runs["new"]
    section = report(args, old, new)
    print(section)
    if not args.no_write:
        performance_doc.write_section("Capacity", section)
        if new["capacity"]:  # the peak's bursts, for the sizing table
            sizing_table.write_burst(new["capacity"], os.cpu_count() or 1)
        print("written to docs/PERFORMANCE.md, game_server/common/sizing.py and docs/INSTRUCTOR.md")


if __name__ == "__main__":
    main()
