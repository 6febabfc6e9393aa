"""The "Shards" section of docs/PERFORMANCE.md, from one run of bench/shard_bench.py.

The table of every game and of the database's write rates, the ceiling and scale-out
bullets, and the "past the ceiling" block (rewritten alone by `--slope-only`).
"""

import argparse
import math
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from performance_doc import (
    PERFORMANCE,  # noqa: E402
    machine,  # noqa: E402
)
from shard_games import (  # noqa: E402
    IN_TIME,
    STOP_SECONDS,
    WARM_UP,
    in_time,
    peak_phase,
    sent_in_time,
)

SLOPE_IN_TIME = 0.95  # of the results of the rounds sent, answered in time


SLOPE_STORED = 0.90  # results stored per second, of the ceiling game's


def skipped_text(count: int) -> str:
    """A shard's skipped rounds; `?` when it was killed before it could log them."""
    return "?" if count < 0 else str(count)


def write_slope(block: str) -> None:
    """Replace the "past the ceiling" block of docs/PERFORMANCE.md (between its markers)."""
    text = PERFORMANCE.read_text()
    pattern = re.compile(r"^<!-- slope: .*?^<!-- /slope -->", re.S | re.M)
    if not pattern.search(text):
        raise SystemExit("docs/PERFORMANCE.md has no slope block: run the whole bench once")
    PERFORMANCE.write_text(pattern.sub(lambda _: block, text, count=1))


def game_row(g: dict) -> str:
    """One game as a row of the table."""
    n, w = g["shards"], g["window"]
    sent = " / ".join(
        f"{g['per_shard'].get(i, 0)} ({skipped_text(g['skipped'][i - 1])})" for i in range(1, n + 1)
    )
    cpu = " / ".join(f"{c / w:.0%}" for c in g["cpu"])
    return (
        f"| {g['step']} | {g['teams']:,} | {n} | {g['due'] / w:,.0f} | {g['results'] / w:,.0f} "
        f"| {in_time(g):.1%} | {sent} of {g['due_rounds']} | {cpu} "
        f"| {g['stubs'] / w:.0%} | {g['busy'] / w:.2f} |"
    )


def report(numbers: dict) -> str:
    """The table of every game and both write rates."""
    lines = [
        "| step | teams | shards | results due /s | scored+stored /s | answered in time "
        "| rounds sent per shard (skipped) of due | CPU per shard (of a core) "
        "| CPU of the stubs | machine busy (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(game_row(g) for g in numbers["games"]),
    ]
    for n, w in numbers["writes"].items():
        writers = f"{n} writer{'s' if n > 1 else ''}"
        lines.append(f"| database alone | — | {writers} | — | {w:,.0f} | — | — | — | — | — |")
    return "\n".join(lines)


SECTION = """\
## Shards: a shard's ceiling and 1,000 teams at the peak (`bench/shard_bench.py`)

Measured {when} with `make bench-shards` on {machine}; load average before the run
{load}. The builtin workshop game's peak phase ({rate:g} rounds/s in bursts of {burst}) to
stub team APIs on loopback (bench/stub_apis.py, in two processes), so each
team is asked for {rate:g} results/s; PostgreSQL on the same machine (a fresh database per
game). The shards are `game-server run --shard I/N --no-web`, real processes. Counted: the
results of the rounds sent inside the measured window (after a {warm:g} s warm-up), scored
and stored, and of them the answers in time (not a failure such as a timeout), against
the results due (rate x window x teams); the rounds each shard sent in the window, with
those it skipped in all (`?`: it did not stop within {stop} s of SIGTERM and was killed);
the CPU each shard, the stub processes and the whole machine (anything else running
included) used in the window. **This
machine has {cores} cores, shared by the shards, the stub APIs and PostgreSQL**: the stubs'
CPU is in the table. "ceiling" steps are {step_seconds} s games with one shard (a load is
held when at least {held:.0%} of the results due are answers in time); "scale-out" games
last {seconds} s. The last two rows are the database alone: writer processes that commit
bursts of rounds through the game's write path (`writes.insert_requests`,
`writes.store_rounds`), one shard each, with no HTTP at all.

{table}

- **Per-process ceiling**: one shard holds **{best:,} teams** at the workshop's peak
  ({best_rate:,.0f} results/s scored and stored, {best_ok:.1%} answered in time), using
  {best_cpu:.0%} of a core while the stubs took {best_stubs:.0%}. It spends
  {ms_per:.3f} ms of CPU per result: on a core of its own, with the team APIs elsewhere,
  that is about {core_teams:,.0f} teams (an estimate from the CPU per result, not measured).
{scale}
- **The database's write rate**: {w1:,.0f} result rows/s with one writer, {w2:,.0f} with
  two ({wscale:.2f}x), measured in the same run: about {db_teams:,.0f} teams at the peak.

{past}

How far this goes. A shard is one Python process, one event loop that sends, scores and
hands results to its database thread, so a shard uses at most one core: here about
{best:,} teams each ({core_teams:,.0f} on a core of its own, by its CPU per result; keep a
margin: past it the shard sheds whole rounds), and a machine runs about one shard per
core. {teams:,} teams at the peak ask for
{offered:,.0f} results/s: about {shards_needed} shards on cores of their own, beside the
teams' APIs (on this {cores}-core machine the shards share the cores with the stubs and
PostgreSQL, so the two-shard rows above are a floor of what two machines give). Whatever
the number of shards, every result is a row in one PostgreSQL database, and that is the
next limit: at the {wbest:,.0f} rows/s measured here it stores about {db_teams:,.0f} teams at
the peak ({wbest:,.0f} rows/s / {rate:g} rounds/s); past that, more shards only queue in
the database (the writers' batches grow, then rounds are skipped and logged). The next
steps then are the database's: a dedicated machine with fast storage,
`synchronous_commit = off` for the game database (a crash may lose the last few hundred
milliseconds, which void rounds already tolerate), or COPY instead of INSERT for the
results.
"""


def scale_lines(numbers: dict) -> str:
    """The scale-out bullets: 2-shard / 1-shard rates at each load of the run."""
    by = {(g["teams"], g["shards"]): g for g in numbers["games"] if g["step"] == "scale-out"}
    lines = []
    for teams in sorted({t for t, _ in by}):
        one, two = by[(teams, 1)], by[(teams, 2)]
        r1, r2 = one["results"] / one["window"], two["results"] / two["window"]
        a1, a2 = one["answered"] / one["window"], two["answered"] / two["window"]
        lines.append(
            f"- **Scale-out at {teams:,} teams** ({teams * peak_phase().rate:,.0f} results/s "
            f"due): two shards stored {r2:,.0f} results/s, {ratio(r2, r1)} one shard's "
            f"{r1:,.0f}; answers in time {a2:,.0f}/s ({in_time(two):.1%}), {ratio(a2, a1)} "
            f"one shard's {a1:,.0f}/s ({in_time(one):.1%}), in the same run."
        )
    return "\n".join(lines)


def ratio(a: float, b: float) -> str:
    """`a / b` as a factor, or what it is against nothing."""
    return f"**{a / b:.2f}x**" if b else "against none for"


def slope_rows(numbers: dict) -> tuple[str, list[str]]:
    """The table of the ceiling game and the loads past it, and their verdicts."""
    games = numbers["games"]
    best = [g for g in games if g["step"] == "ceiling" and g["teams"] == numbers["ceiling"]]
    past = [g for g in games if g["step"].endswith("x ceiling")]
    if not best or not past:
        return "No load past the ceiling was measured.", []
    anchor = best[-1]
    base = anchor["results"] / anchor["window"]
    lines = [
        "| load | teams | results due /s "
        "| rounds sent in the window (overload skips in all) of due | scored+stored /s "
        "| of the ceiling's | answered in time, of the rounds sent |",
        "|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for g in [anchor, *past]:
        w, stored = g["window"], g["results"] / g["window"]
        load = "ceiling" if g is anchor else g["step"].split()[0]
        lines.append(
            f"| {load} | {g['teams']:,} | {g['due'] / w:,.0f} "
            f"| {g['per_shard'].get(1, 0)} ({g['overload'][0]}) of {g['due_rounds']} "
            f"| {stored:,.0f} | {stored / base:.0%} | {sent_in_time(g):.1%} |"
        )
        if g is not anchor:
            ok = sent_in_time(g) >= SLOPE_IN_TIME and stored >= SLOPE_STORED * base
            verdicts.append(
                f"at {load} ({g['teams']:,} teams) {sent_in_time(g):.1%} of what it sent was "
                f"answered in time and it stored {stored / base:.0%} of the ceiling's results/s: "
                + ("a slope" if ok else "**short of the goal**")
            )
    return "\n".join(lines), verdicts


SLOPE_TEXT = """<!-- slope: written by `bench/shard_bench.py` (also `--slope-only`) -->
Past the ceiling one shard sheds load instead of falling off a cliff (measured {when},
load average before {load}; {seconds:g} s games, one shard, the ceiling game re-measured
in the same run as the anchor). The loop admits a round only while the requests being
asked stay under a limit that follows what it gets done in time (play/shedding.py); the
rounds it cannot send are skipped whole, for every team alike, before they are sent, and
counted as "overload" on the board and in the metrics. The goal: at 1.5x and 2x the
ceiling, at least {in_time:.0%} of the results of the rounds sent answered in time, and
at least {stored:.0%} of the ceiling's results stored per second.

{table}

{verdicts}
<!-- /slope -->"""


def slope_block(numbers: dict, load: str, seconds: float) -> str:
    """The "past the ceiling" block of the section, between its markers."""
    table, verdicts = slope_rows(numbers)
    return SLOPE_TEXT.format(
        when=time.strftime("%Y-%m-%d"),
        load=load,
        seconds=seconds,
        in_time=SLOPE_IN_TIME,
        stored=SLOPE_STORED,
        table=table,
        verdicts="\n".join(f"- {v[0].upper()}{v[1:]}." for v in verdicts),
    )


def section(args: argparse.Namespace, numbers: dict, load: str) -> str:
    """The "Shards" section of docs/PERFORMANCE.md from one run's numbers."""
    peak, w, best = peak_phase(), numbers["writes"], numbers["ceiling"]
    at = [g for g in numbers["games"] if g["step"] == "ceiling" and g["teams"] == best]
    g = at[-1] if at else numbers["games"][0]
    ms_per = 1000 * g["cpu"][0] / max(g["results"], 1)
    core_teams = 1000 / ms_per / peak.rate
    wbest = max(w.values())
    return SECTION.format(
        when=time.strftime("%Y-%m-%d"),
        machine=machine(),
        load=load,
        rate=peak.rate,
        burst=peak.burst,
        warm=WARM_UP,
        stop=STOP_SECONDS,
        cores=os.cpu_count(),
        step_seconds=f"{args.step_seconds:g}",
        seconds=f"{args.seconds:g}",
        held=IN_TIME,
        table=report(numbers),
        best=best,
        best_rate=g["results"] / g["window"] if at else 0.0,
        best_ok=in_time(g) if at else 0.0,
        best_cpu=g["cpu"][0] / g["window"],
        best_stubs=g["stubs"] / g["window"],
        ms_per=ms_per,
        core_teams=core_teams,
        scale=scale_lines(numbers),
        past=slope_block(numbers, load, args.step_seconds),
        teams=args.teams,
        offered=peak.rate * args.teams,
        shards_needed=math.ceil(args.teams / max(core_teams, 1)),
        w1=w[1],
        w2=w[2],
        wscale=w[2] / max(w[1], 1e-9),
        wbest=wbest,
        db_teams=wbest / peak.rate,
    )
