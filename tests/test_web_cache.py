"""The pages' JSON cache: one recomputation at a time, the others served the last answer."""

import threading

from flask import Flask

from game_server.web.cache import cached_json


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
