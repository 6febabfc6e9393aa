"""Benchmark: a flood of every public endpoint does not slow the game for healthy teams.

Not a test. Loopback only, bounded in time and in requests, stops by itself. It plays the
same short game twice, with the real `game-server run` (game loop, and the web app as its
own process) against a few fast stub team APIs (bench/stub_apis.py, in a process
of their own): once quiet, once while several client threads request every public page
and API endpoint as fast as they can (expensive ones included: monitoring with every
window, invalid windows, team results of 500 rows, feedback with wrong tokens, the
Plotly bundle). It compares the teams' latency (p50, p95, max; as the game measured and
stored it) and failures, and writes the "Flood" section of docs/PERFORMANCE.md.

    python bench/flood_bench.py [--teams 4] [--seconds 30] [--rate 20] [--threads 8]
        [--runs 2] [--flood-nice 10] [--no-write]

The flood's clients are bench/flood_clients.py.
"""

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import performance_doc  # noqa: E402  (beside this file)
import stopping  # noqa: E402
from flood_clients import HELD, Flood  # noqa: E402
from stub_apis import stub_teams  # noqa: E402

from game_server.play import teams  # noqa: E402
from game_server.storage import database, games, schema  # noqa: E402

GAME = """
[game]
name = "flood bench"
seed = 11
label_delay = 2
timeout = 1.0
allowed_hosts = ["127.0.0.1"]

[[phases]]
name = "steady"
kind = "warmup"
duration = "{seconds}s"
rate = {rate}
"""


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare(folder: Path, ports: list[int], args: argparse.Namespace) -> str:
    """A fresh game database with the game and one team per stub; its URL."""
    game_file = folder / "flood.toml"
    game_file.write_text(GAME.format(seconds=args.seconds, rate=args.rate))
    url = f"sqlite:///{folder / 'game.sqlite'}"
    subprocess.run(
        [sys.executable, "-m", "game_server", "init", "--game", str(game_file)],
        env={**os.environ, "GAME_DATABASE_URL": url},
        check=True,
        capture_output=True,
    )
    engine = database.make_engine(url)
    for i, port in enumerate(ports):
        teams.add_team(engine, f"team-{i}", f"http://127.0.0.1:{port}/predict", resolve=False)
    engine.dispose()
    return url


def wait_for(condition: Callable[[], object], limit: float) -> None:
    """Wait until `condition()` is true (RuntimeError after `limit` seconds)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.2)


def healthy(base: str) -> bool:
    """Whether the web app answers."""
    with contextlib.suppress(requests.RequestException):
        return requests.get(base + "/api/health", timeout=2).ok
    return False


def state(engine: sa.Engine) -> str:
    """The game's state."""
    with engine.connect() as conn:
        return games.game_row(conn).state


def play(folder: Path, ports: list[int], args: argparse.Namespace, flood: bool) -> dict:
    """One game through `game-server run`, flooded or not; its numbers."""
    url = prepare(folder, ports, args)
    port, metrics_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    log = folder / "run.log"
    env = {**os.environ, "GAME_DATABASE_URL": url}
    command = ["run", "--port", str(port), "--metrics-port", str(metrics_port)]
    with open(log, "w") as err:
        run = subprocess.Popen(
            [sys.executable, "-m", "game_server", *command],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    engine = database.make_engine(url)
    names = [f"team-{i}" for i in range(len(ports))]
    clients = Flood(base, names, args.threads if flood else 0, args.flood_nice, metrics)
    still_up = False
    try:
        wait_for(lambda: healthy(base), 60)
        with clients:
            time.sleep(2)  # the flood is on before the first round
            subprocess.run(
                [sys.executable, "-m", "game_server", "control", "start"],
                env=env,
                check=True,
                capture_output=True,
            )
            cpu, started = cpu_seconds(run.pid), time.monotonic()
            wait_for(lambda: state(engine) == "finished", args.seconds + 60)
            loop_cpu = (cpu_seconds(run.pid) - cpu) / (time.monotonic() - started) * 100
            still_up = healthy(base) and requests.get(metrics, timeout=5).ok  # still held
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(60)
    numbers = measure(engine)
    engine.dispose()
    text = log.read_text()
    skipped = re.findall(r"skipped_rounds=(\d+)", text)
    numbers.update(
        flood=dict(clients.counts),
        flood_requests=sum(clients.counts.values()),
        flood_seconds=clients.seconds,
        web_up_after=still_up,
        loop_cpu=loop_cpu,
        skipped=int(skipped[-1]) if skipped else 0,
        web_restarts=text.count("web process died"),
    )
    return numbers


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(engine: sa.Engine) -> dict:
    """Latency percentiles (ms) over every result, failures by reason, rounds."""
    r = schema.results.c
    with engine.connect() as conn:
        latencies = sorted(x for (x,) in conn.execute(sa.select(r.latency_ms)))
        failures: dict[str | None, int] = dict(
            conn.execute(
                sa.select(r.reason, sa.func.count()).where(r.outcome == "failed").group_by(r.reason)
            ).all()
        )
        rounds = conn.execute(sa.select(sa.func.count()).select_from(schema.requests)).scalar()
    return {
        "rounds": rounds,
        "results": len(latencies),
        "p50": pct(latencies, 50),
        "p95": pct(latencies, 95),
        "p99": pct(latencies, 99),
        "max": latencies[-1] if latencies else None,
        "failures": failures,
    }


def pct(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) of sorted values."""
    if not values:
        return None
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def flood_line(n: dict) -> str:
    """The flood's requests and statuses, in words."""
    if not n["flood_requests"]:
        return "no flood"
    statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted(n["flood"].items()))
    rate = n["flood_requests"] / max(n["flood_seconds"], 1e-9)
    return f"{n['flood_requests']:,} requests ({rate:,.0f}/s; {statuses})"


def table(runs: list[tuple[str, dict]]) -> str:
    """The markdown table of the runs."""
    lines = [
        "| game | rounds | results | p50 ms | p95 ms | p99 ms | max ms | failures | skipped "
        "| loop CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for name, n in runs:
        failures = ", ".join(f"{k} {v}" for k, v in n["failures"].items()) or "0"
        lines.append(
            f"| {name} | {n['rounds']} | {n['results']} | {n['p50']:.1f} | {n['p95']:.1f} | "
            f"{n['p99']:.1f} | {n['max']:.1f} | {failures} | {n['skipped']} | "
            f"{n['loop_cpu']:.0f} |"
        )
    return "\n".join(lines)


SECTION = """## Flood: the pages cannot slow the game (`bench/flood_bench.py`)

Measured by `make bench-flood` on {when}.
Machine: {machine}.
Load average before the run: {load} (the machine is shared with other work: the quiet
games show its noise).

The same game ({seconds:g} s at {rate:g} rounds/s, {teams} fast stub teams on loopback,
1 s timeout) through the real `game-server run` (the game loop, and the web app as its
own process), quiet and flooded in turn, {runs}. During a flooded game, {threads} client
threads of the benchmark request every public endpoint as fast as they can: the pages,
the JSON API (monitoring at every window and at random invalid ones, team results of 500
rows, feedback with a wrong token, the instructor API without one), the static files,
the Plotly bundle and the game's metrics port (`--metrics-port`, on in every game), while
{held} connections are held open (idle, or slow: a head never finished). Latency is every
result's, as the game measured and stored it; loop CPU is the `game-server run` process's
(the loop; the pages and the metrics are served by its children) over the game.

{table}

{verdict}

The floods: {floods}. They come from one address, so the per-client budgets answered a
429 to about half of them.

Before the web app had a process of its own (issue 15), such a flood moved a healthy
team from p50 8 ms / p95 16 ms to p50 508 ms / p95 1,350 ms and gave it `timeout`
penalties: the pages and the loop shared one interpreter (its GIL). Now the loop runs
alone in its process, the web process at a lower CPU priority (nice 10), and the
expensive endpoints are bounded (a fixed set of monitoring windows, each computed at most
once per 5 s and shared; per-client budgets that answer 429). The flooding threads run
at nice {nice}: on the workshop's server they would be a team's own process, and the CPU
a team's processes burn is the team's (any busy loop costs the same); what this measures
is what the pages cost the game. Before issue 21 the metrics port was served in the
loop's own process (8 scrapers took the loop from 8 % to 67 % of a core) and 110 idle
connections silenced the pages; now a child process serves the metrics and the loop only
renders their text, at most once every 5 s.
"""


def verdict(runs: list[tuple[str, dict]]) -> str:
    """The healthy teams' p95 and failures, quiet against flooded, in two sentences."""

    def p95s(kind: str) -> str:
        return " and ".join(f"{n['p95']:.1f}" for name, n in runs if name.startswith(kind))

    def cpus(kind: str) -> str:
        return " and ".join(f"{n['loop_cpu']:.0f}" for name, n in runs if name.startswith(kind))

    flooded = [n for name, n in runs if name.startswith("flood")]
    failed = sum(sum(n["failures"].values()) for n in flooded)
    up = (
        "and the metrics answered at the end of every flood, beside the held connections"
        if all(n["web_up_after"] for n in flooded)
        else "or the metrics DID NOT ANSWER at the end of a flood"
    )
    return (
        f"The teams' p95: {p95s('quiet')} ms quiet, {p95s('flood')} ms flooded; "
        f"{failed} failures and {sum(n['skipped'] for n in flooded)} skipped rounds in the "
        f"flooded games. Loop CPU: {cpus('quiet')} % quiet, {cpus('flood')} % flooded. "
        f"The web app {up}."
    )


def main() -> None:
    """Start the stubs, play the games, print the table and write docs/PERFORMANCE.md."""
    stopping.on_sigterm_clean_up()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0, help="the game's length")
    parser.add_argument("--rate", type=float, default=20.0, help="rounds per second")
    parser.add_argument("--threads", type=int, default=8, help="flooding client threads")
    parser.add_argument("--runs", type=int, default=2, help="pairs of games (quiet, flood)")
    parser.add_argument(
        "--flood-nice", type=int, default=10, help="the flooding threads' CPU priority (nice)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/PERFORMANCE.md")
    args = parser.parse_args()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    runs: list[tuple[str, dict]] = []
    with stub_teams(args.teams) as ports, tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for flood in (False, True):
                name = f"{'flood' if flood else 'quiet'} {i + 1}"
                folder = Path(tmp, name.replace(" ", "-"))
                folder.mkdir()
                runs.append((name, play(folder, ports, args, flood)))
                print(f"{name}: {runs[-1][1]}", flush=True)
    text = table(runs)
    print(text)
    print(verdict(runs))
    if not args.no_write:
        floods = "; ".join(f"{name}, {flood_line(n)}" for name, n in runs if n["flood_requests"])
        performance_doc.write_section(
            "Flood",
            SECTION.format(
                when=time.strftime("%Y-%m-%d"),
                machine=performance_doc.machine(),
                load=load,
                seconds=args.seconds,
                rate=args.rate,
                teams=args.teams,
                runs="once" if args.runs == 1 else f"{args.runs} times each",
                threads=args.threads,
                nice=args.flood_nice,
                table=text,
                floods=floods,
                verdict=verdict(runs),
                held=", ".join(f"{v} {k}" for k, v in HELD.items()),
            ),
        )


if __name__ == "__main__":
    main()
