"""The game loop's Prometheus metrics: scraped over HTTP after a real game, they match the
database; `game-server run --metrics-port` serves them on loopback."""

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
import sqlalchemy as sa
from engine_helpers import FAST_GAME, fast_game, peeking, play
from prometheus_client.parser import text_string_to_metric_families
from team_apis import TeamAPIs, hang, json_answer, refused_port

from game_server.play import loop as game
from game_server.play import teams
from game_server.play.metrics import MetricsServer
from game_server.storage import control, database, schema


@pytest.fixture
def apis():
    """A place to start team APIs; closed after the test."""
    servers = TeamAPIs()
    yield servers
    servers.close()


def scrape(url: str) -> dict:
    """Every sample of a metrics page: {(name, (label, value), ...): value}."""
    response = requests.get(url, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, *sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def labelled(samples: dict, name: str) -> dict:
    """The samples called `name`, by their labels as a dict's items."""
    return {key[1:]: value for key, value in samples.items() if key[0] == name}


def test_the_metrics_of_a_game_match_its_database(db_url, apis):
    engine = database.make_engine(db_url)
    game_file = fast_game()
    database.prepare_game(engine, game_file)
    ids = {}
    for name, api_url in [
        ("good", apis.start(peeking(engine)).url),
        ("hangs", apis.start(hang()).url),
        ("broken", apis.start(json_answer({"e": 1}, 500)).url),
        ("gone", f"http://127.0.0.1:{refused_port()}/predict"),
    ]:
        teams.add_team(engine, name, api_url)
    with engine.connect() as conn:
        ids = dict(conn.execute(sa.select(schema.teams.c.name, schema.teams.c.id)).all())
    control.apply(engine, "start", "tester")
    the_game = game.Game(engine, game_file)
    exporter = MetricsServer(the_game.metrics.registry, "127.0.0.1", 0).start()
    try:
        asyncio.run(play(the_game, engine))
        samples = scrape(f"http://127.0.0.1:{exporter.port}/metrics")
    finally:
        exporter.close()

    results = schema.results.c
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(schema.requests.c.status)).scalars().all()
        failures = conn.execute(
            sa.select(results.team_id, results.reason, sa.func.count())
            .where(results.outcome == "failed")
            .group_by(results.team_id, results.reason)
        ).all()
        timed = conn.execute(
            sa.select(results.team_id, sa.func.count())
            .where(sa.or_(results.status_code.is_not(None), results.reason == "timeout"))
            .group_by(results.team_id)
        ).all()
    assert statuses and set(statuses) == {"scored"}
    rounds = labelled(samples, "game_rounds_total")
    assert rounds == {
        (("status", "sent"),): len(statuses),
        (("status", "scored"),): len(statuses),
        (("status", "void"),): 0,
    }
    assert labelled(samples, "game_failures_total") == {
        (("reason", reason), ("team_id", str(team_id))): count
        for team_id, reason, count in failures
    }
    reasons = {reason for _, reason, _ in failures}
    assert reasons == {"timeout", "http_status", "connect_error"}
    # latency: answers and timeouts (a refused connection says nothing about speed)
    assert labelled(samples, "game_team_latency_seconds_count") == {
        (("team_id", str(team_id)),): count for team_id, count in timed
    }
    # the refused team's connect errors are not timed; a round the loaded loop reached
    # only after its deadline is a timeout, and that one is
    gone = {reason: count for team_id, reason, count in failures if team_id == ids["gone"]}
    assert gone.get("connect_error", 0) > 0
    assert labelled(samples, "game_team_latency_seconds_count").get(
        (("team_id", str(ids["gone"])),), 0
    ) == gone.get("timeout", 0)
    info = labelled(samples, "game_team_info")
    assert info == {(("team", name), ("team_id", str(i))): 1.0 for name, i in ids.items()}
    assert samples[("game_state", ("state", "finished"))] == 1
    assert samples[("game_state", ("state", "running"))] == 0
    # never correct or wrong: they would tell the labels before the feedback API does
    assert not [key for key in samples if "correct" in str(key) or "wrong" in str(key)]


@contextlib.contextmanager
def game_server_run(db: str, *args: str):
    """`game-server run` as a process of its own; stopped with SIGTERM."""
    env = {**os.environ, "GAME_DATABASE_URL": db}
    process = subprocess.Popen(
        [sys.executable, "-m", "game_server", "run", "--port", "0", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def wait_for(url: str, process: subprocess.Popen, seconds: float = 30) -> dict:
    """The first successful scrape of `url`, while `process` runs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        with contextlib.suppress(requests.ConnectionError):
            return scrape(url)
        time.sleep(0.2)
    raise AssertionError(f"no metrics at {url} within {seconds} s")


def test_game_server_run_serves_the_metrics_on_loopback(sqlite_url):
    engine = database.make_engine(sqlite_url)
    database.init_db(engine)
    database.prepare_game(engine, fast_game())
    teams.add_team(engine, "red", f"http://127.0.0.1:{refused_port()}/predict")
    port = refused_port()
    with game_server_run(sqlite_url, "--game", str(FAST_GAME), "--metrics-port", str(port)) as p:
        samples = wait_for(f"http://127.0.0.1:{port}/metrics", p)
        assert samples[("game_state", ("state", "lobby"))] == 1
        assert labelled(samples, "game_team_info") == {(("team", "red"), ("team_id", "1")): 1.0}
        assert samples[("game_phase", ("index", "0"), ("kind", "warmup"), ("name", "warm-up"))]
        other = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert other.status_code == 404 and "/metrics" in other.text
        listening = [
            line.split()[3]
            for line in subprocess.run(
                ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True
            ).stdout.splitlines()
        ]
        assert listening == [f"127.0.0.1:{port}"]
        served_by = subprocess.run(
            ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True
        ).stdout
        pids = {int(pid) for pid in re.findall(r"pid=(\d+)", served_by)}
        assert pids and p.pid not in pids, served_by  # a child serves them, not the loop
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
        started = p.stderr.read()
    assert f"metrics listening url=http://127.0.0.1:{port}/metrics" in started  # item 8
    assert "Traceback" not in started and "TypeError" not in started, started
    with socket.socket() as sock:  # nothing listens there any more (TIME_WAIT allowed)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()


def test_a_busy_metrics_port_is_one_line(sqlite_url):
    database.init_db(database.make_engine(sqlite_url))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with game_server_run(sqlite_url, "--metrics-port", str(port)) as p:
            assert p.wait(30) == 1
            lines = p.stderr.read().strip().splitlines()
    error = [line for line in lines if " INFO " not in line]  # log records aside: one line
    assert error == [
        f"Error: --metrics-port {port}: cannot listen on 127.0.0.1:{port} (Address already in use)"
    ], lines


def test_a_flood_of_scrapes_renders_the_metrics_once():
    """However often the port is asked, the loop's process renders once per CACHE_SECONDS."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily

    renderings = []

    class Counting:
        def collect(self):
            renderings.append(time.monotonic())
            yield GaugeMetricFamily("game_example", "An example.", value=len(renderings))

    registry = CollectorRegistry()
    registry.register(Counting())
    renderings.clear()  # register() collects once to learn the names
    exporter = MetricsServer(registry, "127.0.0.1", 0).start()
    try:
        with requests.Session() as session:
            url = f"http://127.0.0.1:{exporter.port}/metrics"
            texts = {session.get(url, timeout=5).text for _ in range(50)}
    finally:
        exporter.close()
    assert len(renderings) == 1
    assert len(texts) == 1 and "game_example 1.0" in next(iter(texts))
