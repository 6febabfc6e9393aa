"""Benchmark of a game in shards: 1,000 stub teams at the workshop's peak, with 1 and 2 shards.

Not a test. Loopback only, bounded in time (about two minutes), stops by itself. On the
local PostgreSQL (a fresh database per run, dropped after), it plays the builtin workshop
game's peak phase (its rate and burst) to 1,000 stub team APIs (bench/customer_bench.py's,
in two processes of their own) with `game-server run --shard I/N --no-web` as real
processes: once with one shard, once with two. For each it counts the results scored and
stored per second (a round's results count when its request was sent inside the measured
window, after a warm-up), the rounds each shard sent and skipped, and the CPU time of each
shard process.

Then the next limit: the database's own write rate, measured in the same run. One, then
two processes write rounds through the game's write path (`writes.insert_requests` and
`writes.store_rounds`, a burst of rounds per transaction, each process its own shard and
half of the teams) as fast as PostgreSQL takes them, with no HTTP at all.

Prints a table and writes the "Shards" section of docs/PERFORMANCE.md.

    python bench/shard_bench.py [--teams 1000] [--seconds 20] [--no-write]
"""

import argparse
import contextlib
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from customer_bench import machine, stub_teams  # noqa: E402
from performance_doc import write_section  # noqa: E402

from game_server.play.scoring import Result, Score  # noqa: E402
from game_server.play.teams import hash_token  # noqa: E402
from game_server.scenario import gamefile  # noqa: E402
from game_server.storage import control, database, schema, writes  # noqa: E402

ADMIN_URL = os.environ.get(
    "GAME_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
WARM_UP = 4.0  # seconds after the start that are not measured
WRITE_SECONDS = 6.0  # the direct write benchmark's length per configuration


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


@contextlib.contextmanager
def fresh_database():
    """A new PostgreSQL database for one run; its URL. Dropped afterwards."""
    name = f"gs_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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


def play(url: str, n: int, ports: list[int], seconds: float, logs: Path) -> dict:
    """Play the peak with `n` shards for `seconds`; what was scored, stored and spent."""
    engine = database.make_engine(url)
    database.prepare_game(engine, gamefile.load_game_file(game_file(logs / "g.toml", seconds)))
    register(engine, ports)
    procs = start_shards(url, n, logs)
    try:
        started = control.apply(engine, "start", "bench")["started_at"]
        time.sleep(WARM_UP)
        cpu0, stored0 = [cpu_seconds(p.pid) for p in procs], stored(engine)
        time.sleep(seconds - WARM_UP)
        cpu = [cpu_seconds(p.pid) - c for p, c in zip(procs, cpu0, strict=True)]
        stored1 = stored(engine)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    low, high = started + WARM_UP, started + seconds
    return {
        "cpu": cpu,
        "window": high - low,
        "stored": stored1[0] - stored0[0],  # results committed in the window
        "answered": stored1[1] - stored0[1],  # of which answers in time (not failures)
        "per_shard": rounds_sent(engine, low, high),
        "skipped": [skipped(logs / f"shard{i}of{n}.log") for i in range(1, n + 1)],
    }


def stored(engine: sa.Engine) -> tuple[int, int]:
    """Results stored so far, and how many of them are answers (not failures)."""
    res = schema.results.c
    answered = sa.func.count().filter(res.outcome != "failed")
    with engine.connect() as conn:
        total, ok = conn.execute(sa.select(sa.func.count(), answered)).one()
    return int(total), int(ok)


def skipped(log: Path) -> int:
    """The rounds a shard skipped (it logs the count when it stops)."""
    found = re.findall(r"skipped_rounds=(\d+)", log.read_text())
    return int(found[-1]) if found else -1


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
            rounds.append(writes.ScoredRound(s, 0, 0.7, 0.7, results))
        with engine.begin() as conn:
            writes.insert_requests(conn, reqs, shard)
        with engine.begin() as conn:
            rows += writes.store_rounds(conn, rounds, shard=shard)
        seq += burst
    out.put(rows / (time.monotonic() - start))


def request_row(seq: int, now: float) -> writes.RequestRow:
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


def measure(args, tmp: Path) -> dict:
    """Both games (1 and 2 shards) on the same stubs, then the direct writes (1 and 2)."""
    numbers: dict = {"games": {}, "writes": {}}
    with (
        stub_teams(args.teams // 2) as ports_a,
        stub_teams(args.teams - args.teams // 2) as ports_b,
    ):
        ports = [*ports_a, *ports_b]
        for n in (1, 2):
            with fresh_database() as url:
                logs = tmp / f"shards{n}"
                logs.mkdir()
                numbers["games"][n] = play(url, n, ports, args.seconds, logs)
                print(f"{n} shard(s): {numbers['games'][n]}", flush=True)
    for n in (1, 2):
        with fresh_database() as url:
            numbers["writes"][n] = direct_writes(url, n, args.teams, WRITE_SECONDS, tmp)
            print(f"{n} writer(s): {numbers['writes'][n]:,.0f} result rows/s", flush=True)
    return numbers


def report(args, numbers: dict) -> str:
    """The table of both games and both write rates."""
    peak = peak_phase()
    offered = peak.rate * args.teams
    lines = [
        "| run | scored+stored results/s | answered in time /s | of the offered "
        "| rounds sent per shard (skipped) | CPU per shard (of a core) | results per CPU-second |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, g in numbers["games"].items():
        rate, ok = g["stored"] / g["window"], g["answered"] / g["window"]
        sent = " / ".join(
            f"{g['per_shard'].get(i, 0)} ({skipped_text(g['skipped'][i - 1])})"
            for i in range(1, n + 1)
        )
        cpu = " / ".join(f"{c / g['window']:.0%}" for c in g["cpu"])
        per_cpu = g["stored"] / max(sum(g["cpu"]), 1e-9)
        lines.append(
            f"| {n} shard{'s' if n > 1 else ''} | {rate:,.0f} | {ok:,.0f} | {rate / offered:.0%} "
            f"| {sent} of {peak.rate * g['window']:.0f} due | {cpu} | {per_cpu:,.0f} |"
        )
    for n, w in numbers["writes"].items():
        lines.append(
            f"| database alone, {n} writer{'s' if n > 1 else ''} | {w:,.0f} | — | — | — | — | — |"
        )
    return "\n".join(lines)


SECTION = """\
## Shards: 1,000 teams at the peak (`bench/shard_bench.py`)

Measured {when} with `make bench-shards` on {machine}; load average before the run
{load}. The builtin workshop game's peak phase ({rate:g} rounds/s in bursts of {burst}) to
{teams:,} stub team APIs on loopback (bench/customer_bench.py's stubs, in two processes),
so {offered:,.0f} results/s are asked for; PostgreSQL on the same machine (a fresh
database per run). Each game ran {seconds} s; the first {warm:g} s are not measured. The
shards are `game-server run --shard I/N --no-web`, real processes; results count when
they are committed inside the window ("answered in time": not a failure such as a
timeout); rounds sent are those started inside the window, with the rounds each shard
skipped in all (a loop more than a second behind its schedule skips, and logs it when it
stops; `?`: it did not stop within 30 s of SIGTERM and was killed). The
last two rows are the database alone: writer processes that commit bursts of rounds
through the game's write path (`writes.insert_requests`, `writes.store_rounds`), one
shard each, with no HTTP at all.

{table}

- **Per-process ceiling**: one shard scored and stored **{one:,.0f} results/s**
  ({ok1:,.0f} of them answers in time) of the {offered:,.0f} asked for; it used
  {cpu1:.0%} of a core.
- **Scale-out**: two shards stored **{two:,.0f} results/s, {scale}** one shard
  ({ok2:,.0f} answers in time), in the same run.
- **The database's write rate**: {w1:,.0f} result rows/s with one writer, {w2:,.0f} with
  two ({wscale:.2f}x), measured in the same run.

How far this goes. A shard is one Python process: its event loop sends, scores and hands
results to its database thread. At the peak each burst asks a shard for {burst} rounds to
each of its teams at once ({per_burst:,.0f} requests with one shard, every
{every:.2f} s); when that is more than the process gets through, rounds pile up and time
out, and it skips what it cannot start (the table: results stored, answers in time,
rounds skipped). Here one process stored {one:,.0f} results/s for {offered:,.0f} asked,
so {teams:,} teams at the workshop's peak need many shards, on machines of their own:
on this 2-core machine the two shards share the cores with the stub APIs and
PostgreSQL, so the scale-out above is a floor, not what two machines give. Whatever the
number of shards, every result is a row in one PostgreSQL database: at the write rate
measured above it stores at most about {db_teams:,.0f} teams at the peak ({wbest:,.0f}
rows/s / {rate:g} rounds/s); past that, more shards only queue in the database (the
writers' batches grow, then rounds are skipped and logged). The next steps then are the
database's: a dedicated machine with fast storage, `synchronous_commit = off` for the
game database (a crash may lose the last few hundred milliseconds, which void rounds
already tolerate), or COPY instead of INSERT for the results.
"""


def main() -> None:
    """Run both games and the write benchmark; print the table, write docs/PERFORMANCE.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0, help="each game's length")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/PERFORMANCE.md")
    args = parser.parse_args()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        numbers = measure(args, Path(tmp))
    table = report(args, numbers)
    print(table)
    peak, games, w = peak_phase(), numbers["games"], numbers["writes"]
    one = games[1]["stored"] / games[1]["window"]
    two = games[2]["stored"] / games[2]["window"]
    section = SECTION.format(
        when=time.strftime("%Y-%m-%d"),
        machine=machine(),
        load=load,
        rate=peak.rate,
        burst=peak.burst,
        teams=args.teams,
        offered=peak.rate * args.teams,
        seconds=f"{args.seconds:g}",
        warm=WARM_UP,
        table=table,
        one=one,
        per_burst=peak.burst * args.teams,
        every=peak.burst / peak.rate,
        ok1=games[1]["answered"] / games[1]["window"],
        cpu1=games[1]["cpu"][0] / games[1]["window"],
        two=two,
        scale=f"{two / one:.2f}x" if one else "against nothing stored by",
        ok2=games[2]["answered"] / games[2]["window"],
        w1=w[1],
        w2=w[2],
        wscale=w[2] / max(w[1], 1e-9),
        wbest=max(w.values()),
        db_teams=max(w.values()) / peak.rate,
    )
    if not args.no_write:
        write_section("Shards", section)
        print("written: docs/PERFORMANCE.md (Shards)")


if __name__ == "__main__":
    main()
