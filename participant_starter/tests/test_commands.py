"""The README's commands, run as you run them: when something is wrong, one line says what.

`python feedback.py` against a real (made-up) game server, and `python main.py` /
`flask run` with a missing model, a busy port or a bad setting: no traceback, ever.
"""

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import selfcheck
from conftest import TOKEN, FeedbackServer
from modules import config, database


def run(command: list[str], **settings: str) -> subprocess.CompletedProcess:
    """Run one command in the starter folder with `settings` in its environment (as .env)."""
    env = {**os.environ, **settings}
    return subprocess.run(
        [sys.executable, *command], cwd=config.ROOT, env=env, capture_output=True, text=True
    )


def one_line(text: str) -> str:
    """The text, which must be exactly one line and no traceback."""
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.fixture
def team_db(tmp_path: Path) -> str:
    """A team database with two logged requests, r0 and r1."""
    url = f"sqlite:///{tmp_path / 'team.sqlite'}"
    engine = database.engine_from_env(url)
    database.create_tables(engine)
    now = datetime.now(UTC)
    database.save_predictions(
        engine,
        [{"request_id": f"r{i}", "received_at": now, "features": {}, "pred": 0} for i in (0, 1)],
    )
    engine.dispose()
    return url


@pytest.mark.exercise(3)
def test_feedback_stores_the_new_labels_and_says_how_many(
    game: FeedbackServer, team_db: str
) -> None:
    done = run(["feedback.py"], GAME_URL=game.url, TEAM_TOKEN=TOKEN, DATABASE_URL=team_db)
    assert done.returncode == 0, done.stderr
    line = one_line(done.stdout)
    assert line == "feedback: 5 new labels; 2 of your logged requests now have their label"
    again = run(["feedback.py"], GAME_URL=game.url, TEAM_TOKEN=TOKEN, DATABASE_URL=team_db)
    assert one_line(again.stdout).startswith("feedback: 0 new labels;")


@pytest.mark.exercise(3)
def test_feedback_when_the_game_is_down_is_one_line(team_db: str) -> None:
    game = FeedbackServer([])
    url = game.url
    game.server.shutdown()
    game.server.server_close()  # nothing listens on that port any more
    done = run(["feedback.py"], GAME_URL=url, TEAM_TOKEN=TOKEN, DATABASE_URL=team_db)
    assert done.returncode == 1 and done.stdout == ""
    line = one_line(done.stderr)
    assert line.startswith(f"feedback: cannot reach the game at {url} ")
    assert "GAME_URL" in line


@pytest.mark.exercise(3)
def test_feedback_without_a_token_is_one_line_and_asks_nothing(
    game: FeedbackServer, team_db: str
) -> None:
    done = run(["feedback.py"], GAME_URL=game.url, TEAM_TOKEN="", DATABASE_URL=team_db)
    assert done.returncode == 1
    assert one_line(done.stderr) == (
        "feedback: no team token: set TEAM_TOKEN in .env (it is on your handout)"
    )
    assert game.calls == []


@pytest.mark.exercise(3)
def test_feedback_with_a_wrong_token_is_one_line(game: FeedbackServer, team_db: str) -> None:
    done = run(["feedback.py"], GAME_URL=game.url, TEAM_TOKEN="wrong", DATABASE_URL=team_db)
    assert done.returncode == 1
    assert "refused your team token (401)" in one_line(done.stderr)


def test_feedback_with_the_database_down_is_one_line(game: FeedbackServer) -> None:
    down = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"
    done = run(["feedback.py"], GAME_URL=game.url, TEAM_TOKEN=TOKEN, DATABASE_URL=down)
    assert done.returncode == 1
    assert one_line(done.stderr).startswith("feedback: cannot use your database")


def test_selfcheck_names_the_open_exercises_next_first(tmp_path: Path) -> None:
    stub = "raise NotImplementedError("  # written apart: this file has no open exercise
    (tmp_path / "modules").mkdir()
    (tmp_path / "main.py").write_text(f'def f():\n    {stub}\n        "Exercise 2: do b"\n    )\n')
    (tmp_path / "modules" / "a.py").write_text(f'{stub}"Exercise 1: do a")\n')
    (tmp_path / "notes.md").write_text(f'{stub}"Exercise 3: not code")\n')
    assert selfcheck.open_exercises(tmp_path) == [
        (1, "modules/a.py:1", "do a"),
        (2, "main.py:2", "do b"),
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [("PORT", "abc"), ("PORT", "70000"), ("THREADS", "0"), ("MODEL_CHECK_SECONDS", "soon")],
)
def test_a_bad_number_in_the_settings_is_named(name: str, value: str) -> None:
    settings = {**config.DEFAULTS, name: value}
    with pytest.raises(config.SettingsError, match=f"^{name}='{value}' cannot work: it must be"):
        config.check_settings(settings)


def test_the_default_settings_pass_the_check() -> None:
    assert config.check_settings(dict(config.DEFAULTS)) == config.DEFAULTS


def api_settings(tmp_path: Path, model_path: Path, port: int) -> dict:
    """The settings of `python main.py` in a test: a model, a port, files in tmp_path."""
    return {
        "MODEL_PATH": str(model_path),
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'api.sqlite'}",
        "LOG_FILE": str(tmp_path / "api.log"),
    }


def test_main_without_a_model_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "none.pkl"
    done = run(["main.py"], **api_settings(tmp_path, missing, 5000))
    assert done.returncode == 1
    assert one_line(done.stderr).startswith(f"error: no model file at {missing}:")


def test_main_with_a_broken_model_file_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "model.pkl"
    broken.write_bytes(b"not a pickle")
    done = run(["main.py"], **api_settings(tmp_path, broken, 5000))
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith(f"error: cannot load the model at {broken}") and "train" in line


def test_main_with_a_bad_setting_is_one_line(tmp_path: Path, model_path: Path) -> None:
    done = run(["main.py"], **{**api_settings(tmp_path, model_path, 5000), "PORT": "fifty"})
    assert done.returncode == 1
    assert one_line(done.stderr).startswith("error: PORT='fifty' cannot work")


def test_main_with_a_bad_database_url_is_one_line_without_the_password(
    tmp_path: Path, model_path: Path
) -> None:
    url = "postgres://team:s3cret@127.0.0.1/workshop"  # not a SQLAlchemy URL, and a password
    done = run(["main.py"], **{**api_settings(tmp_path, model_path, 5000), "DATABASE_URL": url})
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith("error: DATABASE_URL is not a database URL") and "s3cret" not in line


def test_main_on_a_busy_port_says_so_in_one_line(tmp_path: Path, model_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run(["main.py"], **api_settings(tmp_path, model_path, port))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after the log lines of a normal start
    assert last.startswith(f"error: port {port} is in use: is your API already running?")


def test_flask_debug_server_without_a_model_is_one_line(tmp_path: Path) -> None:
    done = run(
        ["-m", "flask", "--app", "main", "run", "--debug", "--port", "0"],
        **api_settings(tmp_path, tmp_path / "none.pkl", 5000),
    )
    assert done.returncode != 0
    assert one_line(done.stderr).startswith("Error: no model file at")
