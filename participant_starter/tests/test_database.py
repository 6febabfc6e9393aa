"""The database helpers: logging predictions, pulling feedback, the retraining frame."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import TOKEN, FeedbackServer
from modules import database
from modules.db_writer import BackgroundWriter


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    """A fresh SQLite database with the tables."""
    engine = database.engine_from_env(f"sqlite:///{tmp_path / 'team.sqlite'}")
    database.create_tables(engine)
    yield engine
    engine.dispose()


def record(request_id: str, pred: int = 0, **features: object) -> dict:
    """One prediction record as the API logs it."""
    return {
        "request_id": request_id,
        "received_at": datetime.now(UTC),
        "features": features,
        "pred": pred,
        "proba": 0.3,
        "model_version": "v1",
        "latency_ms": 2.5,
        "fallback": False,
    }


@pytest.mark.exercise(3)
def test_predictions_are_saved_and_loaded_newest_first(engine: sa.Engine) -> None:
    database.save_prediction(engine, record("a", age=30))
    database.save_predictions(engine, [record("b", age=40), record("c", pred=1)])
    logged = database.load_predictions(engine)
    assert list(logged["request_id"]) == ["c", "b", "a"]
    assert logged.iloc[1]["features"] == {"age": 40}
    assert list(database.load_predictions(engine, limit=1)["request_id"]) == ["c"]


def test_pull_feedback_stores_every_label_once_and_remembers_the_cursor(
    engine: sa.Engine, game: FeedbackServer
) -> None:
    assert database.pull_feedback(engine, game.url, TOKEN) == 5
    assert database.load_cursor(engine) == "5"
    game.labels.append({"id": "r5", "label": 1})
    assert database.pull_feedback(engine, game.url, TOKEN) == 1  # only the new one
    assert game.calls[-2:] == [5, 6]


def test_pull_feedback_with_a_wrong_token_says_so(engine: sa.Engine, game: FeedbackServer) -> None:
    with pytest.raises(database.FeedbackError, match="401"):
        database.pull_feedback(engine, game.url, "wrong")


def test_pull_feedback_without_a_game_server_says_so(engine: sa.Engine) -> None:
    with pytest.raises(database.FeedbackError, match="cannot reach"):
        database.pull_feedback(engine, "http://127.0.0.1:9", TOKEN, timeout=2)


@pytest.mark.exercise(3)
def test_training_frame_joins_requests_with_their_labels(
    engine: sa.Engine, game: FeedbackServer
) -> None:
    database.save_predictions(
        engine,
        [record("r0", age=30, region="north"), record("r1", age="41"), record("x", age=50)],
    )
    database.pull_feedback(engine, game.url, TOKEN)
    frame = database.training_frame(engine, label="default")
    assert list(frame["request_id"]) == ["r0", "r1"]  # "x" has no label yet
    assert list(frame["default"]) == [0, 1]
    assert list(frame["age"]) == [30, "41"]  # as sent: clean it like the training data
    assert {"region", "pred", "received_at"} <= set(frame.columns)


@pytest.mark.exercise(3)
def test_the_writer_saves_in_the_background_and_drops_only_refused_records(
    engine: sa.Engine,
) -> None:
    writer = BackgroundWriter(engine)
    broken = {**record("bad"), "pred": None}  # the table refuses a prediction without pred
    for item in [record("a"), broken, record("b")]:
        assert writer.submit(item)
    writer.close()
    assert sorted(database.load_predictions(engine)["request_id"]) == ["a", "b"]
    assert (writer.written, writer.dropped) == (2, 1)


def test_a_full_queue_drops_records_instead_of_waiting(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    writer = BackgroundWriter(engine, max_queue=1)
    writer._stop.set()  # stop the thread first, so the queue stays full
    writer._thread.join()
    assert writer.submit(record("a")) is True
    assert writer.submit(record("b")) is False
    assert writer.dropped == 1 and "queue full" in caplog.text


@pytest.mark.exercise(3)
def test_a_burst_of_records_a_few_ms_apart_is_saved_in_one_transaction(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    transactions = []
    save = database.save_predictions

    def counted(engine: sa.Engine, rows: list[dict]) -> None:
        transactions.append(len(rows))
        save(engine, rows)

    monkeypatch.setattr(database, "save_predictions", counted)
    writer = BackgroundWriter(engine)
    for i in range(5):  # a burst's records arrive one by one, as its requests are answered
        writer.submit(record(f"r{i}"))
        time.sleep(0.01)
    writer.close()
    assert transactions == [5] and writer.written == 5
