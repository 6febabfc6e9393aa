"""Benchmark `GET /api/leaderboard` as the stored results grow, and the page's JS heap.

100 teams; the database is filled to 10k, 100k and 1M stored results (bulk inserts
through `writes.store_rounds`, so the running totals stay consistent); at each size the
app is served by waitress on 127.0.0.1 and `wrk` (Debian's package) loads it with 50
concurrent connections for a bounded time. Then headless Chromium renders N leaderboard
and chart updates through the page's own functions and the JS heap is read after garbage
collection. Writes the "Leaderboard" section of docs/PERFORMANCE.md.

    .venv/bin/python bench/leaderboard_bench.py [--db URL] [--seconds 10] [--no-write]
"""

import argparse
import contextlib
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import performance_doc  # noqa: E402
from bench_storage import scratch_database  # noqa: E402

from game_server.play import teams  # noqa: E402
from game_server.play.scoring import Result, Score  # noqa: E402
from game_server.storage import control, database, games, reveal, standings, writes  # noqa: E402
from game_server.webserver import WEB_THREADS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PERFORMANCE = ROOT / "docs" / "PERFORMANCE.md"
SIZES = (10_000, 100_000, 1_000_000)
TEAMS = 100
CHUNK = 200  # rounds per transaction while filling
OUTCOMES = ("correct", "correct", "wrong", "failed")


def setup(url: str):
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
        ids = [t["id"] for t in teams.active_teams(conn)]
    return engine, ids


def fill(engine, ids: list[int], first_seq: int, rounds: int) -> None:
    """Store `rounds` rounds of one result per team, CHUNK rounds per transaction; then
    reveal their labels (visible at once), as the game loop does."""
    now = time.time()
    for start in range(first_seq, first_seq + rounds, CHUNK):
        seqs = range(start, min(start + CHUNK, first_seq + rounds))
        requests = [
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
            writes.ScoredRound(
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


SERVE = """
import sys
from game_server.webserver import start_web
server = start_web(sys.argv[1], "127.0.0.1", 0)
print(server.effective_port, flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
"""


@contextlib.contextmanager
def serve(url: str):
    """The game's own web server (`webserver.start_web`, waitress as `game-server web` serves
    it) in a process of its own, as in a game (not beside the benchmark's filling); its URL."""
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        yield f"http://127.0.0.1:{int(server.stdout.readline())}"
    finally:
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def run_wrk(url: str, seconds: int) -> dict:
    """wrk with 50 connections for `seconds`: p50, p99 (ms) and requests/s."""
    out = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{seconds}s", "--latency", "--timeout", "5s", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout

    def millis(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "p50": millis("50%"),
        "p99": millis("99%"),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "errors": int(errors.group(1)) if errors else 0,
    }


def query_ms(engine, n: int = 50) -> float:
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


def repeated_wrk(url: str, seconds: int, runs: int) -> dict:
    """`runs` wrk runs: the median p50, p99 and requests/s, the p99s, the errors in all."""
    results = [run_wrk(url, seconds) for _ in range(runs)]
    return {
        "p50": statistics.median(r["p50"] for r in results),
        "p99": statistics.median(r["p99"] for r in results),
        "p99s": sorted(r["p99"] for r in results),
        "rps": statistics.median(r["rps"] for r in results),
        "errors": sum(r["errors"] for r in results),
    }


def measure(engine, ids: list[int], base: str, seconds: int, runs: int):
    """Fill to each size and load the leaderboard; (rows, page heap samples)."""
    rows, stored = [], 0
    for size in SIZES:
        started = time.perf_counter()
        fill(engine, ids, stored // TEAMS + 1, (size - stored) // TEAMS)
        fill_s = time.perf_counter() - started
        stored = size
        run_wrk(base + "/api/leaderboard", 5)  # warm-up
        cached = repeated_wrk(base + "/api/leaderboard", seconds, runs)
        q = query_ms(engine)
        rows.append((size, cached, q, fill_s))
        print(
            f"results={size:>9,} p50={cached['p50']:.1f}ms p99={cached['p99']:.1f}ms "
            f"(runs: {', '.join(f'{v:.1f}' for v in cached['p99s'])}) "
            f"rps={cached['rps']:.0f} errors={cached['errors']} query={q:.1f}ms "
            f"fill={fill_s:.0f}s",
            flush=True,
        )
    heap = page_heap(base)
    print("page heap MB after every 500 updates:", [round(h, 1) for h in heap])
    return rows, heap


def main() -> int:
    """Fill, load, measure, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="a database server URL (default: SQLite)")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per size")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per size (medians)")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("leaderboard bench: `wrk` is not installed (apt-get install -y wrk)")
        return 1
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())  # others' work on the machine
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.db, tmp) as url:
        engine, ids = setup(url)
        with serve(url) as base:
            rows, heap = measure(engine, ids, base, args.seconds, args.runs)
        backend = engine.dialect.name
        engine.dispose()
    table = "\n".join(
        f"| {n:,} | {c['p50']:.1f} | {c['p99']:.1f} | {' / '.join(f'{v:.0f}' for v in c['p99s'])} "
        f"| {c['rps']:,.0f} | {c['errors']} | {q:.1f} |"
        for n, c, q, _ in rows
    )
    p99 = rows[-1][1]["p99"]
    verdict = (
        f"Met: median p99 {p99:.1f} ms at {rows[-1][0]:,} results."
        if p99 < 50
        else f"Not met: median p99 {p99:.1f} ms at {rows[-1][0]:,} results."
    )
    text = f"""## Leaderboard (`bench/leaderboard_bench.py`)

Measured by `make bench-leaderboard` on {datetime.date.today()}: {platform.machine()},
Python {platform.python_version()}, {backend}. 100 teams; `GET /api/leaderboard` served by
waitress as `game-server run` serves it ({WEB_THREADS} threads, one process) on 127.0.0.1,
loaded by `wrk -t2 -c50 -d{args.seconds}s` (50 concurrent connections, on the same 2-core
machine; load average {load} when the run started) after a 5 s warm-up, {args.runs} runs
at each size of the `results` table (medians of the runs):

| results | p50 ms | p99 ms | p99 of each run, ms | req/s | errors | query alone, ms |
|---|---|---|---|---|---|---|
{table}

The issue's target: p99 under 50 ms with 1,000,000 stored results, and a cost that does
not grow with the number of results. {verdict} The query reads only the running totals
(`team_totals`, `team_failures`, `phase_totals`, `team_recent`, `team_recent_labels`: a
few rows per team), never `results`, so its time is flat. The public totals it shows (a
round counted once its label is visible) are kept up by the game loop's reveal step
(`storage.reveal`), whose cost follows the game's rate, not its length (see Storage).
Each web worker computes the JSON at most every
0.5 s (`LIVE_CACHE_SECONDS`), one thread at a time while the others answer with the last
one, so a request under load costs a dictionary lookup, an ETag and the bytes (a page that
polls with `If-None-Match` gets a 304 while nothing changed).

What limits it: one Python process (the GIL) serving 50 connections through
{WEB_THREADS} threads, on the same 2 cores as `wrk`. The median is Little's law
(50 connections / throughput); the p99 is thread scheduling, which varies from run to run
and not with the number of results. A workshop of 50 teams polling once a second is about
50-100 requests/s, far below this ceiling.

The page in headless Chromium (the leaderboard with 100 teams, the points chart with
300 points per line), JS heap after garbage collection, after 0, 500, 1000, ... 5000
updates driven through the page's own update functions (`window.gameBoard`; the chart
is redrawn every 5th): {", ".join(f"{h:.1f}" for h in heap)} MB. It goes up and down
with the garbage collector but does not grow: table rows are reused and the chart is
redrawn with `Plotly.react` on bounded data.
"""
    if not args.no_write:
        performance_doc.write_section("Leaderboard", text)
        print(f"wrote the Leaderboard section of {PERFORMANCE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
