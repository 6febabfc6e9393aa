"""Benchmark the game loop's storage path: `play.writer.DbWriter` (sent, then scored rounds).

Synthetic rounds of 100 results each (no HTTP: the customer's benchmark measures that),
written the way the game loop writes them: each round's request committed as `sent`, then
its scored results, totals and status in the batched transaction of the writer thread.
As in the game, the same thread runs the reveal step every second (`storage.reveal`: the
public totals of the rounds whose label became visible); labels are visible after
`--label-delay` seconds, so the reveal passes about a second's rounds each time.

    .venv/bin/python bench/bench_storage.py [--db URL] [--teams 100] [--seconds 10]

Prints the sustained rate (as many rounds in flight as `--in-flight`), the latency of
one round's two writes at the workshop's peak rate (30 rounds/s), and the reveal steps'
time.
"""

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from game_server.common.records import RequestRow, Result, Score, ScoredRound
from game_server.play import teams
from game_server.play.writer import DbWriter
from game_server.storage import database, games, reveal


@contextlib.contextmanager
def scratch_database(url: str | None, tmp: str) -> Iterator[str]:
    """A temporary SQLite file, or a scratch database created (and dropped) on `url`'s server."""
    if url is None or url.startswith("sqlite"):
        yield f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        return
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def setup(url: str, n_teams: int) -> sa.Engine:
    """A fresh game database with `n_teams` teams and one phase."""
    engine = database.make_engine(url)
    database.init_db(engine)
    with engine.begin() as conn:
        games.configure_game(
            conn,
            "bench",
            "-",
            {},
            [
                {
                    "name": "p",
                    "kind": "peak",
                    "duration": 1e6,
                    "rate": 30.0,
                    "burst": 1,
                    "description": "",
                }
            ],
        )
    for i in range(n_teams):
        teams.add_team(engine, f"team{i:03d}", f"http://127.0.0.1:{9000 + i}/predict")
    return engine


LABEL_DELAY = 1.0  # seconds; the default of --label-delay


def request_row(
    seq: int, now: float, label_delay: float = LABEL_DELAY, tag: str = "b"
) -> RequestRow:
    """A request as the loop stores it (one applicant, the same for every benchmark)."""
    return {
        "seq": seq,
        "request_id": f"{tag}-{seq:07d}",
        "phase_index": 0,
        "features": {"age": 41, "income": 52000.0, "region": "north", "loan_amount": 12000},
        "oddities": [],
        "label": seq % 2,
        "p_default": 0.3,
        "oracle_points": 0.7,
        "baseline_points": 0.7,
        "sent_at": now,
        "label_visible_at": now + label_delay,
    }


def round_of(
    seq: int, n_teams: int, label_delay: float = LABEL_DELAY
) -> tuple[RequestRow, list[Result]]:
    """A request row and its scored results (a mix of outcomes)."""
    row = request_row(seq, time.time(), label_delay)
    results = []
    for t in range(1, n_teams + 1):
        kind = (seq + t) % 10
        if kind < 6:
            results.append(Result(t, Score("correct", None, 1, 1, 200), 3.0))
        elif kind < 9:
            results.append(Result(t, Score("wrong", None, 0, 0, 200), 3.0))
        else:
            results.append(Result(t, Score("failed", "timeout", None, -1), 1000.0))
    return row, results


async def one_round(writer: DbWriter, seq: int, n_teams: int, label_delay: float) -> float:
    """Both writes of one round; seconds taken."""
    row, results = round_of(seq, n_teams, label_delay)
    start = time.perf_counter()
    await writer.sent(row)
    await writer.scored(ScoredRound(seq, 0, 0.7, 0.7, results))
    return time.perf_counter() - start


def timed_reveal(conn: sa.Connection) -> tuple[int, float]:
    """One reveal step (on the writer thread): rounds passed, seconds taken."""
    start = time.perf_counter()
    return reveal.reveal_labels(conn, time.time()), time.perf_counter() - start


async def reveals(writer: DbWriter, steps: list[tuple[int, float]]) -> None:
    """The game loop's reveal step, every second on the writer thread, until cancelled."""
    while True:
        await asyncio.sleep(1.0)
        steps.append(await writer.transaction(timed_reveal))


async def measure(
    engine: sa.Engine,
    n_teams: int,
    seconds: float,
    in_flight: int,
    label_delay: float = LABEL_DELAY,
) -> dict:
    """Sustained results/s with `in_flight` concurrent rounds; latency at 30 rounds/s."""
    writer = DbWriter(engine)
    writer.start()
    steps: list[tuple[int, float]] = []
    revealing = asyncio.create_task(reveals(writer, steps))
    seq = 0

    def next_seq() -> int:
        nonlocal seq
        seq += 1
        return seq

    async def worker(end: float) -> None:
        while time.perf_counter() < end:
            await one_round(writer, next_seq(), n_teams, label_delay)

    start = time.perf_counter()
    first = seq
    await asyncio.gather(*(worker(start + seconds) for _ in range(in_flight)))
    rate = (seq - first) * n_teams / (time.perf_counter() - start)

    latencies = []
    tasks = []
    for _ in range(int(30 * seconds)):
        tasks.append(asyncio.create_task(one_round(writer, next_seq(), n_teams, label_delay)))
        await asyncio.sleep(1 / 30)
    latencies = sorted(await asyncio.gather(*tasks))
    revealing.cancel()
    await writer.close()
    times = sorted(t for n, t in steps if n)
    return {
        "results_per_s": rate,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(0.95 * len(latencies))] * 1000,
        "reveal_steps": len(times),
        "reveal_rounds": sum(n for n, _ in steps),
        "reveal_p50_ms": statistics.median(times) * 1000 if times else 0.0,
        "reveal_max_ms": times[-1] * 1000 if times else 0.0,
    }


def main() -> None:
    """Run on the given database, or on a temporary SQLite file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", default=None, help="database URL (default: a temporary SQLite file)"
    )
    parser.add_argument("--teams", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--label-delay", type=float, default=LABEL_DELAY)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.db, tmp) as url:
        engine = setup(url, args.teams)
        numbers = asyncio.run(
            measure(engine, args.teams, args.seconds, args.in_flight, args.label_delay)
        )
        engine.dispose()
    print(
        f"{engine.dialect.name}: {numbers['results_per_s']:,.0f} results/s sustained "
        f"({args.in_flight} rounds in flight, {args.teams} teams); at 30 rounds/s one round's "
        f"two writes take {numbers['p50_ms']:.1f} ms median, {numbers['p95_ms']:.1f} ms p95; "
        f"{numbers['reveal_steps']} reveal steps passed {numbers['reveal_rounds']:,} rounds, "
        f"{numbers['reveal_p50_ms']:.1f} ms median, {numbers['reveal_max_ms']:.1f} ms max"
    )


if __name__ == "__main__":
    main()
