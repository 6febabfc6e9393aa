"""Benchmark of the game server's memory over a game at peak request rate.

Not a test. Loopback only, bounded in time, stops by itself. It starts fast stub team
APIs (the customer benchmark's stubs, in a separate process), registers them in a fresh
SQLite game database, runs the real `game-server run --start` as a subprocess with one long
peak phase, polls `/api/leaderboard` as a projector would, and samples the game server's
resident memory (VmRSS) every few seconds. Prints the samples and writes the "Memory"
section of docs/PERFORMANCE.md.

    python bench/memory_bench.py [--teams 100] [--rate 30] [--seconds 180] [--no-write]
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import performance_doc  # noqa: E402
import stopping  # noqa: E402
from stub_apis import stub_teams  # noqa: E402

from game_server.play import teams  # noqa: E402
from game_server.scenario import gamefile  # noqa: E402
from game_server.storage import database  # noqa: E402

GAME = """
[game]
name = "memory bench"
seed = 3
label_delay = 60
timeout = 1.0
allowed_hosts = ["127.0.0.1"]

[[phases]]
name = "peak traffic"
kind = "peak"
duration = {seconds}
rate = {rate}
burst = 10
"""


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def prepare(db_url: str, game_path: Path, ports: list[int]) -> None:
    """A game database with the game file and one team per stub port."""
    engine = database.make_engine(db_url)
    database.prepare_game(engine, gamefile.load_game_file(game_path))
    for i, port in enumerate(ports):
        teams.add_team(engine, f"team{i:03d}", f"http://127.0.0.1:{port}/predict", resolve=False)
    engine.dispose()


def measure(args: argparse.Namespace, db_url: str, log_path: Path) -> list[dict]:
    """Run the game and sample its memory; the samples (the server's log in `log_path`)."""
    port = free_port()
    log = log_path.open("w")
    command = [sys.executable, "-m", "game_server", "--log-level", "WARNING", "--db", db_url]
    server = subprocess.Popen([*command, "run", "--port", str(port), "--start"], stderr=log)
    samples, start = [], time.monotonic()
    try:
        deadline = start + args.seconds + 15
        while time.monotonic() < deadline and server.poll() is None:
            time.sleep(args.every)
            try:
                board = requests.get(f"http://127.0.0.1:{port}/api/leaderboard", timeout=5).json()
            except requests.RequestException:
                continue
            sample = {
                "t": round(time.monotonic() - start),
                "rss_mb": round(rss_mb(server.pid), 1),
                "rounds": board["reference"]["requests"],
                "state": board["game"]["state"],
            }
            samples.append(sample)
            print(
                f"t={sample['t']:>4}s rss={sample['rss_mb']:>6.1f} MB "
                f"rounds={sample['rounds']:>6} results={sample['rounds'] * args.teams:>8}",
                flush=True,
            )
            if sample["state"] == "finished":
                break
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    if not samples:
        tail = log_path.read_text().splitlines()[-5:]
        raise SystemExit(
            "memory bench: the game server did not answer; its log:\n" + "\n".join(tail)
        )
    return samples


def report(args: argparse.Namespace, samples: list[dict]) -> str:
    """The Markdown section."""
    warm = [s for s in samples if s["t"] >= 20] or samples
    first, peak, last = warm[0]["rss_mb"], max(s["rss_mb"] for s in samples), samples[-1]
    rows = "\n".join(
        f"| {s['t']} | {s['rss_mb']:.1f} | {s['rounds'] * args.teams:,} |"
        for s in samples[:: max(1, len(samples) // 12)]
    )
    return f"""## Memory: the game server over a game at peak rate (`bench/memory_bench.py`)

Measured on {time.strftime("%Y-%m-%d")} ({os.cpu_count()} cores): `game-server run --start`
(the game loop and the web app in one process, SQLite) against {args.teams} stub team APIs
on loopback, one phase of {args.seconds} s at {args.rate} rounds/s in bursts of 10
({args.rate * args.teams:,.0f} scored and stored requests/s asked for), with
`/api/leaderboard` polled every {args.every} s. Resident memory (VmRSS) of the game server:

| seconds | RSS, MB | results stored |
|---|---|---|
{rows}

From 20 s on (warm: connections open, caches full) it went from {first:.1f} to
{last["rss_mb"]:.1f} MB, {peak:.1f} MB at the peak, with {last["rounds"] * args.teams:,} results
stored. What keeps it bounded: every per-team window is a fixed-size deque, the scenario
keeps at most 32 blocks of applicants, rounds in flight are capped (500), results go to the
database as they are scored (nothing accumulates in memory), and the leaderboard reads
running totals.
"""


def main() -> None:
    """Start the stubs, play the game, print and write the numbers."""
    stopping.on_sigterm_clean_up()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=100)
    parser.add_argument("--rate", type=float, default=30.0, help="rounds per second")
    parser.add_argument("--seconds", type=int, default=180, help="length of the peak phase")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/PERFORMANCE.md")
    args = parser.parse_args()
    with stub_teams(args.teams) as ports, tempfile.TemporaryDirectory() as tmp:
        game_path = Path(tmp, "memory.toml")
        game_path.write_text(GAME.format(seconds=args.seconds, rate=args.rate))
        db_url = f"sqlite:///{Path(tmp, 'game.sqlite')}"
        prepare(db_url, game_path, ports)
        samples = measure(args, db_url, Path(tmp, "game.log"))
    section = report(args, samples)
    print(section)
    if not args.no_write:
        performance_doc.write_section("Memory: the game server", section)
        print("written to docs/PERFORMANCE.md")


if __name__ == "__main__":
    main()
