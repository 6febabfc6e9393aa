"""Fixtures: a tiny model trained on made-up applicants, the app serving it, its client.

The made-up data has the same shape as the workshop data (numbers with gaps, categories,
a 0/1 label), so these tests run without `data/train_data.csv`.

At the exercise level a test marked `@pytest.mark.exercise(N, ...)` needs those exercises
done: the tests run in the order of the exercises they need (the others after them), and
one that needs an open exercise fails at once, naming it and its hint. So `pytest -x` stops
at the next exercise to do, the one `python selfcheck.py` names and the README's table
lists next.
"""

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flask import Flask, Response, jsonify, request
from flask.testing import FlaskClient
from main import create_app
from modules.model_io import save_model
from modules.train import train_pipeline
from selfcheck import open_exercises
from sklearn.pipeline import Pipeline
from werkzeug.serving import make_server

FEATURES = ["age", "income", "loan_amount", "employment_type", "region"]
TOKEN = "team-secret"  # the team token the made-up game server below accepts


def needs(item: pytest.Item) -> set[int]:
    """The exercises a test needs (its `exercise` marks)."""
    return {int(n) for mark in item.iter_markers("exercise") for n in mark.args}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests in the order of the exercises they need (the README's table), then
    the tests that need none: `pytest -x` reaches the next exercise to do in seconds. The
    sort is stable, so within one exercise the files keep their order."""
    items.sort(key=lambda item: max(needs(item), default=float("inf")))


@pytest.fixture(scope="session")
def still_open() -> dict[int, tuple[str, str]]:
    """The exercises still open in the code: {number: (file:line, hint)}."""
    return {number: (where, hint) for number, where, hint in open_exercises()}


@pytest.fixture(autouse=True)
def exercises_done(request: pytest.FixtureRequest, still_open: dict[int, tuple[str, str]]) -> None:
    """A test that needs an open exercise fails before it runs, naming the last one it needs
    (its own: the ones before it come first in the README's table) and its hint."""
    missing = sorted(needs(request.node) & still_open.keys())
    if missing:
        number, before = missing[-1], ", ".join(str(n) for n in missing[:-1])
        where, hint = still_open[number]
        also = f"; exercise {before} too" if before else ""
        pytest.fail(f"Exercise {number}: {hint} ({where}): still open{also}", pytrace=False)


def make_applicants(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Made-up applicants: large loans on small incomes default more often."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.integers(10_000, 120_000, n).astype(float),
            "loan_amount": rng.integers(1_000, 50_000, n),
            "employment_type": rng.choice(["employed", "self_employed", "unemployed"], n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    burden = frame["loan_amount"] / frame["income"]
    frame["default"] = (burden + rng.normal(0, 0.15, n) > 0.45).astype(int)
    frame.loc[::13, "income"] = np.nan  # training data has gaps, like the real one
    return frame


def train_tiny_model(frame: pd.DataFrame) -> tuple[Pipeline, dict]:
    """The notebook's pipeline (`modules/train.py`) fitted on `frame`; (pipeline, metadata)."""
    return train_pipeline(frame, label="default", features=FEATURES)


@pytest.fixture(scope="session")
def tiny_model() -> tuple[Pipeline, dict]:
    """(pipeline, metadata) of a model trained once for the whole test run."""
    return train_tiny_model(make_applicants())


@pytest.fixture
def model_path(tmp_path: Path, tiny_model: tuple[Pipeline, dict]) -> Path:
    """A model file saved the way the notebook saves it."""
    path = tmp_path / "models" / "model.pkl"
    save_model(*tiny_model, path)
    return path


@pytest.fixture
def app(tmp_path: Path, model_path: Path) -> Iterator[Flask]:
    """The API serving the tiny model, logging to a fresh SQLite database."""
    app = create_app(
        {
            "TESTING": True,
            "MODEL_PATH": str(model_path),
            "MODEL_CHECK_SECONDS": "0",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'predictions.sqlite'}",
            # as on your own computer: your shell's TEAM_TOKEN (the server's login exports
            # it) would make /predict answer only the game (test_access.py tests that)
            "TEAM_TOKEN": "",
        }
    )
    yield app
    app.extensions["batcher"].close()
    app.extensions["db_writer"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client: requests without a real server."""
    return app.test_client()


@pytest.fixture
def applicant() -> dict:
    """One clean request body, as the customer sends it."""
    return {
        "id": "r-1",
        "features": {
            "age": 35,
            "income": 42_000,
            "loan_amount": 9_000,
            "employment_type": "employed",
            "region": "north",
        },
    }


class FeedbackServer:
    """A small game server that serves revealed labels the way the real one does."""

    def __init__(self, labels: list[dict], page_size: int = 2) -> None:
        """Serve `labels` in pages of `page_size`, on a free loopback port."""
        self.labels, self.page_size = labels, page_size
        self.calls: list[int] = []  # the cursors asked for
        app = Flask("feedback")
        app.add_url_rule("/api/feedback", view_func=self.feedback)
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def feedback(self) -> Response | tuple[Response, int]:
        """The labels after the cursor, one page at a time."""
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return jsonify(error="unknown team token"), 401
        after = int(request.args.get("after") or 0)
        self.calls.append(after)
        page = self.labels[after : after + self.page_size]
        return jsonify(items=page, cursor=after + len(page))


@pytest.fixture
def game() -> Iterator[FeedbackServer]:
    """A running feedback server with five revealed labels."""
    server = FeedbackServer([{"id": f"r{i}", "label": i % 2} for i in range(5)])
    yield server
    server.server.shutdown()
