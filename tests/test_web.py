"""The web app with Flask's test client: pages, JSON API, instructor page, security.

Storage-backed tests run on SQLite and PostgreSQL (`db_url`).
"""

import json
import logging
import re
import time
from pathlib import Path

import pytest
from web_helpers import XSS_NAME, make_game, store_results, team_ids

from game_server.common import records
from game_server.storage import games, queries, schema, writes
from game_server.web.app import create_app

ADMIN = "instructor-secret"


@pytest.fixture
def game(db_url):
    """A running demo game with red, blue and the XSS-named team, a few rounds stored."""
    engine, tokens = make_game(db_url, xss=True)
    store_results(engine, {"red": "correct", "blue": "failed", XSS_NAME: "wrong"}, rounds=3)
    yield engine, tokens
    engine.dispose()


@pytest.fixture
def app(game, db_url):
    """The app on the game's database, with an instructor token."""
    config = {"DATABASE_URL": db_url, "TESTING": True, "ADMIN_TOKEN": ADMIN}
    return create_app({**config, "LIVE_CACHE_SECONDS": 0})


@pytest.fixture
def client(app):
    """A test client."""
    return app.test_client()


# --- pages ---------------------------------------------------------------------------


def test_pages_render_with_security_headers(client):
    for path in ("/", "/teams/red", "/monitoring", "/admin"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.mimetype == "text/html"
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self';" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        html = r.get_data(as_text=True)
        assert "Loan default: demo" in html
        assert not re.search(r"<script>(?!</script>)", html)  # no inline script
        assert "http://" not in html and "https://" not in html  # nothing from outside
    assert "/static/vendor/plotly.min.js" in client.get("/").get_data(as_text=True)


def test_team_names_are_escaped(client):
    name = XSS_NAME.replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")
    r = client.get(f"/teams/{name}")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and XSS_NAME not in html
    missing = client.get("/teams/%3Cb%3Enobody")
    assert missing.status_code == 404
    assert "&lt;b&gt;nobody" in missing.get_data(as_text=True)


def test_plotly_is_served_locally_with_long_cache(client):
    r = client.get("/static/vendor/plotly.min.js")
    assert r.status_code == 200 and r.mimetype == "text/javascript"
    assert r.headers["Cache-Control"] == "public, max-age=31536000"
    assert b"plotly.js" in r.data[:2000].lower()
    assert client.get("/static/js/leaderboard.js").status_code == 200


def test_plotly_js_is_the_pinned_npm_release():
    """The committed file is the release scripts/vendor/package.json pins (`make plotly-js`)."""
    from game_server.web import pages

    vendor = Path(__file__).resolve().parents[1] / "scripts" / "vendor"
    pinned = json.loads((vendor / "package.json").read_text())["dependencies"]
    locked = json.loads((vendor / "package-lock.json").read_text())["packages"]
    version = pinned["plotly.js-dist-min"]
    assert locked["node_modules/plotly.js-dist-min"]["version"] == version == pages.PLOTLY_VERSION
    assert f"plotly.js v{version}\n".encode() in pages.PLOTLY_JS.read_bytes()[:100]


def test_slides(client, app, tmp_path):
    assert client.get("/slides").status_code == 301
    assert client.get("/slides").headers["Location"].endswith("/slides/")
    app.config["SLIDES_DIR"] = str(tmp_path / "nothing")
    r = client.get("/slides/")
    assert r.status_code == 404 and "make slides" in r.get_data(as_text=True)
    (tmp_path / "deck").mkdir()
    (tmp_path / "deck" / "index.html").write_text("<h1>deck</h1>")
    (tmp_path / "deck" / "a.css").write_text("h1{}")
    app.config["SLIDES_DIR"] = str(tmp_path / "deck")
    assert client.get("/slides/").get_data(as_text=True) == "<h1>deck</h1>"
    assert client.get("/slides/a.css").status_code == 200
    assert client.get("/slides/../../etc/passwd").status_code == 404
    assert "'unsafe-inline'" in client.get("/slides/").headers["Content-Security-Policy"]


# --- JSON API ------------------------------------------------------------------------


def test_etag_gives_304_until_something_changes(client, game):
    first = client.get("/api/history")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    assert client.get("/api/teams/red/results", headers={"If-None-Match": etag}).status_code == 200
    client.application.config["TESTING"] = True
    engine, _ = game
    # the leaderboard's clock ticks while running: pause so that nothing changes
    from game_server.storage import control

    control.apply(engine, "pause", "tester")
    board = client.get("/api/leaderboard")
    again = client.get("/api/leaderboard", headers={"If-None-Match": board.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    store_results(engine, {"red": "correct"})
    changed = client.get("/api/leaderboard", headers={"If-None-Match": board.headers["ETag"]})
    assert changed.status_code == 200
    assert changed.get_json()["teams"][0]["points"] == 4


def test_leaderboard_is_cached_briefly(client, game):
    client.application.config["LIVE_CACHE_SECONDS"] = 60
    before = client.get("/api/leaderboard").get_json()["teams"][0]["points"]
    store_results(game[0], {"red": "correct"})
    assert client.get("/api/leaderboard").get_json()["teams"][0]["points"] == before
    client.application.config["LIVE_CACHE_SECONDS"] = 0
    assert client.get("/api/leaderboard").get_json()["teams"][0]["points"] == before + 1


def test_history_is_downsampled_and_ends_at_the_live_totals(client, game):
    engine, _ = game
    ids = team_ids(engine)
    with engine.begin() as conn:
        t0 = time.time() - 1000
        conn.execute(
            schema.points_history.insert(),
            [{"at": t0 + i, "team_id": ids["red"], "points": i} for i in range(700)],
        )
    body = client.get("/api/history").get_json()
    red = body["teams"]["red"]
    assert len(red) == 300
    assert red[0] == [t0, 0] and red[-1][1] == 3  # the live total
    assert body["teams"][XSS_NAME][-1][1] == 0
    assert body["oracle"][-1][1] == pytest.approx(2.4)


def test_history_stops_at_the_freeze(client, game):
    from game_server.storage import control

    engine, _ = game
    with engine.begin() as conn:
        writes.sample_history(conn, time.time() - 5)
    control.apply(engine, "freeze", "tester")
    store_results(engine, {"red": "correct"}, rounds=5)
    with engine.begin() as conn:
        writes.sample_history(conn, time.time() + 1)
    body = client.get("/api/history").get_json()
    assert body["frozen_at"] is not None
    assert max(p[1] for p in body["teams"]["red"]) == 3  # not the 8 after the freeze
    board = client.get("/api/leaderboard").get_json()
    assert board["frozen"] and board["teams"][0]["points"] == 3
    summary = client.get("/api/teams/red").get_json()
    assert summary["frozen"] and summary["standing"]["points"] == 3


def test_team_summary(client, game):
    body = client.get("/api/teams/blue").get_json()
    assert body["team"] == "blue" and body["standing"]["failed"] == 3
    assert body["failures"] == {"http_status": 3}
    assert "status" in body["reasons"]["http_status"].lower()
    assert body["label_delay"] == 10
    assert [p["results"] for p in body["series"]] == [3] and body["series"][0]["failed"] == 3
    assert client.get("/api/teams/nobody").status_code == 404


def test_team_results_public_and_private(client, game):
    engine, tokens = game
    store_results(engine, {"red": "wrong", "blue": "failed"}, delay=600)  # label not visible
    public = client.get("/api/teams/red/results").get_json()
    assert public["private"] is False
    newest, older = public["results"][0], public["results"][1]
    assert newest["outcome"] == "answered" and newest["pred"] is None and newest["points"] is None
    assert older["outcome"] == "correct" and older["pred"] == 1
    blue = client.get("/api/teams/blue/results").get_json()["results"][0]
    assert blue["reason"] == "http_status" and blue["status_code"] == 500
    assert blue["body_excerpt"] is None
    auth = {"Authorization": f"Bearer {tokens['red']}"}
    private = client.get("/api/teams/red/results", headers=auth)
    assert private.headers["Cache-Control"] == "private, no-cache"
    mine = private.get_json()["results"][0]
    assert private.get_json()["private"] is True
    assert mine["pred"] == 0 and mine["outcome"] == "answered"  # still no label before its time
    other = client.get("/api/teams/blue/results", headers=auth)
    assert other.status_code == 401
    wrong = client.get("/api/teams/red/results", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "token" in wrong.get_json()["error"]


def test_private_view_shows_body_excerpts(client, game):
    engine, tokens = game
    ids = team_ids(engine)
    from engine_helpers import next_seq, request_row

    from game_server.common.records import Result, Score

    with engine.begin() as conn:
        seq = next_seq(conn)
        writes.insert_requests(conn, [request_row(seq)])
        bad = Result(ids["blue"], Score("failed", "invalid_json", None, -1, 200, "<oops>"), 5.0)
        writes.store_rounds(conn, [records.ScoredRound(seq, 0, 0.8, 0.2, [bad])])
    auth = {"Authorization": f"Bearer {tokens['blue']}"}
    mine = client.get("/api/teams/blue/results", headers=auth).get_json()["results"][0]
    assert mine["body_excerpt"] == "<oops>" and mine["reason"] == "invalid_json"
    public = client.get("/api/teams/blue/results").get_json()["results"][0]
    assert public["body_excerpt"] is None and public["status_code"] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/teams/red/results?limit=0",
        "/api/teams/red/results?limit=abc",
        "/api/monitoring?phase=x",
        "/api/monitoring?last=5",
        "/api/monitoring?last=100000",
        "/api/feedback?after=-1",
    ],
)
def test_bad_parameters_are_400_one_liners(client, game, path):
    _, tokens = game
    r = client.get(path, headers={"Authorization": f"Bearer {tokens['red']}"})
    assert r.status_code == 400
    error = r.get_json()["error"]
    assert "\n" not in error and len(error) < 120


def test_monitoring(client, game):
    engine, _ = game
    body = client.get("/api/monitoring").get_json()
    assert body["reference"] == {"source": "training data", "rows": 10000}
    assert body["n_current"] == 3 and len(body["features"]) == 14
    age = next(f for f in body["features"] if f["feature"] == "age")
    assert age["method"] == "Wasserstein (normed)" and age["n_current"] == 3
    assert body["timeline"] is None  # the room's puzzle until the game is over
    assert [p["name"] for p in body["phases"]][:2] == ["warm-up", "messy input"]
    assert client.get("/api/monitoring?phase=3").get_json()["n_current"] == 0
    from game_server.storage import control

    control.apply(engine, "finish", "tester")
    client.application.extensions["game_monitor"].cache_seconds = 0
    timeline = client.get("/api/monitoring?phase=all&last=200").get_json()["timeline"]
    shift = next(p for p in timeline if p["kind"] == "shift")
    assert shift["shift"]["loan_factor"] == 1.7 and shift["drift"] == {}
    assert timeline[0]["shift"] == {} and timeline[1]["oddity_share"] == 0.4


def test_monitoring_is_cached(client, game):
    engine, _ = game
    first = client.get("/api/monitoring").get_json()["n_current"]
    store_results(engine, {"red": "correct"})
    assert client.get("/api/monitoring").get_json()["n_current"] == first
    client.application.extensions["game_monitor"].cache_seconds = 0
    assert client.get("/api/monitoring").get_json()["n_current"] == first + 1


def test_openapi_describes_every_api_route(client, app):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routes |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == documented


def test_not_initialised_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    client = create_app({"DATABASE_URL": url, "TESTING": True}).test_client()
    r = client.get("/api/leaderboard")
    assert r.status_code == 503 and "game-server init" in r.get_json()["error"]
    page = client.get("/")
    assert page.status_code == 200  # the shell loads; its polls show the problem


def test_secret_key_is_shared_by_workers(game, db_url):
    a = create_app({"DATABASE_URL": db_url})
    b = create_app({"DATABASE_URL": db_url})
    assert a.secret_key == b.secret_key and len(a.secret_key) == 64
    c = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "given"})
    assert c.secret_key == "given"


# --- instructor page -----------------------------------------------------------------


def csrf(client) -> str:
    """The CSRF token of the current session (from the page's form)."""
    html = client.get("/admin").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client) -> str:
    """Log in as the instructor; the CSRF token."""
    r = client.post("/admin/login", data={"token": ADMIN, "csrf_token": csrf(client)})
    assert r.status_code == 302
    return csrf(client)


def test_admin_login(client, caplog):
    html = client.get("/admin").get_data(as_text=True)
    assert "Instructor token" in html and "Start" not in html
    with caplog.at_level(logging.WARNING):
        wrong = client.post("/admin/login", data={"token": "nope", "csrf_token": csrf(client)})
    assert wrong.status_code == 401
    assert any("admin login 401" in r.getMessage() for r in caplog.records)
    assert "nope" not in caplog.text
    token = login(client)
    page = client.get("/admin").get_data(as_text=True)
    assert "next-phase" in page and "&lt;img src=x" in page and XSS_NAME not in page
    assert token


def test_admin_is_off_without_a_token(game, db_url):
    client = create_app({"DATABASE_URL": db_url, "TESTING": True}).test_client()
    assert "GAME_ADMIN_TOKEN" in client.get("/admin").get_data(as_text=True)
    assert client.post("/admin/login", data={"token": "x"}).status_code == 400  # no CSRF
    with client.session_transaction() as session:
        session["csrf"] = "t"
    r = client.post("/admin/login", data={"token": "", "csrf_token": "t"})
    assert r.status_code == 403


def test_admin_actions_need_login_and_csrf(client, game):
    engine, _ = game
    token = csrf(client)
    assert client.post("/admin/actions/pause", data={"csrf_token": token}).status_code == 401
    login(client)
    assert client.post("/admin/actions/pause").status_code == 400  # no CSRF token
    assert client.post("/admin/actions/pause", data={"csrf_token": "x"}).status_code == 400
    assert client.get("/admin/actions/pause").status_code == 405  # never a GET
    with engine.connect() as conn:
        assert games.game_row(conn).state == "running"


def test_admin_controls_go_through_control_and_are_logged(client, game, caplog):
    engine, _ = game
    token = login(client)
    with caplog.at_level(logging.INFO):
        for action in ("pause", "resume", "next-phase", "freeze", "unfreeze", "finish"):
            r = client.post(f"/admin/actions/{action}", data={"csrf_token": token})
            assert r.status_code == 302, action
    refused = client.post("/admin/actions/start", data={"csrf_token": token}, follow_redirects=True)
    assert "cannot start" in refused.get_data(as_text=True)
    with engine.connect() as conn:
        assert games.game_row(conn).state == "finished"
        log = queries.control_log_recent(conn, 10)
    assert [e["action"] for e in log[:7]] == [
        "start",
        "finish",
        "unfreeze",
        "freeze",
        "next-phase",
        "resume",
        "pause",
    ]
    assert all(e["actor"] == "admin:127.0.0.1" for e in log[:7])
    assert log[0]["ok"] is False or log[0]["ok"] == 0
    assert any("admin action=pause" in r.getMessage() for r in caplog.records)


def test_admin_adds_and_disables_teams(client, game):
    engine, _ = game
    token = login(client)
    r = client.post(
        "/admin/teams",
        data={"csrf_token": token, "name": "green", "url": "http://127.0.0.1:9050/predict"},
    )
    assert r.status_code == 302
    page = client.get("/admin").get_data(as_text=True)
    shown = re.search(r'<code class="token">([^<]+)</code>', page).group(1)
    assert "green" in page
    assert 'class="token"' not in client.get("/admin").get_data(as_text=True)  # once
    auth = {"Authorization": f"Bearer {shown}"}
    assert client.get("/api/teams/green/results", headers=auth).get_json()["private"] is True
    bad = client.post(
        "/admin/teams",
        data={"csrf_token": token, "name": "evil", "url": "http://10.1.2.3/predict"},
        follow_redirects=True,
    )
    assert "allow" in bad.get_data(as_text=True).lower()
    client.post("/admin/teams/green/disable", data={"csrf_token": token})
    with engine.connect() as conn:
        assert not queries.team_by_name(conn, "green")["active"]
        actions = [(e["action"], e["ok"]) for e in queries.control_log_recent(conn, 3)]
    assert [a for a, _ in actions] == ["disable-team", "add-team", "add-team"]


def test_admin_json_api_requires_the_token(client, game, caplog):
    with caplog.at_level(logging.WARNING):
        assert client.get("/api/admin/control-log").status_code == 401
        assert client.post("/api/admin/actions/pause").status_code == 401
        bad = {"Authorization": "Bearer wrong"}
        assert client.post("/api/admin/actions/pause", headers=bad).status_code == 401
    assert sum("admin api 401" in r.getMessage() for r in caplog.records) == 3
    auth = {"Authorization": f"Bearer {ADMIN}"}
    r = client.post("/api/admin/actions/pause", headers=auth)
    assert r.status_code == 200 and r.get_json()["state"] == "paused"
    assert client.post("/api/admin/actions/pause", headers=auth).status_code == 409
    assert client.post("/api/admin/actions/explode", headers=auth).status_code == 400
    actions = client.get("/api/admin/control-log", headers=auth).get_json()["actions"]
    assert actions[0]["action"] == "pause" and actions[0]["actor"] == "api:127.0.0.1"
    assert json.dumps(actions)  # plain JSON


def test_no_state_changing_get(app):
    for rule in app.url_map.iter_rules():
        if "admin" in rule.rule and rule.rule not in ("/admin/", "/admin"):
            if rule.endpoint == "api_admin.control_log":
                continue
            assert "GET" not in rule.methods, rule.rule
