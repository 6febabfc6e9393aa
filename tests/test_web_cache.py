"""The pages' JSON cache: one recomputation at a time, the others served the last answer;
a refresher thread off the request path; fresh answers served before Flask routes."""

import threading
import time

from flask import Flask

from game_server.web import cache
from game_server.web.cache import cached_json, fast_answers


def test_a_stale_entry_is_recomputed_by_one_thread_while_the_others_get_the_old_one():
    app = Flask(__name__)
    app.config["LIVE_CACHE_SECONDS"] = 0  # always stale
    calls, answers = [], []
    entered, release = threading.Event(), threading.Event()

    def slow():
        calls.append(1)
        entered.set()
        assert release.wait(5)
        return {"n": len(calls)}

    def recompute():
        with app.app_context():
            answers.append(cached_json("board", slow).get_json())

    with app.app_context():
        assert cached_json("board", lambda: {"n": 0}).get_json() == {"n": 0}
    refresher = threading.Thread(target=recompute)
    refresher.start()
    assert entered.wait(5)
    with app.app_context():  # while the refresher computes: the old answer, no second compute
        assert cached_json("board", slow).get_json() == {"n": 0}
    assert len(calls) == 1
    release.set()
    refresher.join(5)
    assert answers == [{"n": 1}]
    with app.app_context():  # the next stale read recomputes again
        release.set()
        assert cached_json("board", slow).get_json() == {"n": 2}


def counting_app(ttl: float) -> tuple[Flask, list[str]]:
    """An app whose `/api/board` is cached under "board"; the names of the threads that
    computed it, in order."""
    app = Flask(__name__)
    app.config["LIVE_CACHE_SECONDS"] = ttl
    threads: list[str] = []

    def compute() -> dict:
        threads.append(threading.current_thread().name)
        return {"n": len(threads)}

    app.add_url_rule("/api/board", "board", lambda: cached_json("board", compute))
    app.wsgi_app = fast_answers(app, {"/api/board": "board"}, [("X-Test", "yes")])
    return app, threads


def wait_until(condition, limit: float = 10.0) -> None:
    """Poll `condition()` until it is true (fails after `limit` seconds)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_after_the_first_request_a_refresher_thread_recomputes_off_the_request_path(
    monkeypatch,
):
    monkeypatch.setattr(cache, "IDLE_SECONDS", 0.5)
    app, threads = counting_app(ttl=0.05)
    client = app.test_client()
    assert client.get("/api/board").get_json() == {"n": 1}  # computed in the request
    request_thread = threads[0]
    wait_until(lambda: len(threads) >= 3)  # nobody asked: the refresher recomputed
    assert set(threads[1:]) == {"refresh-board"} and request_thread != "refresh-board"
    answers = {client.get("/api/board").get_json()["n"] for _ in range(20)}
    assert all(name == "refresh-board" for name in threads[1:])  # no request computed
    assert max(answers) > 1
    wait_until(lambda: "board" not in cache.live_cache(app).refreshing)  # idle: it stops
    stopped_at = len(threads)
    time.sleep(0.3)
    assert len(threads) == stopped_at


def test_a_fresh_answer_is_served_before_flask_routes_with_its_etag_and_a_304():
    app, threads = counting_app(ttl=60)
    seen: list[str] = []
    app.before_request(lambda: seen.append("flask") and None)
    client = app.test_client()
    first = client.get("/api/board")
    assert first.status_code == 200 and seen == ["flask"] and "X-Test" not in first.headers
    second = client.get("/api/board")
    assert second.status_code == 200 and seen == ["flask"]  # not routed by Flask
    assert second.data == first.data and second.headers["ETag"] == first.headers["ETag"]
    assert second.headers["X-Test"] == "yes" and second.headers["Content-Type"] == (
        "application/json"
    )
    again = client.get("/api/board", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b"" and seen == ["flask"]
    assert client.post("/api/board").status_code == 405 and seen == ["flask", "flask"]
    assert len(threads) == 1
