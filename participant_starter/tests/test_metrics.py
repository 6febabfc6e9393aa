"""GET /metrics: the API counts its requests, fallbacks and cleaned fields for Prometheus.

The app is served by waitress with several threads, as `python main.py` serves it, on a
free loopback port: the counts must add up when requests arrive at the same time.
"""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NoReturn

import pandas as pd
import pytest
import requests
import waitress
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    """The app served by waitress (4 threads) on 127.0.0.1; its base URL."""
    served = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=served.run, daemon=True).start()
    yield f"http://127.0.0.1:{served.effective_port}"
    served.close()


def scrape(url: str) -> dict:
    """Every sample of GET /metrics: {(name, (label, value), ...): value}."""
    response = requests.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return samples


def grew(before: dict, after: dict, name: str, **labels: str) -> float:
    """How much one sample grew between two scrapes (0 where it did not exist)."""
    key = (name, *sorted(labels.items()))
    return after.get(key, 0) - before.get(key, 0)


def post(url: str, body: object) -> requests.Response:
    """POST /predict with a JSON body."""
    return requests.post(f"{url}/predict", json=body, timeout=5)


@pytest.mark.exercise(1)
def test_requests_latency_and_model_version_are_counted(
    server: str, app: Flask, applicant: dict
) -> None:
    before = scrape(server)
    with ThreadPoolExecutor(8) as pool:  # at once: the threads must not lose a count
        answers = list(pool.map(lambda i: post(server, {**applicant, "id": f"c{i}"}), range(40)))
    assert [a.status_code for a in answers] == [200] * 40
    for _ in range(3):
        assert requests.post(f"{server}/predict", data=b"not json", timeout=5).status_code == 400
    assert requests.get(f"{server}/no-such-page", timeout=5).status_code == 404
    after = scrape(server)

    assert grew(before, after, "api_requests_total", route="/predict", status="200") == 40
    assert grew(before, after, "api_requests_total", route="/predict", status="400") == 3
    assert grew(before, after, "api_requests_total", route="unknown", status="404") == 1
    assert grew(before, after, "api_request_duration_seconds_count", route="/predict") == 43
    slow = grew(before, after, "api_request_duration_seconds_bucket", route="/predict", le="+Inf")
    assert slow == 43  # every request falls in the last bucket
    predicted = [grew(before, after, "api_predictions_total", pred=p) for p in ("0", "1")]
    assert sum(predicted) == 40 and grew(before, after, "api_fallbacks_total") == 0
    version = app.extensions["model"].current()[1]["version"]
    assert after[("api_model_info", ("version", version))] == 1


@pytest.mark.exercise(1)
def test_a_fallback_is_counted(server: str, app: Flask, applicant: dict) -> None:
    _, metadata = app.extensions["model"].model

    class Broken:
        def predict_proba(self, row: pd.DataFrame) -> NoReturn:
            raise RuntimeError("the model fell over")

    before = scrape(server)
    app.extensions["model"].model = (Broken(), metadata)
    for i in range(3):
        assert post(server, {**applicant, "id": f"f{i}"}).json()["fallback"] is True
    after = scrape(server)
    assert grew(before, after, "api_fallbacks_total") == 3
    majority = str(metadata["majority_class"])
    assert grew(before, after, "api_predictions_total", pred=majority) == 3


@pytest.mark.exercise(1)
def test_cleaned_fields_are_counted_by_field_never_by_a_name_the_client_made_up(
    server: str, applicant: dict
) -> None:
    messy = {
        **applicant["features"],
        "age": None,
        "income": "42000",
        "region": "Atlantis",
        "employment_type": "EMPLOYED",
        "comment": "urgent",
        'x"} 1\nevil{': 2,
    }
    before = scrape(server)
    assert post(server, {"id": "m", "features": messy}).status_code == 200
    after = scrape(server)

    for field, why in [
        ("age", "missing"),
        ("income", "number_as_string"),
        ("region", "unknown_category"),
        ("employment_type", "normalised"),
    ]:
        assert grew(before, after, "api_cleaned_fields_total", field=field, why=why) == 1, field
    assert grew(before, after, "api_cleaned_fields_total", field="extra", why="extra") == 2
    assert grew(before, after, "api_cleaned_fields_total", field="loan_amount", why="missing") == 0
    assert post(server, {"id": "n", "features": [1, 2]}).status_code == 200
    last = scrape(server)
    assert grew(after, last, "api_cleaned_fields_total", field="features", why="not_an_object") == 1
    fields = {dict(key[1:]).get("field") for key in after if key[0] == "api_cleaned_fields_total"}
    assert "comment" not in fields and not any("evil" in str(f) for f in fields)
