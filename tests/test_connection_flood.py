"""Hundreds of idle or slow connections stop neither the web pages nor the metrics port
(issue 21 item 7: 110 idle connections silenced the leaderboard, 9 the metrics): at the
limit the stalest connection is closed to make room (`connections.make_room`)."""

import contextlib
import logging
import socket

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter
from web_helpers import make_game

from game_server.common import connections
from game_server.play.metrics import MetricsServer
from game_server.processes import webserver

IDLE, SLOW = 300, 300


@contextlib.contextmanager
def held_connections(port: int, idle: int = IDLE, slow: int = SLOW):
    """`idle` connections that send nothing and `slow` ones that never finish their head
    (a slowloris), all held open; the sockets."""
    socks = []
    try:
        for i in range(idle + slow):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i >= idle:
                sock.sendall(b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\n")
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def trickle(socks: list[socket.socket]) -> None:
    """The slow connections send one more header line each (ignoring the closed ones)."""
    for sock in socks[IDLE:]:
        with contextlib.suppress(OSError):
            sock.sendall(b"X-Slow: 1\r\n")


@pytest.fixture
def web(sqlite_url):
    """The web app served by waitress as `game-server web` serves it; its port."""
    engine, _ = make_game(sqlite_url)
    server = webserver.start_web(sqlite_url, "127.0.0.1", 0)
    yield int(server.effective_port)
    server.close()
    engine.dispose()


def test_the_leaderboard_answers_beside_hundreds_of_idle_and_slow_connections(web):
    url = f"http://127.0.0.1:{web}/api/leaderboard"
    with held_connections(web) as socks:
        board = requests.get(url, timeout=10)
        assert board.status_code == 200 and "teams" in board.json()
        trickle(socks)
        again = requests.Session()  # a browser's kept-alive polls
        assert [again.get(url, timeout=10).status_code for _ in range(5)] == [200] * 5


def test_the_metrics_answer_beside_hundreds_of_idle_and_slow_connections():
    registry = CollectorRegistry()
    Counter("flood_probe", "A counter to find.", registry=registry).inc()
    server = MetricsServer(registry, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with held_connections(server.port) as socks:
            assert "flood_probe_total 1.0" in requests.get(url, timeout=10).text
            trickle(socks)
            assert requests.get(url, timeout=10).status_code == 200
    finally:
        server.close()


def test_a_request_in_progress_is_never_the_one_closed():
    class Channel:
        def __init__(self, asked_at: float, serving: bool = False):
            self.asked_at, self.creation_time = asked_at, 0.0
            self.requests = ["a request"] if serving else []
            self.will_close = False

    class Listener:
        def __init__(self, *channels: Channel):
            self.active_channels = dict(enumerate(channels))
            self._map = {i: c for i, c in enumerate(channels)}

    busy, old, new = Channel(0.0, serving=True), Channel(10.0), Channel(20.0)
    full = Listener(busy, new, old)
    assert connections.close_stalest(full, limit=3) == 1
    assert old.will_close and not new.will_close and not busy.will_close
    assert connections.close_stalest(full, limit=3) == 0  # one is closing already
    assert connections.close_stalest(Listener(Channel(0.0, serving=True)), limit=1) == 0


def test_a_flood_of_connections_is_one_log_line_not_one_a_connection(web, caplog):
    caplog.set_level(logging.INFO)
    with held_connections(web, idle=webserver.CONNECTION_LIMIT + 100, slow=0):
        assert requests.get(f"http://127.0.0.1:{web}/api/health", timeout=10).ok
    crossings = [r for r in caplog.records if r.getMessage().startswith("total open connections")]
    assert crossings == []  # waitress would log one (or two) per connection made room for
