"""The expensive endpoints are bounded (issue 15): a per-client budget that answers 429,
monitoring only for a fixed set of windows, each report computed once and shared."""

import logging
import threading
import time

import pytest
from web_helpers import make_game, store_results

from game_server.web.app import create_app
from game_server.web.monitoring import WINDOWS, Monitor
from game_server.web.ratelimit import RequestBudget

TIGHT = {"teams": (0.001, 3), "monitoring": (0.001, 2), "feedback": (0.001, 2)}


@pytest.fixture
def game(db_url):
    """A running demo game with the teams red and blue, and a few results."""
    engine, tokens = make_game(db_url)
    store_results(engine, {"red": "correct", "blue": "failed"}, rounds=3)
    yield engine, tokens
    engine.dispose()


@pytest.fixture
def app(game, db_url):
    """The app with tight budgets (they refill in about 1,000 s: never within a test)."""
    return create_app({"DATABASE_URL": db_url, "TESTING": True, "RATE_LIMITS": TIGHT})


def get(app, path: str, addr: str = "10.0.0.1", **headers):
    """GET `path` as a client at `addr`."""
    return app.test_client().get(path, headers=headers, environ_base={"REMOTE_ADDR": addr})


def test_a_client_over_its_budget_gets_429_with_retry_after(app, game, caplog):
    caplog.set_level(logging.WARNING)
    paths = ["/api/teams/red", "/api/teams/red/results", "/api/teams/blue"]
    assert [get(app, p).status_code for p in paths] == [200, 200, 200]
    refused = get(app, "/api/teams/red/results?limit=500")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "too many requests to teams" in refused.get_json()["error"]
    assert "rate limited group=teams client=10.0.0.1 refused=1" in caplog.text
    # Another client has its own budget; the same client still reaches the other groups
    # and the cheap, cached endpoints.
    assert get(app, "/api/teams/red", addr="10.0.0.2").status_code == 200
    assert get(app, "/api/monitoring").status_code == 200
    assert get(app, "/api/leaderboard").status_code == 200
    _, tokens = game
    auth = {"Authorization": f"Bearer {tokens['red']}"}
    assert [get(app, "/api/feedback", **auth).status_code for _ in range(3)] == [200, 200, 429]


def test_the_budget_refills_at_its_rate():
    clock = [100.0]
    budget = RequestBudget(rate=2.0, burst=3, clock=lambda: clock[0])
    assert [budget.take("a") for _ in range(4)] == [0, 0, 0, 1]
    clock[0] += 0.5  # one request back
    assert [budget.take("a"), budget.take("a")] == [0, 1]
    clock[0] += 10  # never more than the burst
    assert [budget.take("a") for _ in range(4)] == [0, 0, 0, 1]
    assert budget.log_due() == 3 and budget.log_due() == 0  # one log line per 10 s


@pytest.mark.parametrize("last", WINDOWS)
def test_monitoring_answers_each_window_of_the_set(app, last):
    body = get(app, f"/api/monitoring?last={last}").get_json()
    assert body["last"] == last and body["n_current"] == 3


@pytest.mark.parametrize(
    "query, message",
    [
        ("last=300", "last must be one of 200, 1000, 5000, not 300"),
        ("last=10", "last must be one of 200, 1000, 5000, not 10"),
        ("phase=99", "phase must be all or 0..4, not 99"),
    ],
)
def test_monitoring_refuses_windows_and_phases_outside_the_set(app, query, message):
    answer = get(app, f"/api/monitoring?{query}")
    assert answer.status_code == 400 and answer.get_json() == {"error": message}
    monitor = app.extensions.get("game_monitor")
    assert monitor is None or (monitor._cache == {} and monitor._computing == {})  # nothing kept


def test_a_report_is_computed_once_for_clients_asking_at_once(game):
    engine, _ = game
    monitor = Monitor(engine, cache_seconds=60)
    computed = []
    real = monitor._compute

    def slow_compute(phase, last):
        computed.append((phase, last))
        time.sleep(0.3)  # the others arrive while this one computes
        return real(phase, last)

    monitor._compute = slow_compute
    reports = []
    threads = [
        threading.Thread(target=lambda: reports.append(monitor.cached(None, 1000)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert computed == [(None, 1000)]
    assert len(reports) == 8 and len({id(r) for r in reports}) == 1
    assert monitor.cached(0, 200).body["phase"] == 0 and len(computed) == 2


def test_a_flood_with_a_bogus_token_spends_no_teams_budget(app, game):
    """Issue 21 item 6: the budget is spent after authentication, per team; wrong tokens
    spend their client's (loopback is one client), never a team's."""
    _, tokens = game
    bogus = {"Authorization": "Bearer not-a-token"}
    flood = [get(app, "/api/feedback", addr=f"127.0.0.{i}", **bogus).status_code for i in (1, 2, 3)]
    assert flood == [401, 401, 429]
    red = {"Authorization": f"Bearer {tokens['red']}"}
    assert get(app, "/api/feedback", addr="127.0.0.1", **red).status_code == 200
    assert get(app, "/api/teams/red/results", addr="127.0.0.1", **red).status_code == 200
    # The team's budget is the team's, from any address: not a fresh one per address.
    assert get(app, "/api/feedback", addr="127.0.0.7", **red).status_code == 200
    assert get(app, "/api/feedback", addr="10.0.0.8", **red).status_code == 429
    blue = {"Authorization": f"Bearer {tokens['blue']}"}
    assert get(app, "/api/feedback", addr="127.0.0.1", **blue).status_code == 200
