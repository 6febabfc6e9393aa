"""Benchmark `GET /api/leaderboard` as the stored results grow, and the page's JS heap.

100 teams; the database is filled to 10k, 100k and 1M stored results (bulk inserts
through `writes.store_rounds`, so the running totals stay consistent); the app is served
by `game-server web --workers N` on 127.0.0.1 and, at each size, `wrk` (Debian's package)
loads it with 50 concurrent connections for a bounded time, alternately with its floor:
the same server answering a fixed JSON document of the same size (`floor_server.py`,
started in the same run). The ratio of the two p99s is the result. Then headless
Chromium renders N leaderboard and chart updates through the page's own functions and
the JS heap is read after garbage collection. Writes the "Leaderboard" section of
docs/PERFORMANCE.md.

    .venv/bin/python bench/leaderboard_bench.py [--db URL] [--seconds 10] [--runs 3]
        [--workers 2] [--sizes 10000,100000,1000000] [--no-write]
"""

import argparse
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import performance_doc  # noqa: E402
import stopping  # noqa: E402
from bench_storage import scratch_database  # noqa: E402
from floor_server import medians, run_wrk, serve_floor, serve_game  # noqa: E402

from game_server.common.records import (  # noqa: E402
    RequestRow,  # noqa: E402
    Result,
    Score,
    ScoredRound,
)
from game_server.play import teams  # noqa: E402
from game_server.processes.webserver import WEB_THREADS  # noqa: E402
from game_server.storage import control, database, games, reveal, standings, writes  # noqa: E402
from game_server.storage import teams as registry  # noqa: E402

# The goal: the leaderboard's p99 within this factor of the floor's, same run.
RATIO_GOAL = 1.5

ROOT = Path(__file__).resolve().parent.parent
PERFORMANCE = ROOT / "docs" / "PERFORMANCE.md"
SIZES = (10_000, 100_000, 1_000_000)
TEAMS = 100
CHUNK = 200  # rounds per transaction while filling
OUTCOMES = ("correct", "correct", "wrong", "failed")


def setup(url: str) -> tuple[sa.Engine, list[int]]:
    """A running game with one 1-hour phase and TEAMS teams; (engine, team ids)."""
    engine = database.make_engine(url)
    database.init_db(engine)
    phase = {"name": "bench", "kind": "peak", "duration": 3600.0, "rate": 30.0, "burst": 1}
    with engine.begin() as conn:
        games.configure_game(conn, "bench", "-", {"allowed_hosts": ["127.0.0.1"]}, [phase])
    for i in range(TEAMS):
        teams.add_team(engine, f"team-{i:03d}", f"http://127.0.0.1:{20000 + i}/p", resolve=False)
    control.apply(engine, "start", "bench")
    with engine.connect() as conn:
        ids = [t["id"] for t in registry.active_teams(conn)]
    return engine, ids


def fill(engine: sa.Engine, ids: list[int], first_seq: int, rounds: int) -> None:
    """Store `rounds` rounds of one result per team, CHUNK rounds per transaction; then
    reveal their labels (visible at once), as the game loop does."""
    now = time.time()
    for start in range(first_seq, first_seq + rounds, CHUNK):
        seqs = range(start, min(start + CHUNK, first_seq + rounds))
        requests: list[RequestRow] = [
            {
                "seq": s,
                "request_id": f"b-{s:08d}",
                "phase_index": 0,
                "features": {"age": 30 + s % 40, "region": "north"},
                "oddities": [],
                "label": s % 2,
                "p_default": 0.3,
                "oracle_points": 0.7,
                "baseline_points": 0.7,
                "sent_at": now,
                "label_visible_at": now,
            }
            for s in seqs
        ]
        rounds_ = [
            ScoredRound(
                s,
                0,
                0.7,
                0.7,
                [
                    Result(t, Score(o, "timeout" if o == "failed" else None, None, p), 12.5)
                    for t in ids
                    for o, p in [
                        (OUTCOMES[(s + t) % 4], {"correct": 1}.get(OUTCOMES[(s + t) % 4], 0))
                    ]
                ],
            )
            for s in seqs
        ]
        with engine.begin() as conn:
            writes.insert_requests(conn, requests)
            writes.store_rounds(conn, rounds_)
            reveal.reveal_labels(conn)
    with engine.begin() as conn:
        writes.sample_history(conn, time.time())
        writes.store_recent(
            conn,
            [
                {
                    "team_id": t,
                    "window": 100,
                    "answered": 75,
                    "latency_p50": 12.5,
                    "latency_p95": 30.1,
                    "up": True,
                    "updated_at": time.time(),
                }
                for t in ids
            ],
        )


def query_ms(engine: sa.Engine, n: int = 50) -> float:
    """The median time of the leaderboard's own query (no HTTP), in ms."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        with engine.connect() as conn:
            standings.leaderboard(conn)
        times.append((time.perf_counter() - t) * 1000)
    return sorted(times)[n // 2]


HEAP_DRIVE = """async (n) => {
  const board = await (await fetch('/api/leaderboard')).json();
  const history = await (await fetch('/api/history')).json();
  const t0 = Date.now() / 1000;
  for (let i = 0; i < n; i++) {
    board.teams.forEach((t, k) => { t.points = (i * (k + 1)) % 997; });
    board.teams.sort((a, b) => b.points - a.points).forEach((t, k) => { t.rank = k + 1; });
    window.gameBoard.render(board);
    if (i % 5 === 0) {
      const line = Array.from({length: 300}, (_, j) => [t0 + j, (i + j) % 50]);
      Object.keys(history.teams).forEach((name) => { history.teams[name] = line; });
      window.gameBoard.drawChart(history);
    }
    if (i % 20 === 0) await new Promise((r) => setTimeout(r, 0));
  }
}"""


def page_heap(base: str, batches: int = 10, per_batch: int = 500) -> list[float]:
    """MB of JS heap after GC: after loading, then after each batch of updates."""
    from playwright.sync_api import sync_playwright

    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(base + "/")
        page.wait_for_timeout(3000)
        cdp = page.context.new_cdp_session(page)
        cdp.send("HeapProfiler.enable")

        def heap() -> float:
            cdp.send("HeapProfiler.collectGarbage")
            return cdp.send("Runtime.getHeapUsage")["usedSize"] / 1e6

        sizes = [heap()]
        for _ in range(batches):
            page.evaluate(HEAP_DRIVE, per_batch)
            sizes.append(heap())
        browser.close()
    return sizes


def against_floor(
    board: str, workers: int, tmp: str, seconds: int, runs: int
) -> tuple[dict, dict, int]:
    """The leaderboard and the floor (a fixed document of the same size on the same server,
    started now) loaded alternately, `runs` times each; (real, floor) medians."""
    size = len(urllib.request.urlopen(board, timeout=10).read())
    real, floor = [], []
    with serve_floor(size, workers, tmp) as fixed:
        run_wrk(fixed, 3)  # warm-up
        for _ in range(runs):
            floor.append(run_wrk(fixed, seconds))
            real.append(run_wrk(board, seconds))
    return medians(real), medians(floor), size


Row = tuple[int, dict, dict, int, float]  # results stored, leaderboard, floor, bytes, query ms


def measure(
    engine: sa.Engine,
    ids: list[int],
    base: str,
    args: argparse.Namespace,
    tmp: str,
    sizes: list[int],
) -> tuple[list[Row], list[float]]:
    """Fill to each size and load the leaderboard against its floor; (rows, heap samples)."""
    rows: list[Row] = []
    stored = 0
    for size in sizes:
        started_at = time.perf_counter()
        fill(engine, ids, stored // TEAMS + 1, (size - stored) // TEAMS)
        fill_s = time.perf_counter() - started_at
        stored = size
        run_wrk(base + "/api/leaderboard", 5)  # warm-up
        real, floor, nbytes = against_floor(
            base + "/api/leaderboard", args.workers, tmp, args.seconds, args.runs
        )
        q = query_ms(engine)
        rows.append((size, real, floor, nbytes, q))
        print(
            f"results={size:>9,} bytes={nbytes} p99={real['p99']:.1f}ms "
            f"floor p99={floor['p99']:.1f}ms ratio={real['p99'] / floor['p99']:.2f} "
            f"(runs: {', '.join(f'{v:.1f}' for v in real['p99s'])} | "
            f"{', '.join(f'{v:.1f}' for v in floor['p99s'])}) rps={real['rps']:.0f} "
            f"floor rps={floor['rps']:.0f} errors={real['errors'] + floor['errors']} "
            f"query={q:.1f}ms fill={fill_s:.0f}s",
            flush=True,
        )
    heap = page_heap(base)
    print("page heap MB after every 500 updates:", [round(h, 1) for h in heap])
    return rows, heap


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="a database server URL (default: SQLite)")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per run")
    parser.add_argument("--runs", type=int, default=3, help="runs of each, alternated (medians)")
    parser.add_argument("--workers", type=int, default=2, help="web worker processes")
    parser.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="stored results, comma-separated"
    )
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    return parser.parse_args()


def main() -> int:
    """Fill, load, measure, report."""
    args = parse_args()
    stopping.on_sigterm_clean_up()
    if shutil.which("wrk") is None:
        print("leaderboard bench: `wrk` is not installed (apt-get install -y wrk)")
        return 1
    sizes = [int(n) for n in args.sizes.split(",")]
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())  # others' work on the machine
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.db, tmp) as url:
        engine, ids = setup(url)
        with serve_game(url, args.workers, tmp) as base:
            rows, heap = measure(engine, ids, base, args, tmp, sizes)
        backend = engine.dialect.name
        engine.dispose()
    if not args.no_write:
        performance_doc.write_section("Leaderboard", report(args, rows, heap, backend, load))
        print(f"wrote the Leaderboard section of {PERFORMANCE.relative_to(ROOT)}")
    return 0


def report(
    args: argparse.Namespace, rows: list[Row], heap: list[float], backend: str, load: str
) -> str:
    """The Leaderboard section of docs/PERFORMANCE.md."""
    table = "\n".join(
        f"| {n:,} | {b:,} | {r['p50']:.1f} | {r['p99']:.1f} | {f['p99']:.1f} "
        f"| **{r['p99'] / f['p99']:.2f}** "
        f"| {' / '.join(f'{v:.0f}' for v in r['p99s'])} "
        f"| {' / '.join(f'{v:.0f}' for v in f['p99s'])} "
        f"| {r['rps']:,.0f} | {f['rps']:,.0f} | {r['errors'] + f['errors']} | {q:.1f} |"
        for n, r, f, b, q in rows
    )
    n, real, floor = rows[-1][0], rows[-1][1], rows[-1][2]
    ratio = real["p99"] / floor["p99"]
    verdict = (
        f"{'Met' if ratio <= RATIO_GOAL else 'Not met'}: at {n:,} results the leaderboard's "
        f"p99 is {real['p99']:.1f} ms against the floor's {floor['p99']:.1f} ms in the same "
        f"run, **{ratio:.2f}x** (goal: at most {RATIO_GOAL}x)."
    )
    return TEXT.format(
        date=datetime.date.today(),
        machine=platform.machine(),
        python=platform.python_version(),
        backend=backend,
        threads=WEB_THREADS,
        workers=args.workers,
        seconds=args.seconds,
        runs=args.runs,
        load=load,
        header=HEADER,
        table=table,
        verdict=verdict,
        heap=", ".join(f"{h:.1f}" for h in heap),
    )


COLUMNS = (
    "results",
    "bytes",
    "p50 ms",
    "p99 ms",
    "floor p99 ms",
    "ratio",
    "p99 of each run",
    "floor's",
    "req/s",
    "floor req/s",
    "errors",
    "query alone, ms",
)
HEADER = f"| {' | '.join(COLUMNS)} |\n|{'---|' * len(COLUMNS)}"

TEXT = """## Leaderboard (`bench/leaderboard_bench.py`)

Measured by `make bench-leaderboard` on {date}: {machine}, Python {python}, {backend}.
100 teams; `GET /api/leaderboard` served by `game-server web --workers {workers}` ({workers}
worker processes on one socket, {threads} waitress threads each, as `game-server run
--workers {workers}` serves the pages) on 127.0.0.1, loaded by `wrk -t2 -c50 -d{seconds}s`
(50 concurrent connections, on the same 2-core machine; load average {load} when the run
started). **The floor** is the same server (`webserver.serve_app` on `webserver.supervise_workers`,
the same worker count and threads) answering a fixed JSON document of the same byte size
(`bench/floor_server.py`, a bare WSGI app, no route of the game), started in the same
run; floor and leaderboard are loaded alternately, {runs} runs each at each size of the
`results` table (medians of the runs):

{header}
{table}

{verdict} An absolute p99 says little on a shared machine (it moved from 30 ms to 266 ms
between machines and runs); the ratio to a floor measured minutes apart does.

Why it is at its floor: the answer is kept as bytes. Each worker computes the JSON once,
in the first request, and from then on a refresher thread recomputes it every 0.5 s
(`LIVE_CACHE_SECONDS`) while someone asks (it stops after 5 s without a request), so no
request under load runs the query or the serialisation. A fresh answer is served by a
WSGI wrapper before Flask routes the request (`web/cache.py`, `fast_answers`: the bytes,
their ETag and the security headers; a matching `If-None-Match` gets a 304), so a request
costs what the floor's costs: waitress parsing it and writing the bytes. The query
itself reads only the running totals (`team_totals`, `team_failures`, `phase_totals`,
`team_recent`, `team_recent_labels`: a few rows per team), never `results`, so its time
(last column) is flat; the public totals it shows are kept up by the game loop's reveal
step (`storage.reveal`, see Storage).

What limits both: waitress's own Python per request (the HTTP parser, the channel, the
thread hand-off) in {workers} processes, on the same 2 cores as `wrk`. The median is
Little's law (50 connections / throughput); the p99 is scheduling, of threads inside a
worker and of processes on the cores. A workshop of 50 teams polling once a second is
about 50-100 requests/s, far below this ceiling.

The page in headless Chromium (the leaderboard with 100 teams, the points chart with
300 points per line), JS heap after garbage collection, after 0, 500, 1000, ... 5000
updates driven through the page's own update functions (`window.gameBoard`; the chart
is redrawn every 5th): {heap} MB. It goes up and down with the garbage collector but
does not grow: table rows are reused and the chart is redrawn with `Plotly.react` on
bounded data.
"""


if __name__ == "__main__":
    sys.exit(main())
