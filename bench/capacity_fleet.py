"""The capacity benchmark's moving parts: starter folders, a fleet of starter APIs, one game.

`capacity_bench.py` searches the number of teams; this module does what one trial needs:

- `starter_folder`: a copy of the starter, the current one (this checkout's
  `participant_starter/`) or the old one (`git archive` of a pinned commit), with a model
  trained by the starter's own recipe (`scripts/ready_model.py`);
- `Fleet`: N real `python main.py` processes of one folder, each on its own port with its
  own SQLite database and log file (database logging on, as the starter does by default),
  started as they are needed and stopped at the end;
- `play`: one game of the workshop's peak phase against the first N APIs of a fleet,
  `game-server run --start` as a subprocess on a fresh SQLite game database, and its
  results (failures, latency percentiles) read back from the game database.
"""

import concurrent.futures
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from game_server.play import teams  # noqa: E402
from game_server.scenario import gamefile  # noqa: E402
from game_server.storage import database  # noqa: E402

# The workshop's peak phase (game_server/scenario/games/workshop.toml), shortened: the same
# rate, burst, timeout and oddity share, with the population shift in force as it is there.
PEAK_GAME = """
[game]
name = "capacity bench: the workshop's peak phase"
seed = 1
label_delay = 60
timeout = 1.0
max_body_bytes = 65536
allowed_hosts = ["127.0.0.1"]

[[phases]]
name = "peak traffic"
kind = "peak"
duration = {seconds}
rate = 30.0
burst = 20
oddity_share = 0.05

[phases.shift]
age_delta = -8.0
loan_factor = 1.7
new_region = "islands"
new_region_share = 0.2
"""

WARM_BODY = {"id": "warm", "features": {"age": 35, "income": 3500, "loan_amount": 9000}}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def train_model(out: Path) -> Path:
    """The starter's model, trained once by its own recipe (scripts/ready_model.py)."""
    command = [sys.executable, str(ROOT / "scripts" / "ready_model.py"), "--out", str(out)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return out


def starter_folder(dest: Path, model: Path, commit: str | None = None) -> Path:
    """A starter to run: this checkout's (`commit` None) or the one committed at `commit`."""
    ignore = shutil.ignore_patterns("__pycache__", ".env", "*.pkl", "*.sqlite", "*.log")
    if commit is None:
        shutil.copytree(ROOT / "participant_starter", dest, ignore=ignore)
    else:
        archive = dest.with_suffix(".tar")
        with archive.open("wb") as out:
            subprocess.run(
                ["git", "-C", str(ROOT), "archive", commit, "participant_starter"],
                check=True,
                stdout=out,
            )
        with tarfile.open(archive) as tar:
            tar.extractall(dest.parent / f"{dest.name}-extract", filter="data")
        (dest.parent / f"{dest.name}-extract" / "participant_starter").rename(dest)
    shutil.copy(model, dest / "models" / "model.pkl")
    return dest


class Fleet:
    """Real starter APIs (`python main.py`) of one folder, started as they are needed."""

    def __init__(self, folder: Path, workdir: Path, label: str, env: dict | None = None):
        """APIs of `folder`; their databases and logs go to `workdir`, named by `label`."""
        self.folder, self.workdir, self.label = folder, workdir, label
        self.env = env or {}
        self.apis: list[tuple[subprocess.Popen, int]] = []

    def _start_one(self) -> tuple[subprocess.Popen, int]:
        """One API on a free port, logging to its own SQLite database and log file."""
        port, index = free_port(), len(self.apis)
        name = f"{self.label}-{index:03d}"
        env = dict(
            os.environ,
            **self.env,
            PORT=str(port),
            DATABASE_URL=f"sqlite:///{self.workdir / name}.sqlite",
            LOG_FILE=str(self.workdir / f"{name}.log"),
            LOG_LEVEL="INFO",
        )
        process = subprocess.Popen(
            [sys.executable, "main.py"],
            cwd=self.folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return process, port

    def grow(self, count: int) -> None:
        """At least `count` APIs running, each answering /health and warmed up."""
        new = []
        while len(self.apis) < count:
            self.apis.append(self._start_one())
            new.append(self.apis[-1])
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(self._ready, new))

    def _ready(self, api: tuple[subprocess.Popen, int]) -> None:
        """Wait until one API answers, then warm it up with a few predictions."""
        process, port = api
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"capacity bench: {self.label} API on port {port} exited")
            try:
                requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise SystemExit(f"capacity bench: {self.label} API on port {port} did not start")
        with requests.Session() as session:
            for _ in range(5):
                session.post(f"http://127.0.0.1:{port}/predict", json=WARM_BODY, timeout=5)

    def urls(self, count: int) -> list[str]:
        """The predict URLs of the first `count` APIs."""
        return [f"http://127.0.0.1:{port}/predict" for _, port in self.apis[:count]]

    def pid(self, index: int) -> int:
        """The process id of API number `index`."""
        return self.apis[index][0].pid

    def stop(self) -> None:
        """Stop every API (SIGTERM: each saves its queued records), then make sure."""
        for process, _ in self.apis:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in self.apis:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.apis = []


def prepare_game(db_url: str, game_path: Path, urls: list[str]) -> None:
    """A fresh game database with the game file and one team per URL.

    The same functions `game-server init` and `game-server teams add` call, in this
    process: starting a command per team would cost a second each.
    """
    engine = database.make_engine(db_url)
    database.init_db(engine)
    database.prepare_game(engine, gamefile.load_game_file(game_path))
    for i, url in enumerate(urls):
        teams.add_team(engine, f"team{i:03d}", url, resolve=False)
    engine.dispose()


def _game_state(db_path: Path) -> str | None:
    """The game's state in its SQLite database (None while it cannot be read)."""
    try:
        with sqlite3.connect(db_path, timeout=1) as conn:
            row = conn.execute("select state from games").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def run_game(db_path: Path, seconds: float, log_path: Path) -> None:
    """`game-server run --start` until the game is finished, then stop it (SIGTERM)."""
    command = [sys.executable, "-m", "game_server", "--log-level", "WARNING"]
    command += ["--db", f"sqlite:///{db_path}", "run", "--port", str(free_port()), "--start"]
    with log_path.open("w") as log:
        server = subprocess.Popen(command, stderr=log, stdout=log)
        try:
            time.sleep(seconds)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and server.poll() is None:
                if _game_state(db_path) == "finished":
                    break
                time.sleep(0.5)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def read_results(db_path: Path) -> dict:
    """Failures and latency percentiles of every result in the game database."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("select outcome, reason, latency_ms from results").fetchall()
        sent = conn.execute("select count(*) from requests").fetchone()[0]
    latencies = [row[2] for row in rows]
    reasons: dict[str, int] = {}
    for outcome, reason, _ in rows:
        if outcome == "failed":
            reasons[reason or "?"] = reasons.get(reason or "?", 0) + 1
    return {
        "rounds": sent,
        "results": len(rows),
        "failed": sum(reasons.values()),
        "reasons": reasons,
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
    }


def play(fleet: Fleet, count: int, workdir: Path, seconds: float) -> dict:
    """One peak-phase game against the first `count` APIs of `fleet`; its results."""
    fleet.grow(count)
    name = f"game-{fleet.label}-{count:03d}-{time.monotonic_ns()}"
    game_path, db_path = workdir / f"{name}.toml", workdir / f"{name}.sqlite"
    game_path.write_text(PEAK_GAME.format(seconds=seconds))
    prepare_game(f"sqlite:///{db_path}", game_path, fleet.urls(count))
    run_game(db_path, seconds, workdir / f"{name}.log")
    results = read_results(db_path)
    expected = count * int(seconds * 30)
    if results["results"] < expected * 0.9:
        tail = (workdir / f"{name}.log").read_text().splitlines()[-5:]
        print(f"  (only {results['results']} of ~{expected} results; log: {tail})", flush=True)
    return {"teams": count, **results}


def summary(trial: dict) -> str:
    """One trial in one line."""
    reasons = json.dumps(trial["reasons"]) if trial["reasons"] else "-"
    return (
        f"teams={trial['teams']:>3} results={trial['results']:>6} failed={trial['failed']:>5} "
        f"p50={trial['p50']:6.1f} ms p95={trial['p95']:6.1f} ms p99={trial['p99']:6.1f} ms "
        f"reasons={reasons}"
    )
