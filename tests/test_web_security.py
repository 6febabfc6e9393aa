"""The game server's web defences (docs/SECURITY.md), each against the attack it stops.

Storage-backed tests run on SQLite and PostgreSQL (`db_url`).
"""

import re

import pytest
from web_helpers import make_game

from game_server.play import teams
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
