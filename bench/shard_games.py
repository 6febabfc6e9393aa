"""One game in shards for bench/shard_bench.py: play it, count what the shards did and cost.

`game-server run --shard I/N --no-web` as real processes on a fresh database, one stub
team per port; counted in the measured window (after a warm-up): the results of the
rounds sent, scored and stored, and of them the answers in time; the rounds each shard
sent and skipped; the CPU of each shard, of the stubs and of the whole machine.
"""

import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_storage import scratch_database  # noqa: E402

from game_server.scenario import gamefile  # noqa: E402
from game_server.storage import control, database, schema  # noqa: E402
from game_server.storage.teams import hash_token  # noqa: E402

ADMIN_URL = os.environ.get(
    "GAME_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


WARM_UP = 4.0  # seconds after the start that are not measured


IN_TIME = 0.99  # a shard holds a load when this share of the results due are answers in time


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


def play(
    url: str, n: int, ports: list[int], seconds: float, logs: Path, stub_pids: list[int]
) -> dict:
    """Play the peak with `n` shards to one team per port for `seconds`; what it did and cost."""
    engine = database.make_engine(url)
    database.prepare_game(engine, gamefile.load_game_file(game_file(logs / "g.toml", seconds)))
    register(engine, ports)
    procs = start_shards(url, n, logs)
    try:
        started = control.apply(engine, "start", "bench").started_at
        assert started is not None  # set by "start"
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
