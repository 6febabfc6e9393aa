"""The game server's web defences (docs/SECURITY.md), each against the attack it stops.

Storage-backed tests run on SQLite and PostgreSQL (`db_url`).
"""

import re
import socket

import pytest
from web_helpers import make_game

from game_server import serve
from game_server.play import teams
from game_server.storage import database as storage
from game_server.web.app import create_app

ADMIN = "instructor-secret"


@pytest.fixture
def game(db_url):
    """A running demo game with the teams red and blue."""
    engine, tokens = make_game(db_url)
    yield engine, tokens
    engine.dispose()


@pytest.fixture
def app(game, db_url):
    """The app on the game's database, with an instructor token."""
    return create_app({"DATABASE_URL": db_url, "TESTING": True, "ADMIN_TOKEN": ADMIN})


@pytest.fixture
def client(app):
    """A test client."""
    return app.test_client()


def csrf(client) -> str:
    """The CSRF token of the client's session (from the instructor page's form)."""
    html = client.get("/admin").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, token: str = ADMIN):
    """Log in as the instructor; the response."""
    return client.post("/admin/login", data={"token": token, "csrf_token": csrf(client)})


# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a%00b", "%00", "%ED%A0%80", "%C0%80", "x%0A%1B[31m"])
def test_impossible_team_names_in_urls_are_404(client, name):
    """NUL reached PostgreSQL (a 500); a name no team can have is simply not found."""
    for path in (f"/api/teams/{name}", f"/api/teams/{name}/results", f"/teams/{name}"):
        assert client.get(path).status_code == 404, path


def test_the_admin_page_refuses_control_characters_in_names_and_fields(client, game):
    engine, _ = game
    assert login(client).status_code == 302
    token = csrf(client)
    for form in (
        {"name": "Colon:Team", "url": "http://127.0.0.1:9050/predict"},
        {"name": "-h", "url": "http://127.0.0.1:9050/predict"},
        {"name": "nul\x00team", "url": "http://127.0.0.1:9050/predict"},
        {"name": "ok", "url": "http://127.0.0.1:9050/\x00"},
        {"name": "ok", "url": "http://127.0.0.1:9050/predict", "model": "m" * 201},
    ):
        r = client.post("/admin/teams", data={"csrf_token": token, **form})
        assert r.status_code in (302, 400), form
    assert client.post("/admin/teams/a%00b/disable", data={"csrf_token": token}).status_code == 302
    with engine.connect() as conn:
        assert {t["name"] for t in teams.list_teams(conn)} == {"red", "blue"}


# --- bodies ---------------------------------------------------------------------------

CAP = 64 * 1024


def test_a_body_over_the_cap_is_a_413_before_any_view(client, game):
    engine, _ = game
    big = b"x" * (CAP + 1)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    r = client.post("/api/admin/actions/pause", data=big, headers=admin)
    assert r.status_code == 413 and "bytes" in r.get_json()["error"]
    r = client.get("/api/health", data=big)
    assert r.status_code == 413 and r.is_json
    assert client.post("/admin/login", data={"token": "x" * CAP}).status_code == 413
    with engine.connect() as conn:
        assert storage.game_row(conn)["state"] == "running"  # the action never ran
    at_the_cap = client.post("/api/admin/actions/pause", data=b"x" * CAP, headers=admin)
    assert at_the_cap.status_code == 200


def test_the_server_refuses_a_huge_body_without_reading_it(sqlite_url):
    """200 MB announced, 64 KiB sent: the answer is a 413 at once, not a wait for the rest."""
    storage.init_db(storage.make_engine(sqlite_url))
    server = serve.start_web(sqlite_url, "127.0.0.1", 0)
    try:
        with socket.create_connection(("127.0.0.1", server.effective_port), timeout=10) as s:
            head = "POST /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 200000000\r\n\r\n"
            s.sendall(head.encode() + b"x" * CAP)
            status = s.recv(4096).split(b"\r\n", 1)[0]  # a timeout here: the body is awaited
    finally:
        server.close()
    assert b" 413 " in status
