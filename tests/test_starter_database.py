"""The starter's database helpers on SQLite and PostgreSQL, as a team's API uses them."""

import sys
import threading
from datetime import UTC, datetime

import pytest
from flask import Flask, jsonify, request
from starter_helpers import STARTER
from werkzeug.serving import make_server

sys.path.insert(0, str(STARTER))  # the starter is its own project: its `modules` package
from modules import database  # noqa: E402
from modules.db_writer import BackgroundWriter  # noqa: E402

TOKEN = "t0ken"


def record(request_id: str, **features) -> dict:
    """One prediction record as the API logs it."""
    return {
        "request_id": request_id,
        "received_at": datetime.now(UTC),
        "features": features,
        "pred": 1,
        "proba": 0.7,
        "model_version": "v1",
        "latency_ms": 3.0,
        "fallback": False,
    }


@pytest.fixture
def engine(db_url):
    """The starter's engine on a fresh database, with its tables."""
    engine = database.engine_from_env(db_url)
    database.create_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def game():
    """A feedback endpoint serving the documented contract, in pages of three."""
    labels = [{"id": f"r{i}", "label": i % 2} for i in range(7)]
    app = Flask("game")

    @app.get("/api/feedback")
    def feedback():
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return jsonify(error="unknown token"), 401
        after = int(request.args.get("after") or 0)
        return jsonify(items=labels[after : after + 3], cursor=min(after + 3, len(labels)))

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", labels
    server.shutdown()


def test_background_writer_saves_messy_features_as_sent(engine):
    writer = BackgroundWriter(engine, batch_size=4)
    messy = [record(f"m{i}", age=str(i), region=None, extra=[1, {"a": "Ü"}]) for i in range(10)]
    for item in messy:
        assert writer.submit(item)
    writer.close()
    logged = database.load_predictions(engine)
    assert len(logged) == 10 and writer.written == 10
    assert logged.iloc[0]["features"] == {"age": "9", "region": None, "extra": [1, {"a": "Ü"}]}


def test_feedback_and_training_frame(engine, game):
    url, labels = game
    database.save_predictions(engine, [record(f"r{i}", age=20 + i) for i in range(5)])
    assert database.pull_feedback(engine, url, TOKEN) == 7
    assert database.pull_feedback(engine, url, TOKEN) == 0  # nothing new, cursor remembered
    labels.append({"id": "r7", "label": 1})
    assert database.pull_feedback(engine, url, TOKEN) == 1
    frame = database.training_frame(engine, label="default")
    assert list(frame["request_id"]) == [f"r{i}" for i in range(5)]
    assert list(frame["default"]) == [0, 1, 0, 1, 0] and list(frame["age"]) == [20, 21, 22, 23, 24]


def test_feedback_with_a_wrong_token_is_a_clear_error(engine, game):
    with pytest.raises(database.FeedbackError, match="401"):
        database.pull_feedback(engine, game[0], "nope")
    assert database.load_cursor(engine) == "0"
