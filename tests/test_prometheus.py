"""The shipped Prometheus config and Grafana dashboard, against a real Prometheus (Debian's
`prometheus`) scraping a real game (`run --metrics-port`) and a real starter API: every
panel's query returns series."""

import contextlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from conftest import require
from starter_helpers import copy_starter, free_port, serve

REPO = Path(__file__).resolve().parents[1]
MONITORING = REPO / "database_docker" / "monitoring"
DASHBOARD = MONITORING / "grafana" / "workshop-game.json"
GAME = """\
[game]
name = "prometheus"
label_delay = 2

[[phases]]
kind = "warmup"
duration = "5m"
rate = 5.0
"""

pytestmark = pytest.mark.slow


def dashboard_queries() -> dict[str, str]:
    """Each panel's title and PromQL expression."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {p["title"]: t["expr"] for p in panels for t in p["targets"]}


def test_the_dashboard_covers_what_the_guide_promises():
    """Rounds, failures by reason, each team's latency, the phase, the starter's metrics."""
    text = " ".join(dashboard_queries().values())
    for metric in (
        "game_rounds_total",
        "game_failures_total",
        "game_team_latency_seconds",
        "game_phase",
        "api_requests_total",
        "api_fallbacks_total",
        "api_cleaned_fields_total",
        "api_model_info",
    ):
        assert metric in text, metric


def game_server(db: str, *args: str) -> str:
    """One `game-server --db DB ARGS` to completion; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "game_server", "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@contextlib.contextmanager
def running(argv: list[str], log: Path, **kwargs):
    """A process for the length of the block, stopped after it."""
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def query(base: str, expr: str) -> list:
    """The result of an instant query."""
    answer = requests.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_prometheus_scrapes_the_game_and_a_starter_and_every_panel_has_series(tmp_path):
    binary = shutil.which("prometheus")
    require(
        "prometheus", None if binary else "no `prometheus` (Debian: apt-get install prometheus)"
    )
    starter = copy_starter(tmp_path / "starter")
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "ready_model.py"),
            "--out",
            str(starter / "models" / "model.pkl"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (tmp_path / "game.toml").write_text(GAME)
    db = f"sqlite:///{tmp_path / 'game.sqlite'}"
    game_server(db, "init", "--game", str(tmp_path / "game.toml"))
    metrics_port, prom_port = free_port(), free_port()
    with serve(starter) as api:
        game_server(db, "teams", "add", "red", "--url", f"{api}/predict")
        down = f"http://127.0.0.1:{free_port()}/predict"  # nothing listens: failures to chart
        game_server(db, "teams", "add", "down", "--url", down)
        (tmp_path / "teams.json").write_text(game_server(db, "teams", "list", "--prometheus"))
        config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
        config["global"]["scrape_interval"] = "1s"
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        jobs["game"]["static_configs"][0]["targets"] = [f"127.0.0.1:{metrics_port}"]
        jobs["teams"]["file_sd_configs"][0]["files"] = [str(tmp_path / "teams.json")]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        game = [
            sys.executable,
            "-m",
            "game_server",
            "--db",
            db,
            "run",
            "--start",
            "--port",
            str(free_port()),
            "--metrics-port",
            str(metrics_port),
        ]
        prometheus = [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ]
        with (
            running(game, tmp_path / "game.log"),
            running(prometheus, tmp_path / "prometheus.log"),
        ):
            base = f"http://127.0.0.1:{prom_port}"
            empty, deadline = dict(dashboard_queries()), time.monotonic() + 90
            while empty and time.monotonic() < deadline:
                time.sleep(2)
                with contextlib.suppress(requests.ConnectionError):
                    empty = {t: e for t, e in empty.items() if not query(base, e)}
            assert not empty, (
                f"panels without series: {list(empty)}; "
                + ((tmp_path / "game.log").read_text()[-1500:])
            )
            up = {s["metric"]["team"]: s["value"][1] for s in query(base, 'up{job="teams"}')}
            assert up == {"red": "1", "down": "0"}
