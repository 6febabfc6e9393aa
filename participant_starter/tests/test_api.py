"""The API: valid answers for clean and messy requests, fallbacks, logging, reloading."""

import json
import os
import time
from pathlib import Path
from typing import NoReturn

import pandas as pd
import pytest
from conftest import make_applicants, train_tiny_model
from flask import Flask
from flask.testing import FlaskClient
from main import StartupError, create_app
from modules import database
from modules.model_io import ModelHolder, save_model
from sklearn.pipeline import Pipeline
from werkzeug.test import TestResponse


def assert_valid(response: TestResponse) -> dict:
    """What the game scores as a valid answer: 200, a JSON object, pred 0 or 1."""
    assert response.status_code == 200, response.data
    body = response.get_json()
    assert isinstance(body, dict) and body["pred"] in (0, 1)
    return body


@pytest.mark.exercise(1)
def test_predict_answers_a_clean_request(client: FlaskClient, applicant: dict) -> None:
    body = assert_valid(client.post("/predict", json=applicant))
    assert body["id"] == "r-1"
    assert 0 <= body["proba"] <= 1
    assert body["model_version"]
    assert "fallback" not in body


@pytest.mark.exercise(1)
def test_risky_and_safe_applicants_get_different_answers(
    client: FlaskClient, applicant: dict
) -> None:
    safe = dict(applicant["features"], income=110_000, loan_amount=2_000)
    risky = dict(applicant["features"], income=12_000, loan_amount=45_000)
    assert client.post("/predict", json={"id": "a", "features": safe}).get_json()["pred"] == 0
    assert client.post("/predict", json={"id": "b", "features": risky}).get_json()["pred"] == 1


@pytest.mark.parametrize(
    "change",
    [
        {"age": None},
        {"income": "42000"},
        {"region": "atlantis"},
        pytest.param({"age": -5, "income": 0}, marks=pytest.mark.exercise(2)),
        {"comment": "urgent, customer called twice", "_debug": True},
        {"employment_type": "SELF_EMPLOYED", "region": "North"},
    ],
)
@pytest.mark.exercise(1)
def test_messy_requests_get_a_valid_prediction(
    client: FlaskClient, applicant: dict, change: dict
) -> None:
    features = {**applicant["features"], **change}
    body = assert_valid(client.post("/predict", json={"id": "m", "features": features}))
    assert "fallback" not in body


@pytest.mark.exercise(1, 2, 4)
def test_an_absurd_loan_amount_gets_a_prediction_not_the_fallback(
    client: FlaskClient, applicant: dict
) -> None:
    # EXERCISE 4 BEGIN: POST a loan_amount of 10**9; assert a valid answer, no 'fallback'
    features = {**applicant["features"], "loan_amount": 10**9}
    body = assert_valid(client.post("/predict", json={"id": "big", "features": features}))
    assert "fallback" not in body
    # EXERCISE 4 END


@pytest.mark.parametrize(
    "payload", [{}, {"id": "x"}, {"features": []}, {"features": "a"}, [1, 2], "text", None, 3]
)
@pytest.mark.exercise(1)
def test_json_that_is_not_a_request_still_gets_a_prediction(
    client: FlaskClient, payload: object
) -> None:
    assert_valid(client.post("/predict", data=json.dumps(payload)))


@pytest.mark.parametrize("data", [b"", b"{", b"not json", b"\xff\xfe\x00"])
def test_a_body_that_is_not_json_is_a_400_with_a_reason(client: FlaskClient, data: bytes) -> None:
    response = client.post("/predict", data=data)
    assert response.status_code == 400
    assert "not JSON" in response.get_json()["error"]


@pytest.mark.exercise(1)
def test_a_bug_in_prediction_answers_the_fallback(
    app: Flask, client: FlaskClient, applicant: dict, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline, metadata = app.extensions["model"].model

    class Broken:
        def predict_proba(self, row: pd.DataFrame) -> NoReturn:
            raise RuntimeError("the model fell over")

    app.extensions["model"].model = (Broken(), metadata)
    body = assert_valid(client.post("/predict", json=applicant))
    assert body["fallback"] is True
    assert body["pred"] == metadata["majority_class"]
    assert "prediction failed id=r-1" in caplog.text and "the model fell over" in caplog.text


@pytest.mark.exercise(1)
def test_the_request_id_header_is_used_when_the_body_has_none(
    client: FlaskClient, applicant: dict
) -> None:
    payload = {"features": applicant["features"]}
    body = client.post("/predict", json=payload, headers={"X-Request-ID": "h-9"}).get_json()
    assert body["id"] == "h-9"


def test_health_names_the_model(client: FlaskClient) -> None:
    body = client.get("/health").get_json()
    assert body["status"] == "ok" and "age" in body["features"]


def test_unknown_paths_answer_json(client: FlaskClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404 and "404" in response.get_json()["error"]


@pytest.mark.exercise(1, 3)
def test_every_answer_is_logged_to_the_database(
    app: Flask, client: FlaskClient, applicant: dict
) -> None:
    for i in range(5):
        client.post("/predict", json={"id": f"q{i}", "features": applicant["features"]})
    client.post("/predict", json={"id": "messy", "features": {"age": "x"}})
    app.extensions["db_writer"].close()  # waits until the queue is saved
    logged = database.load_predictions(app.extensions["db_writer"].engine)
    assert sorted(logged["request_id"]) == ["messy", "q0", "q1", "q2", "q3", "q4"]
    messy = logged[logged["request_id"] == "messy"].iloc[0]
    assert messy["features"] == {"age": "x"} and messy["pred"] in (0, 1)


@pytest.mark.exercise(1, 3)
def test_any_request_id_is_logged_and_stored(
    app: Flask, client: FlaskClient, applicant: dict
) -> None:
    """A lone surrogate or a NUL in the id: answered, and stored as text (as it is logged)."""
    body = '{"id": "odd-\\ud800-\\u0000", "features": {"age": 40}}'
    response = client.post("/predict", data=body, content_type="application/json")
    assert_valid(response)
    assert response.get_json()["id"] == "odd-\\ud800-\\x00"
    app.extensions["db_writer"].close()
    logged = database.load_predictions(app.extensions["db_writer"].engine)
    assert list(logged["request_id"]) == ["odd-\\ud800-\\x00"]


@pytest.mark.exercise(1, 5)
def test_a_new_model_file_is_served_without_a_restart(
    client: FlaskClient, applicant: dict, model_path: Path
) -> None:
    first = client.post("/predict", json=applicant).get_json()["model_version"]
    pipeline, metadata = train_tiny_model(make_applicants(seed=1))
    save_model(pipeline, {**metadata, "version": "v2"}, model_path)
    time.sleep(0.01)
    assert first != "v2"
    assert client.post("/predict", json=applicant).get_json()["model_version"] == "v2"


@pytest.mark.exercise(5)
def test_the_model_holder_loads_a_newer_model_file(
    model_path: Path, tiny_model: tuple[Pipeline, dict]
) -> None:
    holder = ModelHolder(model_path)
    save_model(tiny_model[0], {**tiny_model[1], "version": "v2"}, model_path)
    newer = model_path.stat().st_mtime + 1  # newer, whatever the clock's resolution
    os.utime(model_path, (newer, newer))
    assert holder.reload_if_changed() is True
    assert holder.current()[1]["version"] == "v2"
    assert holder.reload_if_changed() is False  # unchanged since: nothing to load


@pytest.mark.exercise(1)
def test_a_broken_model_file_keeps_the_old_model(
    client: FlaskClient, applicant: dict, model_path: Path
) -> None:
    version = client.post("/predict", json=applicant).get_json()["model_version"]
    model_path.write_bytes(b"not a pickle")
    body = assert_valid(client.post("/predict", json=applicant))
    assert body["model_version"] == version


def test_a_missing_model_fails_at_start_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="no model file at .*train one"):
        create_app({"TESTING": True, "MODEL_PATH": str(tmp_path / "nothing.pkl"), "TEAM_TOKEN": ""})


def test_absurdly_nested_json_is_a_400_not_a_crash(client: FlaskClient) -> None:
    response = client.post("/predict", data=b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400


def test_nan_is_not_json(client: FlaskClient) -> None:
    response = client.post("/predict", data=b'{"id": "n", "features": {"age": NaN}}')
    assert response.status_code == 400


@pytest.mark.exercise(1)
def test_the_api_answers_while_the_database_is_down(
    model_path: Path, applicant: dict, caplog: pytest.LogCaptureFixture
) -> None:
    down = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1"
    app = create_app(
        {"TESTING": True, "MODEL_PATH": str(model_path), "DATABASE_URL": down, "TEAM_TOKEN": ""}
    )
    body = assert_valid(app.test_client().post("/predict", json=applicant))
    assert "fallback" not in body
    writer = app.extensions["db_writer"]
    writer.close()
    assert writer.dropped == 1 and "database write failed" in caplog.text
