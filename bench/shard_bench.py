"""Benchmark of a game in shards: a shard's ceiling, then 1,000 stub teams with 1 and 2 shards.

Not a test. Loopback only, bounded in time (about six minutes), stops by itself. On the
local PostgreSQL (a fresh database per game, dropped after), it plays the builtin workshop
game's peak phase (its rate and burst) to stub team APIs (bench/stub_apis.py, in
two processes of their own) with `game-server run --shard I/N --no-web` as real processes:

1. the per-process ceiling: one shard, 100, 200, 400, ... teams until fewer than 99 % of
   the results due are answers in time, then a short bisection (a short game per step);
2. past the ceiling: one shard at 1.5x and 2x the teams it holds. It sheds whole rounds
   (play/shedding.py), so what it sends should still be answered in time (at least 95 %)
   and the results it stores per second stay near the ceiling's (at least 90 %): a slope;
3. the scale-out: 1,000 teams with one shard and with two, and again at the least load
   one shard failed at in the search (just past its ceiling).

For each game it counts the results of the rounds sent inside the measured window (after
a warm-up): scored and stored, and answered in time (not a failure), against those due
(rate x window x teams); the rounds each shard sent and skipped; the CPU time of each
shard, of the stub processes, and of the whole machine (the stubs share its cores).

Then the next limit: the database's own write rate, measured in the same run. One, then
two processes write rounds through the game's write path (`writes.insert_requests` and
`writes.store_rounds`, a burst of rounds per transaction, each process its own shard and
half of the teams) as fast as PostgreSQL takes them, with no HTTP at all.

Prints a table and writes the "Shards" section of docs/PERFORMANCE.md.

    python bench/shard_bench.py [--teams 1000] [--seconds 20] [--step-seconds 14] [--no-write]
    python bench/shard_bench.py --slope-only [--ceiling 300]   # 1 and 2 only (a few minutes)

`--slope-only` rewrites only the "past the ceiling" part of the section (between its
markers), with the ceiling game it measured as the anchor.

Here the search and the run; one game in shards is bench/shard_games.py, the database's
write rate bench/shard_writes.py, the section's text bench/shard_report.py.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stopping  # noqa: E402
from bench_storage import scratch_database  # noqa: E402
from performance_doc import write_section  # noqa: E402
from shard_games import ADMIN_URL, Games, holds  # noqa: E402
from shard_report import report, section, slope_block, write_slope  # noqa: E402
from shard_writes import direct_writes  # noqa: E402
from stub_apis import stub_teams  # noqa: E402

WRITE_SECONDS = 6.0  # the direct write benchmark's length per configuration
FIRST_STEP = 100  # teams at the ceiling search's first step (then doubled, then bisected)
BISECTIONS = 2
SLOPE = (1.5, 2.0)  # loads past the ceiling, as multiples of it


def slope(games: Games, best: int, seconds: float) -> None:
    """One shard at each multiple of its ceiling in SLOPE (teams rounded to tens)."""
    for factor in SLOPE:
        teams = min(round(best * factor / 10) * 10, len(games.ports))
        games.play(teams, 1, seconds, f"{factor:g}x ceiling")


def ceiling(games: Games, seconds: float) -> int:
    """The most teams one shard holds at the peak: doubling from FIRST_STEP, then bisection."""
    held, failed, teams = 0, None, min(FIRST_STEP, len(games.ports))
    while teams <= len(games.ports):
        if not holds(games.play(teams, 1, seconds, "ceiling")):
            failed = teams
            break
        held = teams
        if teams == len(games.ports):
            break
        teams = min(teams * 2, len(games.ports))
    if failed is None:
        return held
    for _ in range(BISECTIONS):
        teams = round((held + failed) / 2 / 10) * 10
        if teams in (held, failed):
            break
        if holds(games.play(teams, 1, seconds, "ceiling")):
            held = teams
        else:
            failed = teams
    return held


def loads(teams: int, steps: list[dict]) -> list[int]:
    """The scale-out's team counts: `teams`, and the least the search saw one shard fail at.

    Just past the ceiling is where a second shard should show most: one shard fails
    there, and two shards of half the teams each are well below it.
    """
    failed = [g["teams"] for g in steps if not holds(g) and g["teams"] < teams]
    return sorted({teams, min(failed)}) if failed else [teams]


def measure(args: argparse.Namespace, tmp: Path) -> dict:
    """The ceiling, the scale-out games (1 and 2 shards), then the direct writes (1 and 2)."""
    numbers: dict = {"writes": {}}
    stub_pids: list[int] = []
    with (
        stub_teams(args.teams // 2, stub_pids) as ports_a,
        stub_teams(args.teams - args.teams // 2, stub_pids) as ports_b,
    ):
        ports = [p for pair in zip(ports_a, ports_b, strict=False) for p in pair]
        ports += ports_b[len(ports_a) :]  # an odd count: the second process has one more
        games = Games(ports, stub_pids, tmp)  # interleaved: any N teams use both processes
        numbers["ceiling"] = ceiling(games, args.step_seconds)
        slope(games, numbers["ceiling"], args.step_seconds)
        for teams in loads(args.teams, games.played):
            for n in (1, 2):
                games.play(teams, n, args.seconds, "scale-out")
        numbers["games"] = games.played
    for n in (1, 2):
        with scratch_database(ADMIN_URL, str(tmp)) as url:
            numbers["writes"][n] = direct_writes(url, n, args.teams, WRITE_SECONDS, tmp)
            print(f"{n} writer(s): {numbers['writes'][n]:,.0f} result rows/s", flush=True)
    return numbers


def measure_slope(args: argparse.Namespace, tmp: Path) -> dict:
    """`--slope-only`: the ceiling (given, or searched) and the loads past it, one shard."""
    numbers: dict = {"writes": {}}
    stub_pids: list[int] = []
    teams = max(round(args.ceiling * max(SLOPE) / 10) * 10, 2) if args.ceiling else args.teams
    with (
        stub_teams(teams // 2, stub_pids) as ports_a,
        stub_teams(teams - teams // 2, stub_pids) as ports_b,
    ):
        ports = [p for pair in zip(ports_a, ports_b, strict=False) for p in pair]
        ports += ports_b[len(ports_a) :]
        games = Games(ports, stub_pids, tmp)
        if args.ceiling:
            games.play(args.ceiling, 1, args.step_seconds, "ceiling")
            numbers["ceiling"] = args.ceiling
        else:
            numbers["ceiling"] = ceiling(games, args.step_seconds)
        slope(games, numbers["ceiling"], args.step_seconds)
        numbers["games"] = games.played
    return numbers


def main() -> None:
    """Run the ceiling, the scale-out and the write benchmark; print, write PERFORMANCE.md."""
    stopping.on_sigterm_clean_up()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0, help="each scale-out game's length")
    parser.add_argument(
        "--step-seconds", type=float, default=14.0, help="each ceiling step's game length"
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/PERFORMANCE.md")
    parser.add_argument(
        "--slope-only", action="store_true", help="only the ceiling and 1.5x, 2x past it"
    )
    parser.add_argument(
        "--ceiling", type=int, default=0, help="with --slope-only: take this ceiling, no search"
    )
    parser.add_argument("--logs", default=None, help="keep the shards' logs under this dir")
    args = parser.parse_args()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    begun = time.monotonic()
    if args.slope_only:
        if args.logs:  # kept, to read why the rounds failed
            numbers = measure_slope(args, Path(tempfile.mkdtemp(dir=args.logs)))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                numbers = measure_slope(args, Path(tmp))
        block = slope_block(numbers, load, args.step_seconds)
        print(block)
        print(f"bench took {time.monotonic() - begun:.0f} s")
        if not args.no_write:
            write_slope(block)
            print("written: docs/PERFORMANCE.md (Shards, past the ceiling)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        numbers = measure(args, Path(tmp))
    text = section(args, numbers, load)
    print(report(numbers))
    print(f"bench took {time.monotonic() - begun:.0f} s")
    if not args.no_write:
        write_section("Shards", text)
        print("written: docs/PERFORMANCE.md (Shards)")


if __name__ == "__main__":
    main()
