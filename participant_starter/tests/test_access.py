"""`/predict` answers only the game (its key) and the team (its token) once TEAM_TOKEN is
set; without one (your own computer) it answers anyone."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from main import create_app
from modules import access

pytestmark = pytest.mark.exercise(1)  # the answers come from exercise 1's /predict

TOKEN = "team-secret-token"


@pytest.fixture
def guarded(tmp_path: Path, model_path: Path) -> Iterator[FlaskClient]:
    """The API of a team whose .env holds TEAM_TOKEN."""
    app = create_app(
        {
            "TESTING": True,
            "MODEL_PATH": str(model_path),
            "MODEL_CHECK_SECONDS": "0",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'predictions.sqlite'}",
            "TEAM_TOKEN": TOKEN,
        }
    )
    yield app.test_client()
    app.extensions["batcher"].close()
    app.extensions["db_writer"].close()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Game-Key": access.game_key("another-teams-token")},
        {"X-Game-Key": access.game_key(TOKEN)[:-1]},
        {"Authorization": "Bearer another-teams-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"X-Game-Key": "\u00e9t\u00e9"},
    ],
)
def test_anyone_else_gets_a_401_before_the_model_runs(
    guarded: FlaskClient, applicant: dict, headers: dict[str, str]
) -> None:
    answer = guarded.post("/predict", json=applicant, headers=headers)
    assert answer.status_code == 401 and "only the game" in answer.get_json()["error"]
    assert guarded.post("/predict", data=b"not json", headers=headers).status_code == 401


@pytest.mark.parametrize("who", ["game", "team"])
def test_the_game_and_the_team_get_predictions(
    guarded: FlaskClient, applicant: dict, who: str
) -> None:
    shown = (
        {"X-Game-Key": access.game_key(TOKEN)}
        if who == "game"
        else {"Authorization": f"Bearer {TOKEN}"}
    )
    answer = guarded.post("/predict", json=applicant, headers=shown)
    assert answer.status_code == 200 and answer.get_json()["pred"] in (0, 1)


def test_health_and_metrics_stay_open(guarded: FlaskClient) -> None:
    assert guarded.get("/health").status_code == 200
    assert guarded.get("/metrics").status_code == 200


def test_without_a_token_the_api_answers_anyone(client: FlaskClient, applicant: dict) -> None:
    assert client.post("/predict", json=applicant).status_code == 200
