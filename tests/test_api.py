"""The JSON API on both databases: leaderboard, team results, feedback with tokens, health."""

import logging
import time

import pytest
from engine_helpers import request_row, result

from game_server.common import records
from game_server.play import teams
from game_server.storage import control, database, games, reveal, writes
from game_server.web.app import create_app


@pytest.fixture
def game(db_url):
    """A running game with two teams and a few scored rounds; the tokens by team."""
    engine = database.make_engine(db_url)
    database.init_db(engine)
    with engine.begin() as conn:
        games.configure_game(
            conn,
            "api test",
            "t.toml",
            {"allowed_hosts": ["127.0.0.1"]},
            [
                {
                    "name": "warm-up",
                    "kind": "warmup",
                    "duration": 30.0,
                    "rate": 1.0,
                    "burst": 1,
                    "description": "get the API up",
                }
            ],
        )
    tokens = {
        "red": teams.add_team(engine, "red", "http://127.0.0.1:9001/predict"),
        "blue": teams.add_team(engine, "blue", "http://127.0.0.1:9002/predict"),
    }
    control.apply(engine, "start", "tester")
    now = time.time()
    with engine.begin() as conn:
        writes.insert_requests(
            conn,
            [
                request_row(1, sent_at=now - 10),
                request_row(2, sent_at=now - 10),
                request_row(3, sent_at=now, delay=60),
            ],
        )
        writes.store_rounds(
            conn,
            [
                records.ScoredRound(
                    s,
                    0,
                    0.8,
                    0.2,
                    [result(1, "correct", pred=1), result(2, "failed", "http_status", status=500)],
                )
                for s in (1, 2, 3)
            ],
        )
        reveal.reveal_labels(conn)  # as the game loop does every second
    yield engine, tokens
    engine.dispose()


@pytest.fixture
def client(game, db_url):
    """A test client of the app on the game's database."""
    return create_app({"DATABASE_URL": db_url, "TESTING": True}).test_client()


def test_leaderboard(client):
    body = client.get("/api/leaderboard").get_json()
    assert body["game"]["state"] == "running" and body["frozen"] is False
    assert body["game"]["phase"]["name"] == "warm-up" and body["game"]["phase"]["index"] == 0
    assert 0 < body["game"]["time_left"] <= 30
    red, blue = body["teams"]
    # the third request's label is not visible yet: its correct answer does not count yet
    assert (red["name"], red["rank"], red["points"], red["correct"]) == ("red", 1, 2, 2)
    # a failure tells nothing of the label: all three count at once
    assert (blue["points"], blue["failed"], blue["failures"]) == (-3, 3, {"http_status": 3})
    ref = body["reference"]
    assert (ref["requests"], ref["revealed"], ref["oracle_points"]) == (3, 2, 1.6)


def test_team_results_and_limits(client):
    body = client.get("/api/teams/blue/results?limit=2").get_json()
    assert body["team"] == "blue" and [r["seq"] for r in body["results"]] == [3, 2]
    assert (
        body["results"][0]["reason"] == "http_status" and body["results"][0]["status_code"] == 500
    )
    for bad in ("0", "501", "ten", "-1"):
        resp = client.get(f"/api/teams/blue/results?limit={bad}")
        assert resp.status_code == 400 and "limit" in resp.get_json()["error"]
    assert client.get("/api/teams/green/results").status_code == 404


def test_feedback_needs_the_teams_token(client, game, caplog):
    _, tokens = game
    caplog.set_level(logging.WARNING)
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": tokens["red"]}):
        resp = client.get("/api/feedback", headers=headers)
        assert resp.status_code == 401 and "token" in resp.get_json()["error"]
    assert caplog.text.count("feedback 401 client=127.0.0.1") == 3
    assert tokens["red"] not in caplog.text


def test_feedback_is_the_teams_own_revealed_labels(client, game):
    _, tokens = game
    red = client.get("/api/feedback?after=0", headers={"Authorization": f"Bearer {tokens['red']}"})
    body = red.get_json()
    assert [i["seq"] for i in body["items"]] == [1, 2] and body["cursor"] == 2  # 3 is hidden
    assert all(i["pred"] == 1 and i["outcome"] == "correct" for i in body["items"])
    blue = client.get("/api/feedback", headers={"Authorization": f"Bearer {tokens['blue']}"})
    assert [i["outcome"] for i in blue.get_json()["items"]] == ["failed", "failed"]
    again = client.get(
        "/api/feedback?after=2", headers={"Authorization": f"Bearer {tokens['red']}"}
    )
    assert again.get_json() == {"cursor": 2, "items": []}
    bad = client.get("/api/feedback?after=x", headers={"Authorization": f"Bearer {tokens['red']}"})
    assert bad.status_code == 400 and bad.get_json() == {
        "error": "after must be an integer, not 'x'"
    }


def test_health(client):
    assert client.get("/api/health").get_json() == {"ok": True, "state": "running"}


def test_an_empty_database_is_a_503_with_a_hint(tmp_path):
    client = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite'}"}).test_client()
    for path in ("/api/health", "/api/leaderboard"):
        resp = client.get(path)
        assert resp.status_code == 503 and "game-server init" in resp.get_json()["error"]


def test_database_url_comes_from_the_environment(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'env.sqlite'}"
    monkeypatch.setenv("GAME_DATABASE_URL", url)
    app = create_app()
    assert app.config["DATABASE_URL"] == url
