"""Self-paced play: `game-server demo --team NAME=URL` scores the player's own API beside
the bots, as participant_starter/README.md's "Playing alone" has them do it.

The guide's commands run as typed where a test can (its `cp` lines, `python main.py`, the
`make demo` line's DEMO_ARGS with a free port and a short game); cloning, `make install`
and the notebook are the kit's own (this checkout, its venv, scripts/ready_model.py: the
notebook's recipe, faster).
"""

import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from readme_blocks import LONG_RUNNING, laptop_blocks, words
from starter_helpers import free_port, starter_env
from test_demo import record_of, start_demo, wait_for_text

from game_server.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "participant_starter" / "README.md"
# What the test does not run as typed, and why: the kit is this checkout and its venv.
NOT_HERE = {
    'git clone "$KIT_URL" workshop-kit': "this checkout is the kit",
    "cd workshop-kit": "the test's copy is the kit",
    "make install": "the kit's venv runs the test",
    ". .venv/bin/activate": "the kit's venv runs the test",
    "cd participant_starter": "the test runs in the copy's starter",
    "jupyter nbconvert --to notebook --execute --inplace notebooks/1.0-train-model.ipynb": (
        "the notebook's recipe, faster: scripts/ready_model.py"
    ),
}


def section() -> str:
    """The "Playing alone" section of the starter's README."""
    text = README.read_text(encoding="utf-8")
    return text.split("\n## Playing alone\n", 1)[1].split("\n## ", 1)[0]


def commands() -> tuple[list[str], str, str]:
    """The set-up commands, the long-running API command and the demo line, in order."""
    blocks = laptop_blocks(section())
    setup = [c for b in blocks if LONG_RUNNING not in b.tags for c in b.commands]
    api = [c for b in blocks if LONG_RUNNING in b.tags for c in b.commands]
    demo = [c for c in setup if c.startswith("make demo")]
    assert len(api) == 1 and len(demo) == 1, (api, demo)
    return [c for c in setup if c not in demo], api[0], demo[0]


def demo_args(line: str, api_port: int) -> list[str]:
    """The `make demo` line's DEMO_ARGS as `game-server demo` gets them, on `api_port`."""
    assigned = [w for w in words(line) if w.startswith("DEMO_ARGS=")]
    assert len(assigned) == 1, line
    args = shlex.split(assigned[0].removeprefix("DEMO_ARGS="))
    assert "http://127.0.0.1:5000/predict" in " ".join(args)  # the port of .env.example
    return [a.replace(":5000/", f":{api_port}/") for a in args]


def test_the_section_goes_from_clone_to_a_scored_game():
    setup, api, demo = commands()
    assert setup[0].startswith("git clone ") and "make install" in setup
    assert api == "python main.py" and "--team me=" in demo
    skipped = [strip(c) for c in setup if strip(c) in NOT_HERE]
    ran = [strip(c) for c in setup if strip(c) not in NOT_HERE]
    assert skipped == list(NOT_HERE) and all(c.startswith("cp ") for c in ran), ran


def strip(command: str) -> str:
    """A command without its trailing comment."""
    return re.sub(r"\s+#.*$", "", command)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("me", "--team 'me' is not NAME=URL, e.g. me=http://127.0.0.1:5000/predict"),
        ("=http://127.0.0.1:5000/predict", "is not NAME=URL"),
        ("a/b=http://127.0.0.1:5000/predict", "bad team name 'a/b'"),
        ("me=ftp://127.0.0.1:5000/predict", "scheme must be http or https"),
        ("me=http://10.1.2.3:5000/predict", "host 10.1.2.3 is not on the allow-list"),
        ("starter=http://127.0.0.1:5000/predict", "--team starter: the name is taken"),
    ],
)
def test_a_bad_team_is_a_one_line_error_before_anything_starts(
    tmp_path, monkeypatch, keep_logging, spec, message
):
    monkeypatch.chdir(tmp_path)
    port = str(free_port())
    result = CliRunner().invoke(main, ["demo", "--no-browser", "--port", port, "--team", spec])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output
    assert not (tmp_path / "instance").exists()  # nothing started


def copy_the_kit(kit: Path) -> Path:
    """The starter and the training data where a clone has them; the starter's folder."""
    starter = kit / "participant_starter"
    skip = shutil.ignore_patterns(".venv", "__pycache__", "*.sqlite", "*.pkl", "*.log", ".env")
    shutil.copytree(ROOT / "participant_starter", starter, ignore=skip)
    (kit / "data").mkdir()
    shutil.copy(ROOT / "data" / "train_data.csv", kit / "data")
    return starter


def activated(starter: Path, **settings: str) -> dict:
    """The environment after `. .venv/bin/activate` of the kit (this venv), with `settings`."""
    env = starter_env(starter, **settings)
    venv_bin = str(Path(sys.executable).parent)
    return {**env, "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"}


def wait_healthy(port: int, process: subprocess.Popen, log: Path) -> None:
    """Until the API answers /health (fails when it exits or takes a minute)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the API is not up after 60 s: {log.read_text()}")


def team_row(database: str, sql: str) -> tuple:
    """One row of a query on the demo's game database."""
    with sqlite3.connect(database) as conn:
        return conn.execute(sql).fetchone()


@pytest.mark.slow
def test_playing_alone_scores_the_players_own_api(tmp_path):
    setup, api, demo = commands()
    starter = copy_the_kit(tmp_path / "workshop-kit")
    for command in setup:
        if strip(command) not in NOT_HERE:
            subprocess.run(["bash", "-c", command], cwd=starter, check=True, env=activated(starter))
    assert (starter / ".env").is_file() and (starter / "data" / "train_data.csv").is_file()
    trained = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "ready_model.py"),
            "--out",
            str(starter / "models" / "model.pkl"),
            "--data",
            str(starter / "data" / "train_data.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert trained.returncode == 0, trained.stderr
    api_port, web_port = free_port(), free_port()
    log = tmp_path / "api.out"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            ["bash", "-c", f"exec {api}"],
            cwd=starter,
            env=activated(starter, PORT=str(api_port)),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(api_port, server, log)
        args = [*demo_args(demo, api_port), "--duration", "40"]
        process, out = start_demo(tmp_path / "workshop-kit", web_port, *args)
        try:
            output = wait_for_text(process, out, "first round scored", 120)
            token = re.search(r"TEAM_TOKEN=(\S+)", output)
            assert token and f"your team me: http://127.0.0.1:{api_port}/predict answers" in output
            time.sleep(8)  # labels revealed (the compressed game's label delay is a few s)
            feedback = subprocess.run(
                [sys.executable, "feedback.py"],
                cwd=starter,
                env=activated(
                    starter, GAME_URL=f"http://127.0.0.1:{web_port}", TEAM_TOKEN=token.group(1)
                ),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert feedback.returncode == 0, feedback.stderr
            assert re.search(r"feedback: [1-9]\d* new labels", feedback.stdout), feedback.stdout
            process.wait(timeout=150)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                process.wait(30)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    output = out.read_text()
    assert process.returncode == 0, output
    assert re.search(r"your team me: rank \d+ of 6, -?\d+ points", output), output
    record = record_of(tmp_path / "workshop-kit", output)
    assert record["own_teams"] == [{"name": "me", "url": f"http://127.0.0.1:{api_port}/predict"}]
    answered, correct, failed = team_row(
        record["database"],
        "SELECT count(*), sum(r.outcome = 'correct'), sum(r.outcome = 'failed') "
        "FROM results r JOIN teams t ON t.id = r.team_id WHERE t.name = 'me'",
    )
    assert answered > 100 and correct > 0.6 * answered and failed < 0.05 * answered
    points = team_row(
        record["database"],
        "SELECT sum(x.points) FROM team_totals x JOIN teams t ON t.id = x.team_id "
        "WHERE t.name = 'me'",
    )[0]
    assert points > 0
    assert os.path.exists(starter / "output" / "api.log")  # the player's API logged its answers
