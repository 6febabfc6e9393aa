"""Benchmark of a game in shards: a shard's ceiling, then 1,000 stub teams with 1 and 2 shards.

Not a test. Loopback only, bounded in time (about six minutes), stops by itself. On the
local PostgreSQL (a fresh database per game, dropped after), it plays the builtin workshop
game's peak phase (its rate and burst) to stub team APIs (bench/customer_bench.py's, in
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
"""

import argparse
import math
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stopping  # noqa: E402
from bench_storage import scratch_database  # noqa: E402
from customer_bench import machine, stub_teams  # noqa: E402
from performance_doc import PERFORMANCE, write_section  # noqa: E402

from game_server.records import RequestRow, Result, Score, ScoredRound  # noqa: E402
from game_server.scenario import gamefile  # noqa: E402
from game_server.storage import control, database, schema, writes  # noqa: E402
from game_server.storage.teams import hash_token  # noqa: E402

ADMIN_URL = os.environ.get(
    "GAME_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
WARM_UP = 4.0  # seconds after the start that are not measured
WRITE_SECONDS = 6.0  # the direct write benchmark's length per configuration
IN_TIME = 0.99  # a shard holds a load when this share of the results due are answers in time
FIRST_STEP = 100  # teams at the ceiling search's first step (then doubled, then bisected)
BISECTIONS = 2
SLOPE = (1.5, 2.0)  # loads past the ceiling, as multiples of it
SLOPE_IN_TIME = 0.95  # of the results of the rounds sent, answered in time
SLOPE_STORED = 0.90  # results stored per second, of the ceiling game's
STOP_SECONDS = 20  # a shard that has not stopped this long after SIGTERM is killed


def peak_phase() -> gamefile.Phase:
    """The builtin workshop game's busiest phase (its rate and burst are the bench's)."""
    workshop = gamefile.load_game_file(gamefile.game_path("workshop"))
    return max(workshop.phases, key=lambda p: p.rate)


def game_file(path: Path, seconds: float) -> Path:
    """A one-phase game file: the workshop's peak phase for `seconds` (and a spare one)."""
    peak = peak_phase()
    text = f"""[game]
name = "bench: shards"
seed = 1
label_delay = 60
timeout = 1.0
allowed_hosts = ["127.0.0.1"]

[[phases]]
name = "peak traffic"
kind = "peak"
duration = {seconds + 60}
rate = {peak.rate}
burst = {peak.burst}
"""
    path.write_text(text)
    return path


def register(engine: sa.Engine, ports: list[int]) -> None:
    """One team per stub port (rows written directly: 1,000 `teams add` take a while)."""
    now = time.time()
    rows = [
        {
            "name": f"team{i:04d}",
            "url": f"http://127.0.0.1:{port}/predict",
            "protocol": "native",
            "token_hash": hash_token(f"bench-{i}"),
            "active": True,
            "created_at": now,
        }
        for i, port in enumerate(ports)
    ]
    with engine.begin() as conn:
        conn.execute(schema.teams.insert(), rows)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores; Linux /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def start_shards(url: str, n: int, logs: Path) -> list[subprocess.Popen]:
    """`game-server run --shard I/N --no-web` for every I; waits until each loop runs."""
    procs = []
    for i in range(1, n + 1):
        log = logs / f"shard{i}of{n}.log"
        cmd = [sys.executable, "-m", "game_server", "--db", url, "run", "--shard", f"{i}/{n}"]
        procs.append(subprocess.Popen([*cmd, "--no-web"], stderr=log.open("w")))
    end = time.monotonic() + 60
    for i in range(1, n + 1):
        while "game loop started" not in (logs / f"shard{i}of{n}.log").read_text():
            if time.monotonic() > end or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"shard {i}/{n} did not start: see {logs}")
            time.sleep(0.1)
    return procs


def stop_shards(procs: list[subprocess.Popen]) -> None:
    """SIGTERM every shard (they store their rounds in flight), then wait; kill laggards."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    end = time.monotonic() + STOP_SECONDS
    for p in procs:
        try:
            p.wait(max(end - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def usage(procs: list[subprocess.Popen], stub_pids: list[int]) -> dict:
    """CPU seconds so far: each shard, the stubs together, the whole machine."""
    return {
        "cpu": [cpu_seconds(p.pid) for p in procs],
        "stubs": sum(cpu_seconds(pid) for pid in stub_pids),
        "busy": machine_busy(),
    }


def spent(before: dict, after: dict) -> dict:
    """The CPU seconds between two `usage` readings."""
    return {
        "cpu": [b - a for a, b in zip(before["cpu"], after["cpu"], strict=True)],
        "stubs": after["stubs"] - before["stubs"],
        "busy": after["busy"] - before["busy"],
    }


def play(url: str, n: int, ports: list[int], seconds: float, logs: Path, stub_pids) -> dict:
    """Play the peak with `n` shards to one team per port for `seconds`; what it did and cost."""
    engine = database.make_engine(url)
    database.prepare_game(engine, gamefile.load_game_file(game_file(logs / "g.toml", seconds)))
    register(engine, ports)
    procs = start_shards(url, n, logs)
    try:
        started = control.apply(engine, "start", "bench")["started_at"]
        low, high, due_rounds = window_of(started, seconds)
        time.sleep(max(low - time.time(), 0))
        before = usage(procs, stub_pids)
        time.sleep(max(high - time.time(), 0))
        cost = spent(before, usage(procs, stub_pids))
    finally:
        stop_shards(procs)
    window = high - low
    results, answered = results_of(engine, low, high)
    per_shard = rounds_sent(engine, low, high)
    engine.dispose()
    return {
        "teams": len(ports),
        "shards": n,
        "window": window,
        "due": due_rounds * len(ports),
        "due_rounds": due_rounds,
        "results": results,  # scored and stored, of the rounds sent in the window
        "answered": answered,  # of which answers in time (not failures)
        "per_shard": per_shard,
        "skipped": [skipped(logs / f"shard{i}of{n}.log") for i in range(1, n + 1)],
        "overload": [overloaded(logs / f"shard{i}of{n}.log") for i in range(1, n + 1)],
        **cost,
    }


def window_of(started: float, seconds: float) -> tuple[float, float, int]:
    """The measured window [low, high) after the warm-up, and the rounds due in it.

    Its ends fall half-way between two bursts, so a burst sent a little late still counts
    in the window it was due in, and the rounds due are whole bursts.
    """
    peak = peak_phase()
    interval = peak.burst / peak.rate
    first = math.ceil(WARM_UP / interval) + 0.5
    bursts = int((seconds - first * interval) / interval)
    low = started + first * interval
    return low, low + bursts * interval, bursts * peak.burst


def results_of(engine: sa.Engine, low: float, high: float) -> tuple[int, int]:
    """Results stored of the rounds sent in [low, high), and how many are answers in time."""
    res, rs = schema.results.c, schema.round_shards.c
    window = sa.select(rs.seq).where(rs.sent_at >= low, rs.sent_at < high).distinct()
    answered = sa.func.count().filter(res.outcome != "failed")
    query = sa.select(sa.func.count(), answered).where(res.seq.in_(window))
    with engine.connect() as conn:
        total, ok = conn.execute(query).one()
    return int(total), int(ok)


def skipped(log: Path) -> int:
    """The rounds a shard skipped (it logs the count when it stops)."""
    found = re.findall(r"skipped_rounds=(\d+)", log.read_text())
    return int(found[-1]) if found else -1


def overloaded(log: Path) -> str:
    """The rounds a shard skipped for overload (`?` when it was killed before logging it)."""
    found = re.findall(r"skipped_by=\S*?overload:(\d+)", log.read_text())
    return found[-1] if found else "?"


def sent_in_time(g: dict) -> float:
    """Of the results of the rounds sent in the window, the share answered in time."""
    sent = sum(g["per_shard"].values()) * g["teams"] // g["shards"] if g["shards"] else 0
    return g["answered"] / sent if sent else 0.0


def slope(games: "Games", best: int, seconds: float) -> None:
    """One shard at each multiple of its ceiling in SLOPE (teams rounded to tens)."""
    for factor in SLOPE:
        teams = min(round(best * factor / 10) * 10, len(games.ports))
        games.play(teams, 1, seconds, f"{factor:g}x ceiling")


def skipped_text(count: int) -> str:
    """A shard's skipped rounds; `?` when it was killed before it could log them."""
    return "?" if count < 0 else str(count)


def rounds_sent(engine: sa.Engine, low: float, high: float) -> dict[int, int]:
    """Each shard's rounds sent in [low, high)."""
    rs = schema.round_shards.c
    with engine.connect() as conn:
        return dict(
            conn.execute(
                sa.select(rs.shard, sa.func.count())
                .where(rs.sent_at >= low, rs.sent_at < high)
                .group_by(rs.shard)
            ).all()
        )


def in_time(g: dict) -> float:
    """The share of the results due that were answers in time."""
    return g["answered"] / g["due"] if g["due"] else 0.0


def holds(g: dict) -> bool:
    """Whether the shard(s) held the load: (nearly) every result due answered in time."""
    return in_time(g) >= IN_TIME


def write_rounds(url: str, shard: int, n: int, teams: int, burst: int, go, seconds: float, out):
    """One writer process: bursts of rounds through the game's write path, as fast as it goes."""
    engine = database.make_engine(url)
    mine = [t for t in range(1, teams + 1) if (t - 1) % n == shard - 1]
    seq, rows = 1, 0
    go.wait()  # every writer starts together
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        now = time.time()
        reqs, rounds = [], []
        for s in range(seq, seq + burst):
            reqs.append(request_row(s, now))
            results = [Result(t, Score("correct", None, 1, 1, 200), 3.0) for t in mine]
            rounds.append(ScoredRound(s, 0, 0.7, 0.7, results))
        with engine.begin() as conn:
            writes.insert_requests(conn, reqs, shard)
        with engine.begin() as conn:
            rows += writes.store_rounds(conn, rounds, shard=shard)
        seq += burst
    out.put(rows / (time.monotonic() - start))


def request_row(seq: int, now: float) -> RequestRow:
    """A request as the loop stores it (the direct write benchmark's)."""
    return {
        "seq": seq,
        "request_id": f"w-{seq:07d}",
        "phase_index": 0,
        "features": {"age": 41, "income": 52000.0, "region": "north", "loan_amount": 12000},
        "oddities": [],
        "label": seq % 2,
        "p_default": 0.3,
        "oracle_points": 0.7,
        "baseline_points": 0.7,
        "sent_at": now,
        "label_visible_at": now + 60,
    }


def direct_writes(url: str, n: int, teams: int, seconds: float, tmp: Path) -> float:
    """Result rows per second that `n` writer processes commit together (a fresh game)."""
    engine = database.make_engine(url)
    database.prepare_game(engine, gamefile.load_game_file(game_file(tmp / "w.toml", 1)))
    register(engine, list(range(20000, 20000 + teams)))
    ctx = multiprocessing.get_context("spawn")
    out, go = ctx.Queue(), ctx.Event()
    burst = peak_phase().burst
    procs = [
        ctx.Process(target=write_rounds, args=(url, i, n, teams, burst, go, seconds, out))
        for i in range(1, n + 1)
    ]
    for p in procs:
        p.start()
    time.sleep(3.0)  # the writers import and connect, then wait for `go`
    go.set()
    rate = sum(out.get(timeout=seconds + 120) for _ in procs)
    for p in procs:
        p.join(30)
    return rate


class Games:
    """Plays games against one set of stubs, each on a fresh database; keeps them all."""

    def __init__(self, ports: list[int], stub_pids: list[int], tmp: Path):
        """The stubs' ports (one team each, the first `teams` of them are used)."""
        self.ports, self.stub_pids, self.tmp = ports, stub_pids, tmp
        self.played: list[dict] = []

    def play(self, teams: int, shards: int, seconds: float, step: str) -> dict:
        """One game; printed as it ends."""
        with scratch_database(ADMIN_URL, str(self.tmp)) as url:
            logs = self.tmp / f"game{len(self.played)}"
            logs.mkdir()
            g = play(url, shards, self.ports[:teams], seconds, logs, self.stub_pids)
        g["step"] = step
        self.played.append(g)
        print(
            f"{step}: {teams} teams, {shards} shard(s): {in_time(g):.1%} in time, {g}", flush=True
        )
        return g


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
    for _ in range(BISECTIONS if failed else 0):
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


def measure(args, tmp: Path) -> dict:
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


def measure_slope(args, tmp: Path) -> dict:
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
stub team APIs on loopback (bench/customer_bench.py's stubs, in two processes), so each
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


def section(args, numbers: dict, load: str) -> str:
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
