"""The database's own write rate for bench/shard_bench.py: no HTTP, only the write path.

One, then two processes write rounds through the game's write path
(`writes.insert_requests` and `writes.store_rounds`, a burst of rounds per transaction,
each process its own shard and half of the teams) as fast as PostgreSQL takes them.
"""

import multiprocessing
import multiprocessing.queues
import multiprocessing.synchronize
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_storage import request_row  # noqa: E402
from shard_games import game_file, peak_phase, register  # noqa: E402

from game_server.common.records import RequestRow, Result, Score, ScoredRound  # noqa: E402
from game_server.scenario import gamefile  # noqa: E402
from game_server.storage import database, writes  # noqa: E402


def write_rounds(
    url: str,
    shard: int,
    n: int,
    teams: int,
    burst: int,
    go: multiprocessing.synchronize.Event,
    seconds: float,
    out: "multiprocessing.queues.Queue[float]",
) -> None:
    """One writer process: bursts of rounds through the game's write path, as fast as it goes."""
    engine = database.make_engine(url)
    mine = [t for t in range(1, teams + 1) if (t - 1) % n == shard - 1]
    seq, rows = 1, 0
    go.wait()  # every writer starts together
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        now = time.time()
        reqs: list[RequestRow] = []
        rounds: list[ScoredRound] = []
        for s in range(seq, seq + burst):
            reqs.append(request_row(s, now, 60.0, tag="w"))
            results = [Result(t, Score("correct", None, 1, 1, 200), 3.0) for t in mine]
            rounds.append(ScoredRound(s, 0, 0.7, 0.7, results))
        with engine.begin() as conn:
            writes.insert_requests(conn, reqs, shard)
        with engine.begin() as conn:
            rows += writes.store_rounds(conn, rounds, shard=shard)
        seq += burst
    out.put(rows / (time.monotonic() - start))


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
