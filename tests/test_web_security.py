"""The game server's web defences (docs/SECURITY.md), each against the attack it stops.

Storage-backed tests run on SQLite and PostgreSQL (`db_url`).
"""

import logging
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from itsdangerous import TimestampSigner
from web_helpers import make_game

from game_server.processes import webserver
from game_server.storage import database, games, teams
from game_server.web.app import ConfigError, create_app
from game_server.web.ratelimit import FailureLimit

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
        assert games.game_row(conn).state == "running"  # the action never ran
    at_the_cap = client.post("/api/admin/actions/pause", data=b"x" * CAP, headers=admin)
    assert at_the_cap.status_code == 200


def test_the_server_refuses_a_huge_body_without_reading_it(sqlite_url):
    """200 MB announced, 64 KiB sent: the answer is a 413 at once, not a wait for the rest."""
    database.init_db(database.make_engine(sqlite_url))
    server = webserver.start_web(sqlite_url, "127.0.0.1", 0)
    try:
        with socket.create_connection(("127.0.0.1", server.effective_port), timeout=10) as s:
            head = "POST /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 200000000\r\n\r\n"
            s.sendall(head.encode() + b"x" * CAP)
            status = s.recv(4096).split(b"\r\n", 1)[0]  # a timeout here: the body is awaited
    finally:
        server.close()
    assert b" 413 " in status


# --- instructor sessions and tokens -----------------------------------------------------


def act(client, action: str = "pause") -> int:
    """POST one game control from the instructor page (with the session's CSRF token)."""
    return client.post(f"/admin/actions/{action}", data={"csrf_token": csrf(client)}).status_code


def copy_of(client, app):
    """Another browser on `app` holding a copy of `client`'s session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def test_logout_ends_every_copy_of_every_instructor_session(app, client, db_url):
    assert login(client).status_code == 302
    stolen = copy_of(client, app)
    elsewhere = app.test_client()  # another instructor (or browser), logged in on its own
    assert login(elsewhere).status_code == 302
    other_worker = create_app({"DATABASE_URL": db_url, "ADMIN_TOKEN": ADMIN})
    in_other_worker = copy_of(client, other_worker)
    assert act(stolen) == 302 and act(in_other_worker, "resume") == 302
    logout = client.post("/admin/logout", data={"csrf_token": csrf(client)})
    assert logout.status_code == 302
    for browser in (client, stolen, elsewhere, in_other_worker):
        assert act(browser) == 401
        assert "Instructor token" in browser.get("/admin").get_data(as_text=True)
    assert login(client).status_code == 302 and act(client) == 302  # a new login works


def test_a_changed_admin_token_ends_the_sessions(client, db_url):
    assert login(client).status_code == 302
    restarted = create_app({"DATABASE_URL": db_url, "ADMIN_TOKEN": "another-long-secret"})
    assert act(copy_of(client, restarted)) == 401
    assert ADMIN not in client.get_cookie("session").value  # the cookie holds no token


def test_sessions_last_a_workshop_day(app, client, monkeypatch):
    assert app.permanent_session_lifetime.total_seconds() == 12 * 3600
    assert login(client).status_code == 302
    assert client.get_cookie("session").expires is not None  # the browser drops it too
    thirteen_hours_ago = int(time.time()) - 13 * 3600
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: thirteen_hours_ago)
    old = app.test_client()
    assert login(old).status_code == 302  # signed 13 hours ago
    monkeypatch.undo()
    assert act(old) == 401  # the cookie is void
    assert act(client) == 302


@pytest.mark.parametrize("token", ["short", "x" * 15])
def test_a_short_admin_token_is_refused_at_start(sqlite_url, token):
    with pytest.raises(ConfigError, match="GAME_ADMIN_TOKEN is .* at least 16"):
        create_app({"DATABASE_URL": sqlite_url, "ADMIN_TOKEN": token})
    assert create_app({"DATABASE_URL": sqlite_url, "ADMIN_TOKEN": ""})  # off, not short


def test_game_server_run_says_why_it_does_not_start(sqlite_url):
    env = {**os.environ, "GAME_ADMIN_TOKEN": "short"}
    argv = [sys.executable, "-m", "game_server", "--db", sqlite_url, "run", "--port", "0"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("Error: GAME_ADMIN_TOKEN is 5 ")
    assert "Traceback" not in done.stderr


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failed_logins_are_limited_per_client_and_logged(app, client, caplog):
    clock = Clock()
    app.extensions["game_login_limit"] = FailureLimit(clock=clock)
    caplog.set_level(logging.WARNING)
    for _ in range(5):
        assert login(client, "wrong-guess-0000").status_code == 401
    refused = login(client, "wrong-guess-0001")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == 60
    api = client.post("/api/admin/actions/pause", headers={"Authorization": "Bearer nope"})
    assert api.status_code == 429 and api.headers["Retry-After"] == "60" and api.is_json
    other = app.test_client()  # another address is not held back
    other_login = other.post(
        "/admin/login",
        data={"token": "wrong-guess-0002", "csrf_token": csrf(other)},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert other_login.status_code == 401
    assert caplog.text.count("admin login 401 client=127.0.0.1") == 5
    assert caplog.text.count("admin login 429 client=127.0.0.1") == 2
    assert "wrong-guess" not in caplog.text and ADMIN not in caplog.text
    clock.now += 61
    assert login(client, "wrong-guess-0003").status_code == 401


@pytest.mark.parametrize("guesser", ["127.0.0.1", "127.0.0.2", "127.9.9.9", "::1"])
def test_wrong_tokens_from_the_server_never_lock_the_instructor_out(app, client, guesser):
    """Issue 21 item 6: a team on the server cannot deny the instructor's right token, and
    no loopback address is a fresh client."""
    app.extensions["game_login_limit"] = FailureLimit(clock=Clock())
    wrong = {"Authorization": "Bearer wrong-guess-0000"}
    other = app.test_client()
    for _ in range(5):
        got = other.get(
            "/api/admin/control-log", headers=wrong, environ_base={"REMOTE_ADDR": guesser}
        )
        assert got.status_code == 401
    for addr in ("127.0.0.1", "127.0.0.3", "::1", "::ffff:127.0.0.4"):  # loopback is one
        got = other.get("/api/admin/control-log", headers=wrong, environ_base={"REMOTE_ADDR": addr})
        assert got.status_code == 429, addr
    assert login(client, ADMIN).status_code == 302  # the right token, from the same place
    right = {"Authorization": f"Bearer {ADMIN}"}
    assert client.get("/api/admin/control-log", headers=right).status_code == 200


def test_wrong_bearer_tokens_count_as_failed_logins(app, client):
    app.extensions["game_login_limit"] = FailureLimit(clock=Clock())
    for _ in range(5):
        wrong = client.get("/api/admin/control-log", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    assert client.get("/api/admin/control-log").status_code == 429
