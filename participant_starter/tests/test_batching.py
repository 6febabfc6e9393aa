"""Micro-batching (modules/batching.py): every request its own answer, one bad row alone."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_applicants
from main import create_app
from modules.batching import Batcher, predict_rows
from modules.features import clean_row, rows_frame
from sklearn.pipeline import Pipeline


class Counting:
    """The real pipeline, and the number of rows in each call of `predict_proba`."""

    def __init__(self, pipeline: Pipeline) -> None:
        """Wrap `pipeline`."""
        self.pipeline = pipeline
        self.calls: list[int] = []

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Record the call's rows, then predict with the real pipeline."""
        self.calls.append(len(frame))
        return self.pipeline.predict_proba(frame)


@pytest.fixture
def rows(tiny_model: tuple[Pipeline, dict]) -> list[dict]:
    """Cleaned rows of 24 different applicants."""
    _, metadata = tiny_model
    applicants = make_applicants(24, seed=7).drop(columns="default")
    return [clean_row(raw, metadata) for raw in applicants.to_dict("records")]


@pytest.fixture
def batcher() -> Iterator[Batcher]:
    """A batcher with a long window, so concurrent requests surely meet in one batch."""
    batcher = Batcher(window_ms=200, max_size=64)
    yield batcher
    batcher.close()


def concurrently(batcher: Batcher, pipeline: Pipeline, metadata: dict, rows: list[dict]) -> list:
    """Each row's answer (or error) from its own thread, all threads asking at once."""
    answers: list = [None] * len(rows)
    start = threading.Barrier(len(rows))

    def ask(i: int) -> None:
        start.wait()
        try:
            answers[i] = batcher.predict_proba(pipeline, metadata, rows[i])
        except Exception as exc:  # what the request's thread would see
            answers[i] = exc

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(rows))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers


def test_concurrent_requests_get_their_own_answers_in_fewer_model_calls(
    batcher: Batcher, tiny_model: tuple[Pipeline, dict], rows: list[dict]
) -> None:
    pipeline, metadata = tiny_model
    alone = [predict_rows(pipeline, metadata, [row])[0] for row in rows]
    counting = Counting(pipeline)
    answers = concurrently(batcher, counting, metadata, rows)
    assert answers == pytest.approx(alone, abs=1e-12)
    assert len(set(alone)) > 10  # different applicants, different answers: no mix-up hidden
    assert sum(counting.calls) == len(rows) and max(counting.calls) > 1  # batched for real


def test_requests_that_keep_coming_stay_in_one_batch_past_the_window(
    tiny_model: tuple[Pipeline, dict], rows: list[dict]
) -> None:
    pipeline, metadata = tiny_model
    batcher = Batcher(window_ms=500)  # each next request comes 100 ms after the previous
    counting = Counting(pipeline)
    answers: list = []
    asking = []
    for row in rows[:8]:  # over 700 ms: more than a window, less than the 20 windows' cap
        ask = threading.Thread(
            target=lambda row=row: answers.append(batcher.predict_proba(counting, metadata, row))
        )
        ask.start()
        asking.append(ask)
        time.sleep(0.1)
    for ask in asking:
        ask.join(10)
    batcher.close()
    assert counting.calls == [8] and len(answers) == 8


def test_a_bad_row_fails_only_its_own_request(
    batcher: Batcher, tiny_model: tuple[Pipeline, dict], rows: list[dict]
) -> None:
    pipeline, metadata = tiny_model
    bad = dict(rows[3], region={"not": "a category"})  # the encoder cannot take it
    mixed = rows[:3] + [bad] + rows[4:12]
    answers = concurrently(batcher, pipeline, metadata, mixed)
    assert isinstance(answers[3], TypeError)
    good = [answer for i, answer in enumerate(answers) if i != 3]
    alone = [predict_rows(pipeline, metadata, [row])[0] for row in rows[:3] + rows[4:12]]
    assert good == pytest.approx(alone, abs=1e-12)


def test_rows_of_two_models_in_one_batch_each_get_their_own_model(
    batcher: Batcher, tiny_model: tuple[Pipeline, dict], rows: list[dict]
) -> None:
    pipeline, metadata = tiny_model

    class Inverted:
        """Another model: the opposite probabilities."""

        def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
            return 1 - pipeline.predict_proba(frame)

    models = [pipeline if i % 2 else Inverted() for i in range(len(rows))]
    answers: list[float | None] = [None] * len(rows)
    start = threading.Barrier(len(rows))

    def ask(i: int) -> None:
        start.wait()
        answers[i] = batcher.predict_proba(models[i], metadata, rows[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(rows))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    expected = [predict_rows(models[i], metadata, [row])[0] for i, row in enumerate(rows)]
    assert answers == pytest.approx(expected, abs=1e-12)


def test_window_zero_turns_batching_off_no_thread_same_answers(
    tiny_model: tuple[Pipeline, dict], rows: list[dict]
) -> None:
    pipeline, metadata = tiny_model
    before = threading.active_count()
    off = Batcher(window_ms=0)
    counting = Counting(pipeline)
    answers = [off.predict_proba(counting, metadata, row) for row in rows]
    assert threading.active_count() == before  # no batching thread
    assert counting.calls == [1] * len(rows)  # one row per call, in the request's thread
    # The starter's path before batching: a one-row frame of the cleaned request.
    expected = [float(pipeline.predict_proba(rows_frame([row], metadata))[0, 1]) for row in rows]
    assert answers == expected
    off.close()  # nothing to stop, and no error


def test_close_answers_what_is_queued_and_leaves_no_thread(
    tiny_model: tuple[Pipeline, dict], rows: list[dict]
) -> None:
    pipeline, metadata = tiny_model
    batcher = Batcher(window_ms=200)
    thread = batcher._thread
    assert thread is not None  # a window: the rows are batched on a thread
    answers = []
    asking = [
        threading.Thread(
            target=lambda row=row: answers.append(batcher.predict_proba(pipeline, metadata, row))
        )
        for row in rows[:5]
    ]
    for ask in asking:
        ask.start()
    batcher.close()
    for ask in asking:
        ask.join(10)
    assert len(answers) == 5 and all(0 <= a <= 1 for a in answers)
    assert not thread.is_alive() and thread not in threading.enumerate()
    # A request arriving while the API stops is still answered, in its own thread.
    late = batcher.predict_proba(pipeline, metadata, rows[0])
    assert late == predict_rows(pipeline, metadata, rows[:1])[0]


@pytest.mark.exercise(1)
def test_the_api_answers_the_same_with_batching_off(
    tmp_path: Path, model_path: Path, applicant: dict
) -> None:
    answers = {}
    for window in ("5", "0"):
        app = create_app(
            {
                "TESTING": True,
                "MODEL_PATH": str(model_path),
                "TEAM_TOKEN": "",  # as on your own computer
                "DATABASE_URL": f"sqlite:///{tmp_path / f'p{window}.sqlite'}",
                "BATCH_WINDOW_MS": window,
            }
        )
        answers[window] = app.test_client().post("/predict", json=applicant).get_json()
        batcher = app.extensions["batcher"]
        assert (batcher._thread is None) == (window == "0")
        batcher.close()
        app.extensions["db_writer"].close()
        assert batcher._thread is None or not batcher._thread.is_alive()
    assert answers["5"] == answers["0"] and "fallback" not in answers["0"]
