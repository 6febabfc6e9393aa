"""Hundreds of idle or slow connections (anyone on the server can open them) do not stop
the API: the game's requests still get their answers (main.py's waitress settings)."""

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from main import create_app, make_server
from modules import access

pytestmark = pytest.mark.exercise(1)  # the answers come from exercise 1's /predict

TOKEN = "team-secret-token"
IDLE, SLOW = 300, 300


@contextlib.contextmanager
def held_connections(port: int, idle: int, slow: int) -> Iterator[list[socket.socket]]:
    """`idle` connections that send nothing and `slow` ones that never finish their head."""
    socks = []
    try:
        for i in range(idle + slow):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i >= idle:
                sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_the_game_is_answered_beside_hundreds_of_idle_and_slow_connections(
    tmp_path: Path, model_path: Path, applicant: dict
) -> None:
    app = create_app(
        {
            "TESTING": True,
            "MODEL_PATH": str(model_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'predictions.sqlite'}",
            "TEAM_TOKEN": TOKEN,
        }
    )
    server = make_server(app, "127.0.0.1", 0, 8)
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{server.effective_port}/predict"
    try:
        with held_connections(int(server.effective_port), IDLE, SLOW) as socks:
            game = requests.Session()  # kept alive, like the game's customer
            game.headers["X-Game-Key"] = access.game_key(TOKEN)
            answers = [game.post(url, json=applicant, timeout=10) for _ in range(50)]
            assert [a.status_code for a in answers] == [200] * 50
            for sock in socks[IDLE:]:  # the slow ones trickle on
                sock.sendall(b"X-Slow: 1\r\n")
            fresh = requests.post(url, json=applicant, timeout=10, headers=game.headers)
            assert fresh.status_code == 200
            stranger = requests.post(url, json=applicant, timeout=10)
            assert stranger.status_code == 401  # another user on the server
    finally:
        server.close()
        app.extensions["batcher"].close()
        app.extensions["db_writer"].close()
