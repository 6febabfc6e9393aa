"""Who is ready (issue 14, GAME.md §8): before the game and while it is paused, the game
loop probes each active team's health route; the board, the team page and the
instructor page show who is up, and why not. Probes are never results."""

import asyncio
import dataclasses
import re
import time

import pytest
import sqlalchemy as sa
from engine_helpers import fast_game, play
from team_apis import TeamAPIs, hang, json_answer, raw_answer, refused_port, response
from web_helpers import make_game

from game_server.play import loop as game
from game_server.play import protocols, teams
from game_server.play.customer import Customer, Health, Target
from game_server.storage import control, database, health, schema
from game_server.storage import teams as registry
from game_server.web.app import create_app

ADMIN = "instructor-secret-token"


@pytest.fixture
def apis():
    """A place to start team APIs; closed after the test."""
    servers = TeamAPIs()
    yield servers
    servers.close()


@pytest.mark.parametrize(
    "protocol, url, expected",
    [
        ("native", "http://127.0.0.1:9001/predict", "http://127.0.0.1:9001/health"),
        ("native", "http://team.example:80/v1/predict?x=1", "http://team.example:80/health"),
        ("mlflow", "http://127.0.0.1:5001/", "http://127.0.0.1:5001/health"),
        ("openinference", "http://127.0.0.1:8080", "http://127.0.0.1:8080/v2/health/ready"),
    ],
)
def test_each_protocol_has_its_health_route(protocol, url, expected):
    assert protocols.health_url(protocol, url) == expected


def probe(*targets: Target, timeout: float = 0.3, allowed=("127.0.0.1",)) -> list[Health]:
    """Probe `targets` with a fresh customer."""

    async def run():
        async with Customer(timeout=timeout, allowed_hosts=allowed) as customer:
            return [await customer.probe(t) for t in targets]

    return asyncio.run(run())


def test_a_probe_says_up_or_why_not_with_the_customer_s_rules(apis):
    ok = apis.start(json_answer({"status": "ok"}))
    sick = apis.start(json_answer({"error": "no model"}, status=503))
    landing = apis.start(json_answer({"status": "ok"}))
    moved = apis.start(raw_answer(response(302, b"", Location=f"{landing.base_url}/health")))
    slow = apis.start(hang())
    oip = apis.start(json_answer({}))
    found = probe(
        Target(1, ok.url),
        Target(2, sick.url),
        Target(3, moved.url),
        Target(4, slow.url),
        Target(5, f"http://127.0.0.1:{refused_port()}/predict"),
        Target(6, "http://10.9.9.9:9001/predict"),
        Target(7, oip.base_url, "openinference", "model"),
    )
    assert [(h.team_id, h.up, h.reason, h.status_code) for h in found] == [
        (1, True, None, 200),
        (2, False, "http_status", 503),
        (3, False, "redirect", 302),
        (4, False, "timeout", None),
        (5, False, "connect_error", None),
        (6, False, "host_not_allowed", None),
        (7, True, None, 200),
    ]
    assert [(r.method, r.path) for r in ok.requests] == [("GET", "/health")]
    assert landing.requests == []  # the redirect was not followed
    assert [r.path for r in oip.requests] == ["/v2/health/ready"]


def long_game():
    """The fast test game with phases long enough to watch the loop while it runs."""
    g = fast_game()
    return dataclasses.replace(
        g, phases=tuple(dataclasses.replace(p, duration=30.0) for p in g.phases)
    )


def health_gets(api) -> int:
    """How many probes an API has seen."""
    return sum(r.method == "GET" for r in api.requests)


@pytest.mark.slow  # a game loop in real time (about 10 s)
def test_the_loop_probes_in_the_lobby_and_paused_never_while_running(sqlite_url, apis):
    engine = database.make_engine(sqlite_url)
    game_file = long_game()
    database.prepare_game(engine, game_file)
    ready = apis.start(json_answer({"pred": 1}))
    teams.add_team(engine, "ready", ready.url)
    teams.add_team(engine, "missing", f"http://127.0.0.1:{refused_port()}/predict")
    seen = {}

    def rows():
        with engine.connect() as conn:
            return {
                r.team_id: (r.up, r.reason) for r in conn.execute(sa.select(schema.team_health))
            }

    async def during(t):
        if t > 2.5 and "lobby" not in seen:  # the first probes are in: start the game
            seen["lobby"] = (rows(), health_gets(ready))
            control.apply(engine, "start", "tester")
        if t > 3.5 and "running" not in seen:  # a probe begun before the start is over
            seen["running"] = health_gets(ready)
        if t > 6.0 and "paused" not in seen:  # two whole probe intervals of running
            seen["paused"] = health_gets(ready)
            control.apply(engine, "pause", "tester")

    # until a state it never reaches: the loop runs for `limit` seconds
    asyncio.run(play(game.Game(engine, game_file), engine, until="-", limit=11.0, during=during))
    lobby_rows, lobby_gets = seen["lobby"]
    with engine.connect() as conn:
        ids = {t["name"]: t["id"] for t in registry.list_teams(conn)}
        results = conn.execute(
            sa.select(sa.func.count())
            .select_from(schema.results)
            .where(schema.results.c.team_id == ids["ready"])
        ).scalar()
    assert lobby_rows == {ids["ready"]: (True, None), ids["missing"]: (False, "connect_error")}
    assert lobby_gets >= 1
    assert seen["paused"] == seen["running"]  # no probe while running
    assert health_gets(ready) > seen["paused"]  # probed again while paused
    posts = sum(r.method == "POST" for r in ready.requests)
    assert posts > 0 and results == posts  # the rounds are results, the probes are not


@pytest.fixture
def lobby(db_url):
    """A game in the lobby with the teams red, blue and green; (engine, app)."""
    engine, _ = make_game(db_url, names=("red", "blue", "green"), start=False)
    app = create_app({"DATABASE_URL": db_url, "TESTING": True, "ADMIN_TOKEN": ADMIN})
    yield engine, app
    engine.dispose()


def store_probes(engine, probes: dict[str, tuple], at: float) -> None:
    """Store a probe row per named team: (up, reason, status)."""
    with engine.begin() as conn:
        ids = {t["name"]: t["id"] for t in registry.list_teams(conn)}
        health.store(
            conn,
            [
                {"team_id": ids[n], "up": up, "reason": why, "status_code": code, "checked_at": at}
                for n, (up, why, code) in probes.items()
            ],
        )


def board_up(app) -> dict:
    """{team: (up, up_reason)} from the public leaderboard."""
    board = app.test_client().get("/api/leaderboard").get_json()
    return {t["name"]: (t["up"], t.get("up_reason")) for t in board["teams"]}


def not_ready_list(app) -> list[str]:
    """The instructor page's list of teams that are not ready, as text lines."""
    client = app.test_client()
    page = client.get("/admin").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/admin/login", data={"token": ADMIN, "csrf_token": csrf})
    html = client.get("/admin").get_data(as_text=True)
    if 'id="not-ready"' not in html:
        return ["(all ready)"] if 'id="all-ready"' in html else []
    items = re.findall(r"<li><a [^>]*>([^<]*)</a>: <code>([^<]*)</code></li>", html)
    return [f"{name}: {why}" for name, why in items]


def test_the_pages_show_who_is_up_in_the_lobby_and_who_is_not_ready(lobby):
    engine, app = lobby
    now = time.time()
    store_probes(engine, {"red": (True, None, 200), "blue": (False, "http_status", 503)}, now)
    store_probes(engine, {"green": (True, None, 200)}, now - 60)  # stale: says nothing
    assert board_up(app) == {
        "red": (True, None),
        "blue": (False, "http_status 503"),
        "green": (None, None),
    }
    summary = app.test_client().get("/api/teams/blue").get_json()
    assert summary["standing"]["up"] is False
    assert summary["standing"]["up_reason"] == "http_status 503"
    assert not_ready_list(app) == ["blue: http_status 503", "green: not probed yet"]

    store_probes(engine, {"blue": (True, None, 200), "green": (True, None, 200)}, time.time())
    app.extensions["game_live_cache"].clear()
    assert {name: up for name, (up, _) in board_up(app).items()} == {
        "red": True,
        "blue": True,
        "green": True,
    }
    assert not_ready_list(app) == ["(all ready)"]

    control.apply(engine, "start", "tester")  # running: "up" comes from the answers
    app.extensions["game_live_cache"].clear()
    assert board_up(app) == {"red": (None, None), "blue": (None, None), "green": (None, None)}
    assert not_ready_list(app) == []  # no list while the game runs
