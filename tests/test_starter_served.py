"""The participant starter as a team runs it: the notebook in a real kernel trains the
model, `python main.py` serves it with waitress on loopback, and the game's requests
(every oddity kind), garbage and a redeploy all get valid answers."""

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
import requests
from flask import Flask
from scenario_helpers import TEST_SECRET
from starter_helpers import (
    NOTEBOOK,
    STARTER,
    copy_starter,
    free_port,
    run_notebook,
    serve,
    starter_env,
)
from werkzeug.serving import make_server

from game_server.scenario import oddities
from game_server.scenario.gamefile import builtin_game_path, load_game_file
from game_server.scenario.stream import Scenario

pytestmark = pytest.mark.slow
MESSY_PHASE = 1  # the demo game's "messy input" phase


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A fresh copy of the starter in which the notebook has run top to bottom."""
    starter = copy_starter(tmp_path_factory.mktemp("team") / "starter")
    run_notebook(starter)
    return starter


@pytest.fixture(scope="module")
def scenario():
    """The demo game's applicants, with their true labels."""
    return Scenario(load_game_file(builtin_game_path("demo")), TEST_SECRET)


@pytest.fixture(scope="module")
def api(trained):
    """The trained starter served by `python main.py` on a free loopback port."""
    with serve(trained) as url:
        yield url


def is_valid(response: requests.Response) -> bool:
    """The game's rule: 200, a JSON object, `pred` the integer 0 or 1."""
    if response.status_code != 200:
        return False
    body = response.json()
    return isinstance(body, dict) and type(body.get("pred")) is int and body["pred"] in (0, 1)


def post(url: str, features, request_id: str) -> requests.Response:
    """One request as the customer sends it."""
    return requests.post(
        f"{url}/predict",
        json={"id": request_id, "features": features},
        headers={"X-Request-ID": request_id},
        timeout=5,
    )


def test_committed_notebook_has_no_outputs():
    notebook = nbformat.read(STARTER / "notebooks" / NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    text = "\n".join(cell.source for cell in notebook.cells)
    assert "collection_calls" in text and "ColumnTransformer" in text and "cross_val" in text


def test_notebook_trains_a_model_with_its_metadata(trained):
    metadata = json.loads((trained / "models" / "model.json").read_text())
    assert (trained / "models" / "model.pkl").is_file()
    assert "collection_calls" not in metadata["features"]  # the leak is left out
    assert "default" not in metadata["features"] and len(metadata["features"]) >= 10
    scores = metadata["scores"]["holdout"]
    assert scores["accuracy"] > scores["baseline_accuracy"]
    assert {"scikit-learn", "pandas"} <= set(metadata["libraries"]) and metadata["trained_at"]
    executed = nbformat.read(trained / "notebooks" / "1.0-train-model.executed.ipynb", 4)
    printed = "".join(
        output.get("text", "") for cell in executed.cells for output in cell.get("outputs", [])
    )
    assert "nothing to retrain" in printed  # the retraining section skips without labels


def test_api_serves_the_notebook_model(api, trained, scenario):
    metadata = json.loads((trained / "models" / "model.json").read_text())
    assert requests.get(f"{api}/health", timeout=5).json()["model_version"] == metadata["version"]
    answer = post(api, scenario.draw(0, 0).features, "first").json()
    assert answer["model_version"] == metadata["version"] and answer["id"] == "first"


def test_every_oddity_kind_gets_a_valid_prediction(api, scenario):
    seen: set[str] = set()
    for seq in range(600):
        applicant = scenario.draw(MESSY_PHASE, seq)
        if not applicant.oddities:
            continue
        response = post(api, applicant.features, f"odd-{seq}")
        assert is_valid(response), (applicant.features, response.text)
        assert "fallback" not in response.json()  # cleaned, not a caught error
        seen.update(applicant.oddities)
    assert seen == set(oddities.KINDS)


def garbage_bodies(rng: random.Random) -> list[tuple[bytes, bool]]:
    """(body, is_json) pairs a broken client might send."""
    valid_json = [b"{}", b"[]", b"null", b"42", b'"text"', b'{"features": 5}', b'{"id": {}}']
    valid_json += [b'{"features": {"age": [1, 2], "income": {"a": 1}}}', b'{"features": null}']
    not_json = [b"", b"{", b"not json", b"\xff\xfe\xfd", b'{"features": {"age": NaN}}']
    not_json += [b"[" * 50_000, bytes(rng.getrandbits(8) for _ in range(200))]
    return [(body, True) for body in valid_json] + [(body, False) for body in not_json]


def test_survives_1000_requests_with_garbage_and_no_5xx(api, scenario):
    rng = random.Random(7)
    garbage = garbage_bodies(rng)
    jobs = []
    for i in range(1000):
        if i % 4 == 0:
            body, is_json = garbage[rng.randrange(len(garbage))]
        else:
            features = scenario.draw(MESSY_PHASE, 1000 + i).features
            body, is_json = json.dumps({"id": f"load-{i}", "features": features}).encode(), True
        jobs.append((body, is_json))

    local = threading.local()  # one keep-alive connection per thread, as the customer has

    def send(job):
        body, is_json = job
        if not hasattr(local, "session"):
            local.session = requests.Session()
        response = local.session.post(
            f"{api}/predict", data=body, headers={"Content-Type": "application/json"}, timeout=10
        )
        valid = is_valid(response)
        return response.status_code, valid, response.text[:300], is_json

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, jobs))
    for status, valid, text, is_json in results:
        assert status < 500, text
        if is_json:
            assert valid, text
        else:
            assert status == 400 and "not JSON" in text


def test_a_new_model_file_is_served_without_restarting(trained):
    """Redeploy = save a new model file: the running API switches within seconds."""
    with serve(trained, MODEL_CHECK_SECONDS="0.2") as url:
        before = requests.get(f"{url}/health", timeout=5).json()["model_version"]
        retrain = (
            "import sys; sys.path.insert(0, '.')\n"
            "from modules.model_io import load_model, save_model\n"
            "pipeline, metadata = load_model('models/model.pkl')\n"
            "save_model(pipeline, {**metadata, 'version': 'v-redeployed'}, 'models/model.pkl')\n"
        )
        subprocess.run([sys.executable, "-c", retrain], cwd=trained, check=True)
        versions = []
        for _ in range(100):  # every request is answered, before and after the switch
            response = requests.post(f"{url}/predict", json={"features": {}}, timeout=5)
            assert is_valid(response)
            versions.append(response.json()["model_version"])
            if versions[-1] == "v-redeployed":
                break
            time.sleep(0.05)
        assert before != "v-redeployed" and versions[-1] == "v-redeployed"
        assert set(versions) <= {before, "v-redeployed"}


def test_stopping_the_api_saves_every_logged_request(trained):
    database = trained / "output" / "stop-test.sqlite"
    with serve(trained, DATABASE_URL=f"sqlite:///{database}") as url:
        for i in range(30):
            post(url, {"age": 30 + i}, f"stop-{i}")
    with sqlite3.connect(database) as conn:
        ids = {row[0] for row in conn.execute("select request_id from predictions")}
    assert ids == {f"stop-{i}" for i in range(30)}


def test_selfcheck_passes_against_the_served_api(api, trained):
    out = subprocess.run(
        [sys.executable, "selfcheck.py", "--url", f"{api}/predict", "--burst", "30"],
        cwd=trained,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "would get a valid answer" in out.stdout and "p99" in out.stdout


class BrokenAPI:
    """An API with the usual bugs: a string for `pred`, a crash, a slow answer."""

    def __init__(self):
        """Serve on a free loopback port in a thread."""
        app = Flask("broken")
        self.calls = 0
        app.add_url_rule("/health", view_func=lambda: {"features": ["age", "region"]})
        app.add_url_rule("/predict", view_func=self.predict, methods=["POST"])
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/predict"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def predict(self):
        """Answer wrongly in three different ways."""
        self.calls += 1
        if self.calls == 1:
            return {"pred": "yes"}
        if self.calls == 2:
            return "internal error", 500
        if self.calls == 3:
            time.sleep(1.3)
        return {"pred": 1}


def test_selfcheck_says_why_a_broken_api_would_score_minus_one(trained):
    broken = BrokenAPI()
    try:
        out = subprocess.run(
            [sys.executable, "selfcheck.py", "--url", broken.url, "--burst", "10"],
            cwd=trained,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        broken.server.shutdown()
    assert out.returncode == 1
    failures = [line for line in out.stdout.splitlines() if line.startswith("  FAIL")]
    assert len(failures) == 3, out.stdout
    assert '"pred" must be the integer 0 or 1' in failures[0]
    assert "status 500" in failures[1] and "timeout" in failures[2]
    assert "3 of 29 requests would score -1" in out.stdout


def test_a_missing_model_is_a_one_line_error_at_start(trained, tmp_path):
    out = subprocess.run(
        [sys.executable, "main.py"],
        cwd=trained,
        env={"PATH": "/usr/bin:/bin", "MODEL_PATH": str(tmp_path / "none.pkl"), "PORT": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "no model file at" in out.stderr


GAME_200 = """
[game]
name = "starter integration"
seed = 5
label_delay = 0.5
timeout = 1.0
allowed_hosts = ["127.0.0.1"]

[[phases]]
name = "warm-up"
kind = "warmup"
duration = 3.0
rate = 40.0
burst = 4

[[phases]]
name = "messy input"
kind = "messy"
duration = 2.0
rate = 40.0
burst = 4
oddity_share = 0.5
"""


def game_server(*args, **kwargs) -> subprocess.CompletedProcess:
    """Run one `game-server` command to completion."""
    command = [sys.executable, "-m", "game_server", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60, **kwargs)


def test_the_customer_plays_a_200_request_game_against_the_starter(trained, tmp_path):
    """Points above zero and above the majority-class baseline; feedback fills the database."""
    (tmp_path / "game.toml").write_text(GAME_200)
    db = f"sqlite:///{tmp_path / 'game.sqlite'}"
    game_server("--db", db, "init", "--game", str(tmp_path / "game.toml"))
    team_db = f"sqlite:///{tmp_path / 'team.sqlite'}"
    web_port = free_port()
    game_url = f"http://127.0.0.1:{web_port}"
    with serve(trained, DATABASE_URL=team_db, GAME_URL=game_url) as api:
        added = game_server("--db", db, "teams", "add", "starter", "--url", f"{api}/predict")
        token = added.stdout.strip().rsplit(" ", 1)[-1]
        log = open(tmp_path / "game.log", "w")  # noqa: SIM115 (closed below)
        command = ["--db", db, "run", "--port", str(web_port), "--start"]
        run = subprocess.Popen([sys.executable, "-m", "game_server", *command], stderr=log)
        try:
            board = wait_for_finish(game_url, run)
            pull = (
                "import sys; sys.path.insert(0, '.')\n"
                "from modules import database\n"
                "engine = database.engine_from_env()\n"
                "pulled = database.pull_feedback(engine)\n"
                "print(pulled, len(database.training_frame(engine, 'default')))"
            )
            env = starter_env(trained, DATABASE_URL=team_db, GAME_URL=game_url, TEAM_TOKEN=token)
            pulled = subprocess.run(
                [sys.executable, "-c", pull], cwd=trained, env=env, capture_output=True, text=True
            )
        finally:
            run.send_signal(signal.SIGTERM)
            run.wait(30)
            log.close()
    team, reference = board["teams"][0], board["reference"]
    print(f"starter: {team}; reference: {reference}")  # shown with pytest -s
    assert 190 <= reference["requests"] <= 210, board
    assert team["points"] > 0 and team["points"] > reference["baseline_points"], board
    assert team["failed"] <= 0.02 * reference["requests"], team["failures"]
    labels, rows = map(int, pulled.stdout.split())
    assert labels == team["correct"] + team["wrong"] + team["failed"], pulled.stderr
    assert rows >= team["correct"] + team["wrong"] - 2  # the answered requests, now labelled


def wait_for_finish(game_url: str, run: subprocess.Popen, limit: float = 60.0) -> dict:
    """The leaderboard once the game has finished (and every label can be revealed)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert run.poll() is None, "game-server run exited early"
        try:
            board = requests.get(f"{game_url}/api/leaderboard", timeout=2).json()
        except requests.RequestException:
            board = None
        if board and board["game"]["state"] == "finished":
            time.sleep(1.0)  # label_delay 0.5 s: the last labels become visible
            return requests.get(f"{game_url}/api/leaderboard", timeout=2).json()
        time.sleep(0.2)
    raise AssertionError("the game did not finish in time")
